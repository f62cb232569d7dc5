"""Light commands load only what they use (speed itself is measured in bench/startup.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.startup import HEAVY
from newsletter.app import Services
from newsletter.settings import Settings

#: Prints the heavy modules loaded after the command ran, then exits with its code.
PROBE = """
import sys
from newsletter.cli import main
code = main(sys.argv[1:])
print("HEAVY:" + ",".join(m for m in {heavy!r} if m in sys.modules))
sys.exit(code)
"""


@pytest.mark.parametrize(
    "argv",
    [
        ["categories"],
        ["subscribers", "list"],
        ["subscribers", "add", "light@example.com", "--categories", "nlp"],
    ],
    ids=["categories", "subscribers-list", "subscribers-add"],
)
def test_light_commands_load_no_heavy_module(tmp_path: Path, argv: list[str]) -> None:
    url = f"sqlite:///{tmp_path / 'light.db'}"
    Services.build(Settings(database_url=url)).engine.dispose()  # an existing database
    env = {**os.environ, "NEWSLETTER_DATABASE_URL": url}
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY), *argv],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    loaded = done.stdout.rsplit("HEAVY:", 1)[1].strip()
    assert loaded == "", f"`newsletter {' '.join(argv)}` loaded {loaded}"
