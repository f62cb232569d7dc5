"""Provider event webhooks (SendGrid's Event Webhook), mounted by the web app."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
