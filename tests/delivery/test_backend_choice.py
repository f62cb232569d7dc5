"""NEWSLETTER_MAIL_BACKEND: a built-in name, or any MailBackend subclass by import path."""

from __future__ import annotations

from pathlib import Path

import pytest

from newsletter.app import Services
from newsletter.cli import main
from newsletter.delivery import BUILTIN, get_backend
from newsletter.delivery.base import MailBackend, MessageBatch
from newsletter.delivery.file import FileBackend
from newsletter.delivery.memory import MemoryBackend
from newsletter.errors import ConfigurationError
from newsletter.models import SendResult
from newsletter.settings import BUILTIN_BACKENDS, Settings, load_settings
from newsletter.statuses import SendOutcome
from tests.delivery.conftest import SAMPLE_DATE, add_readers

HERE = __name__  # this module, importable as tests.delivery.test_backend_choice


class PigeonBackend(MailBackend):
    """A third-party backend: built from settings, answers every reader ``sent``."""

    def __init__(self, from_email: str, from_name: str = "", loft: str = "") -> None:
        super().__init__(from_email, from_name)
        self.loft = loft

    @classmethod
    def from_settings(cls, settings: Settings) -> PigeonBackend:
        return cls(settings.from_email, settings.from_name, loft=str(settings.outbox_dir))

    def send(self, batch: MessageBatch) -> list[SendResult]:
        return [SendResult(e.to, SendOutcome.SENT) for e in batch.recipients]


class Incomplete(MailBackend):
    """Breaks the contract: no ``send``."""


class NotABackend:
    def send(self, batch: MessageBatch) -> list[SendResult]:
        return []


def settings_for(backend: str, tmp_path: Path) -> Settings:
    return load_settings(
        mail_backend=backend, outbox_dir=tmp_path / "loft", secret_key="s" * 40, feeds=[]
    )


def test_builtin_backends_are_chosen_by_name(tmp_path: Path) -> None:
    assert set(BUILTIN) == set(BUILTIN_BACKENDS)  # what settings accept, delivery builds
    assert isinstance(get_backend(settings_for("memory", tmp_path)), MemoryBackend)
    backend = get_backend(settings_for("file", tmp_path))
    assert isinstance(backend, FileBackend) and backend.directory == tmp_path / "loft"


def test_a_backend_named_by_its_class_is_built_from_settings(tmp_path: Path) -> None:
    backend = get_backend(settings_for(f"{HERE}:PigeonBackend", tmp_path))
    assert isinstance(backend, PigeonBackend)
    assert backend.loft == str(tmp_path / "loft")
    # A class that keeps the base's from_settings gets the sender's address and name.
    memory = get_backend(settings_for("newsletter.delivery.memory:MemoryBackend", tmp_path))
    assert isinstance(memory, MemoryBackend) and memory.from_email


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("no_such_package.mail:Backend", "cannot import module 'no_such_package.mail'"),
        (f"{HERE}:Missing", f"module '{HERE}' has no 'Missing'"),
        (f"{HERE}:NotABackend", "'NotABackend' is not a subclass of"),
        (f"{HERE}:HERE", "'HERE' is not a subclass of"),
        (f"{HERE}:Incomplete", "'Incomplete' does not implement send"),
    ],
)
def test_a_backend_path_that_breaks_is_a_clear_configuration_error(
    path: str, message: str, tmp_path: Path
) -> None:
    with pytest.raises(ConfigurationError, match="NEWSLETTER_MAIL_BACKEND=") as exc:
        get_backend(settings_for(path, tmp_path))
    assert message in str(exc.value)
    assert exc.value.exit_code == 2


@pytest.mark.parametrize("value", ["pigeon", "tests.delivery:", ":Backend", "a b:C", "a.b:C.d"])
def test_a_malformed_backend_setting_names_the_choices(value: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="NEWSLETTER_MAIL_BACKEND") as exc:
        settings_for(value, tmp_path)
    assert "file, smtp, sendgrid, memory" in str(exc.value)
    assert "package.module:Class" in str(exc.value)


def test_a_backend_named_by_its_class_refuses_the_development_secret(tmp_path: Path) -> None:
    settings = load_settings(mail_backend=f"{HERE}:PigeonBackend", feeds=[])
    with pytest.raises(ConfigurationError, match="NEWSLETTER_SECRET_KEY"):
        get_backend(settings)


def cli_env(monkeypatch: pytest.MonkeyPatch, database_url: str, backend: str) -> None:
    for key, value in {
        "DATABASE_URL": database_url,
        "MAIL_BACKEND": backend,
        "SECRET_KEY": "s" * 40,
        "FROM_EMAIL": "news@example.org",
        "FEEDS": "[]",
    }.items():
        monkeypatch.setenv(f"NEWSLETTER_{key}", value)


def test_send_through_a_backend_named_by_its_class(
    delivery_services: Services, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    add_readers(delivery_services, 3)
    cli_env(monkeypatch, delivery_services.settings.database_url, f"{HERE}:PigeonBackend")
    assert main(["send", "--date", SAMPLE_DATE.isoformat()]) == 0
    assert capsys.readouterr().out.startswith("sent: 3,")


def test_send_with_a_broken_backend_path_exits_2_and_says_why(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cli_env(monkeypatch, sqlite_url, "no_such_package.mail:Backend")
    assert main(["send", "--date", SAMPLE_DATE.isoformat()]) == 2
    assert "cannot import module 'no_such_package.mail'" in capsys.readouterr().err
