"""The one settings object, read from the environment (prefix NEWSLETTER_) and .env.

It is built once in ``cli.main`` (or by a test) and passed down; nothing reads the
environment at import time.
"""

from __future__ import annotations

import ipaddress
import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from newsletter.errors import ConfigurationError

DEV_SECRET_KEY = "dev-insecure-secret-change-me"
#: Keys anyone can read (the built-in one, .env.example's placeholder): never serve with them.
PUBLISHED_SECRET_KEYS = frozenset({DEV_SECRET_KEY, "replace-with-a-long-random-value"})
#: A shorter key is within reach of guessing; `secrets.token_urlsafe(48)` gives 64 characters.
MIN_SECRET_KEY_LENGTH = 32
_KEY_HINT = "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`)"

DEFAULT_FEEDS = [
    "https://rss.arxiv.org/rss/cs.AI+cs.CL+cs.CV+cs.LG+cs.CR+cs.RO+stat.ML",
]

#: Mail backends chosen by name; any other backend is named by its class, ``package.module:Class``.
BUILTIN_BACKENDS = ("file", "smtp", "sendgrid", "memory")
_DOTTED_BACKEND = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")


def _split_list(value: Any) -> Any:
    """Accept a JSON list or a comma-separated string for list settings."""
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return []
        if text.startswith("["):
            return json.loads(text)
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="NEWSLETTER_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    database_url: str = "sqlite:///newsletter.db"
    feeds: Annotated[list[str], NoDecode] = Field(default_factory=lambda: list(DEFAULT_FEEDS))
    categories_file: Path | None = None
    include_replacements: bool = False
    empty_day: Literal["skip", "note"] = "skip"
    fetch_timeout: float = Field(default=30.0, gt=0)
    fetch_attempts: int = Field(default=4, ge=1)
    # Seconds one source may take in all (attempts and waits included); see sources.fetch.
    fetch_deadline: float = Field(default=60.0, gt=0)

    llm_model: str = ""
    llm_api_base: str = ""
    llm_api_key: str = ""
    llm_fallbacks: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Seconds to wait for the next token (the first included) while an answer streams;
    # the whole call's limit where the provider does not stream.
    llm_timeout: float = Field(default=60.0, gt=0)
    llm_temperature: float = Field(default=0.2, ge=0, le=2)
    llm_stream: bool = True
    # Papers below which a classify batch that fails is no longer split (rules take them).
    llm_min_batch: int = Field(default=3, ge=1)
    # Sort the shipped calibration set once per model and prompt version; classification
    # stays with the keyword rules when the model places fewer papers right than they do.
    llm_qualify: bool = True
    llm_max_retries: int = Field(default=3, ge=0)
    llm_batch_size: int = Field(default=40, ge=1)
    llm_max_input_tokens: int = Field(default=12000, ge=500)
    llm_concurrency: int = Field(default=4, ge=1)
    #: Seconds of model time one run may spend before the parts left fall back (0: no limit).
    llm_run_budget: float = Field(default=3600.0, ge=0)
    llm_retry_wait: float = Field(default=2.0, ge=0)
    llm_retry_max_wait: float = Field(default=60.0, ge=0)
    llm_json_mode: Literal["auto", "schema", "prompt"] = "auto"
    # "For you" with embeddings (any litellm embedding model, e.g. openai/text-embedding-3-small);
    # empty = BM25 offline. Endpoint and key default to the LLM's.
    embedding_model: str = ""
    embedding_api_base: str = ""
    embedding_api_key: str = ""
    embedding_batch_size: int = Field(default=96, ge=1, le=2048)

    # One of BUILTIN_BACKENDS, or a MailBackend subclass as "package.module:Class".
    mail_backend: str = "file"
    outbox_dir: Path = Path("outbox")
    sendgrid_api_key: str = ""
    sendgrid_host: str = "https://api.sendgrid.com"
    sendgrid_sandbox: bool = False
    sendgrid_timeout: float = Field(default=30.0, gt=0)
    # Readers per Mail Send request (SendGrid's maximum is 1,000); smaller batches leave
    # fewer readers "unknown" when a run is killed mid-request.
    sendgrid_batch_size: int = Field(default=1000, ge=1, le=1000)
    # SendGrid's Event Webhook verification key (base64 DER, as the SendGrid UI shows it).
    sendgrid_webhook_public_key: str = ""
    sendgrid_webhook_max_age: int = Field(default=600, ge=1)
    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = False
    smtp_ssl: bool = False
    smtp_timeout: float = 30.0
    # DKIM signing of SMTP mail (all three or none): the signing domain, the selector
    # (public key at <selector>._domainkey.<domain>) and the PEM private key file.
    dkim_domain: str = ""
    dkim_selector: str = ""
    dkim_key_file: Path | None = None
    # Messages per second; unset = the backend's default (SendGrid: none, SMTP: 10), 0 = none.
    send_rate: float | None = Field(default=None, ge=0)
    # Batches in flight at once; unset = the backend's default (SendGrid: 4, others: 1).
    # A crash leaves at most this many batches' readers "unknown".
    send_concurrency: int | None = Field(default=None, ge=1, le=32)
    send_max_failure_ratio: float = Field(default=0.05, ge=0, le=1)

    from_email: str = "newsletter@localhost"
    from_name: str = "Daily AI Insights"
    base_url: str = "http://localhost:8000"
    secret_key: str = DEV_SECRET_KEY
    old_secret_keys: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Rate limits of the public subscribe form, in `limits` notation ("10/minute").
    subscribe_rate_ip: str = "10/minute"
    subscribe_rate_address: str = "3/hour"
    # Reverse proxies (addresses or CIDRs) whose X-Forwarded-For/-Proto name the client;
    # empty = trust no one's headers (the connecting address is the client).
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    language: str = "ko"
    schedule: str = "0 7 * * *"
    timezone: str = "Asia/Seoul"
    admin_email: str = ""
    log_format: Literal["text", "json"] = "text"
    # The service: run at start when the last scheduled time passed this recently without a run.
    catchup_hours: float = Field(default=12.0, ge=0)
    # A run whose database is down is retried this many times, waiting RETRY_SECONDS, doubling.
    run_attempts: int = Field(default=5, ge=1)
    run_retry_seconds: float = Field(default=30.0, ge=0)
    chart_mode: Literal["inline", "hosted"] = "inline"
    # "For you": rank among each reader's chosen categories, or among every category.
    for_you_scope: Literal["chosen", "all"] = "chosen"

    @field_validator("feeds", "llm_fallbacks", "old_secret_keys", "trusted_proxies", mode="before")
    @classmethod
    def _lists(cls, value: Any) -> Any:
        return _split_list(value)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone {value!r}") from exc
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError as exc:
                raise ValueError(
                    f"{entry!r} is not an IP address or CIDR (e.g. 10.0.0.5, 10.0.0.0/8)"
                ) from exc
        return value

    @field_validator("mail_backend")
    @classmethod
    def _mail_backend(cls, value: str) -> str:
        value = value.strip()
        if value in BUILTIN_BACKENDS or _DOTTED_BACKEND.match(value):
            return value
        raise ValueError(
            f"unknown mail backend {value!r}; use {', '.join(BUILTIN_BACKENDS)}, "
            "or name a MailBackend subclass as package.module:Class"
        )

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        return value.rstrip("/")

    @property
    def uses_real_mail(self) -> bool:
        # A backend named by its class may send real mail: treat it as one that does.
        return self.mail_backend not in ("file", "memory")

    def require_safe_secret(self) -> None:
        """Refuse to mail real people links signed with the published dev key."""
        if self.uses_real_mail and self.secret_key == DEV_SECRET_KEY:
            raise ConfigurationError(
                "NEWSLETTER_SECRET_KEY is the development default; set a long random value "
                f"before sending real mail {_KEY_HINT}"
            )

    def require_serving_secret(self, host: str) -> None:
        """Refuse to serve the web app beyond this machine with a key anyone can forge links with.

        Whoever knows the key signs manage links for any reader id: they list readers'
        addresses and unsubscribe them. The built-in key is in the source, so ``serve`` and
        ``start`` bound to anything but loopback need a key of their own, as do the old
        keys still accepted. On loopback (a laptop, ``demo``) the built-in key is allowed.
        """
        if is_loopback(host):
            return
        for name, key in [("SECRET_KEY", self.secret_key)] + [
            ("OLD_SECRET_KEYS", old) for old in self.old_secret_keys
        ]:
            if key in PUBLISHED_SECRET_KEYS:
                problem = "is a published placeholder (anyone can sign links with it)"
            elif len(key) < MIN_SECRET_KEY_LENGTH:
                problem = f"is shorter than {MIN_SECRET_KEY_LENGTH} characters"
            else:
                continue
            raise ConfigurationError(
                f"NEWSLETTER_{name} {problem}; the web app on {host} would accept forged "
                f"links. Set a long random value {_KEY_HINT}, or listen on 127.0.0.1"
            )


def is_loopback(host: str) -> bool:
    """True for an address only this machine reaches (127.0.0.0/8, ::1, localhost)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[] ")).is_loopback
    except ValueError:
        return False


def load_settings(**overrides: Any) -> Settings:
    """Build settings from the environment, turning validation errors into one line."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"NEWSLETTER_{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigurationError(f"invalid setting: {problems}") from exc
    except (ValueError, json.JSONDecodeError) as exc:
        raise ConfigurationError(f"invalid setting: {exc}") from exc
