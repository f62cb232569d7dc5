"""Start-up time of the light commands, as ratios to ``python -c "import sqlalchemy"``.

The operator's everyday commands (``subscribers list``, ``subscribers add``, ``categories``)
must not pay for the pipeline, the LLM client, the chart or the mail renderer. Each command
runs in a fresh process on an existing SQLite database (already migrated), best of N runs.

python -m bench.startup [--runs 7]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: Modules a light command must not load (the heavy or feature-level ones).
HEAVY = (
    "httpx",
    "feedparser",
    "litellm",
    "matplotlib",
    "mjml",
    "premailer",
    "alembic",
    "newsletter.pipeline",
    "newsletter.llm",
)

COMMANDS: dict[str, list[str]] = {
    "--help": ["--help"],
    "categories": ["categories"],
    "subscribers list": ["subscribers", "list"],
    "subscribers add": ["subscribers", "add", "bench@example.com", "--categories", "nlp"],
}

PROBE = """
import sys
from newsletter.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
heavy = [m for m in {heavy!r} if m in sys.modules]
print("HEAVY:" + ",".join(heavy), file=sys.stderr)
"""


def best_of(argv: list[str], runs: int, env: dict[str, str]) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "NEWSLETTER_DATABASE_URL": f"sqlite:///{Path(tmp) / 'bench.db'}",
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        }
        python = [sys.executable]
        first = [*python, "-m", "newsletter.cli", "subscribers", "list"]
        subprocess.run(first, env=env, check=True, capture_output=True)
        base = best_of([*python, "-c", "import sqlalchemy"], args.runs, env)
        print(f"python -c 'import sqlalchemy': {base * 1000:7.0f} ms (ratio 1.0)")
        for label, argv in COMMANDS.items():
            elapsed = best_of([*python, "-m", "newsletter.cli", *argv], args.runs, env)
            probe = subprocess.run(
                [*python, "-c", PROBE.format(heavy=HEAVY), *argv],
                env=env,
                capture_output=True,
                text=True,
            )
            heavy = next(
                (line[6:] for line in probe.stderr.splitlines() if line.startswith("HEAVY:")), "?"
            )
            print(
                f"newsletter {label:<17} {elapsed * 1000:7.0f} ms (ratio {elapsed / base:4.1f})"
                f"  heavy modules loaded: {heavy or 'none'}"
            )


if __name__ == "__main__":
    main()
