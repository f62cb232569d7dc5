"""The public archive pages (issues, feed, search), mounted by the web app."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
