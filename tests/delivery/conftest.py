"""Delivery fixtures: the SendGrid double, the SMTP sink, TLS files, and a prepared issue.

A prepared issue is the bundled sample's digest, computed once per session and
copied into each test's fresh database, so a test that sends does not pay for the
chart and the reports again; readers are inserted in bulk with Core.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import ssl
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from newsletter.app import Services
from newsletter.delivery.base import Envelope, MessageBatch
from newsletter.models import InlineImage, RenderedIssue
from tests.fakes.sendgrid_double import SendGridDouble
from tests.fakes.smtp_server import SMTPSink

SAMPLE_DATE = dt.date(2024, 11, 22)
SECRET = "delivery-tests-secret-key-0123456789abcdef"
#: A test of one database's behaviour runs on that database only (never a skip on the other).
ONLY_POSTGRESQL = pytest.mark.parametrize(
    "database_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
ONLY_SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

UNSUB = "NLPHUNSUBSCRIBEURLtest"
MANAGE = "NLPHMANAGEURLtest"
CHART_CID = "chart-2024-11-22@daily-ai-insights"


# -- servers -----------------------------------------------------------------------------


@pytest.fixture
def sendgrid() -> Iterator[SendGridDouble]:
    with SendGridDouble() as double:
        yield double


@pytest.fixture
def smtp_sink() -> Iterator[SMTPSink]:
    with SMTPSink() as sink:
        yield sink


@dataclass(frozen=True)
class TLSFiles:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    """A self-signed certificate for 127.0.0.1, so STARTTLS and SSL run for real."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    files = TLSFiles(folder / "cert.pem", folder / "key.pem")
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return files


# -- batches without a database ----------------------------------------------------------


@pytest.fixture
def rendered() -> RenderedIssue:
    html = (
        "<!doctype html><html><body><h1>Daily AI Insights</h1>"
        f'<img src="cid:{CHART_CID}" alt="chart">'
        f'<a href="{MANAGE}">manage</a> <a href="{UNSUB}">unsubscribe</a></body></html>'
    )
    text = f"Daily AI Insights\n.a line starting with a dot\nmanage: {MANAGE}\nleave: {UNSUB}\n"
    return RenderedIssue(
        subject="AI papers 2024-11-22: 24 new",
        html=html,
        text=text,
        images=(InlineImage(CHART_CID, b"\x89PNG\r\n\x1a\nfake-chart", "chart-2024-11-22.png"),),
        placeholders={"manage_url": MANAGE, "unsubscribe_url": UNSUB},
    )


def envelope(n: int, address: str | None = None) -> Envelope:
    unsubscribe = f"https://news.example.org/unsubscribe/tok{n}"
    return Envelope(
        to=address or f"reader{n}@example.com",
        values={
            "manage_url": f"https://news.example.org/manage/tok{n}",
            "unsubscribe_url": unsubscribe,
        },
        headers={
            "List-Unsubscribe": f"<{unsubscribe}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
        tags={"issue_id": "7", "subscriber_id": str(n)},
    )


def batch_of(rendered: RenderedIssue, envelopes: Sequence[Envelope]) -> MessageBatch:
    return MessageBatch(rendered, tuple(envelopes), ("nlp", "llm"))


# -- a prepared issue in the test's database ------------------------------------------------


@pytest.fixture(scope="session")
def sample_issue_content(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The sample day's stored stages (classification, reports, chart), computed once."""
    from newsletter.digest import build_digest, render_stage
    from newsletter.issues import get_issue
    from newsletter.preview import load_sample
    from newsletter.settings import load_settings

    db = tmp_path_factory.mktemp("digest") / "digest.db"
    svc = Services.build(load_settings(database_url=f"sqlite:///{db}", feeds=[], llm_model=""))
    try:
        load_sample(svc)
        for language in ("en", "ko"):
            digest = build_digest(svc, SAMPLE_DATE, language)
            assert digest is not None
            render_stage(svc, digest)  # the stored full page, rendered before any send
        issue = get_issue(svc.engine, SAMPLE_DATE)
        assert issue is not None
        return issue.content
    finally:
        svc.engine.dispose()


def prepare_issue(svc: Services, content: str) -> int:
    """The sample's papers and stored digest in ``svc``'s database; returns the issue id."""
    from newsletter.issues import ensure_issue, update_issue
    from newsletter.preview import load_sample

    load_sample(svc)
    issue = ensure_issue(svc.engine, SAMPLE_DATE)
    assert issue.id is not None
    made_with = json.loads(content).get("made_with", "offline")
    update_issue(svc.engine, issue.id, content=content, status="rendered", made_with=made_with)
    return issue.id


def add_readers(
    svc: Services,
    count: int,
    category_sets: Sequence[Sequence[str]] = (("nlp",),),
    *,
    language: str = "en",
    start: int = 0,
    domain: str = "example.com",
    status: str = "active",
) -> list[int]:
    """``count`` readers spread round-robin over ``category_sets``; returns their ids."""
    from newsletter.db import table_of
    from subscribers.models import Subscriber

    table = table_of(Subscriber)
    now = dt.datetime.now(dt.UTC)
    rows: list[dict[str, Any]] = [
        {
            "email": f"reader{start + i}@{domain}",
            "categories": ",".join(svc.taxonomy.order(category_sets[i % len(category_sets)])),
            "language": language,
            "status": status,
            "confirmed_at": now,
        }
        for i in range(count)
    ]
    with svc.engine.begin() as conn:
        conn.execute(sa.insert(table), rows)
        ids = conn.execute(
            sa.select(table.c.id).where(table.c.email.in_([r["email"] for r in rows]))
        ).scalars()
        return sorted(int(i) for i in ids)


@pytest.fixture
def delivery_services(settings: Any, sample_issue_content: str) -> Iterator[Services]:
    """Services on the test's database (SQLite or PostgreSQL) with the sample issue ready."""
    svc = Services.build(
        settings.model_copy(
            update={"secret_key": SECRET, "base_url": "https://news.example.org", "llm_model": ""}
        )
    )
    prepare_issue(svc, sample_issue_content)
    yield svc
    svc.engine.dispose()


@pytest.fixture
def ledger_services(settings: Any) -> Iterator[Services]:
    """Services with just the sample date's issue row: for tests that need no papers."""
    from newsletter.issues import ensure_issue

    svc = Services.build(
        settings.model_copy(update={"secret_key": SECRET, "base_url": "https://news.example.org"})
    )
    ensure_issue(svc.engine, SAMPLE_DATE)
    yield svc
    svc.engine.dispose()
