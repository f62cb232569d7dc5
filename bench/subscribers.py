"""Import and export readers in bulk: ``subscribers import`` of a generated CSV file.

python -m bench.subscribers [--rows 100000] [--big 1000000] [--db sqlite,postgresql]

For each database a fresh one is made, a CSV of ``--rows`` readers (three category
sets, two languages, 1% repeated addresses) is imported in a child process that
reports its wall time and peak RSS, then exported (streamed) and imported again
(every reader unchanged). Then ``--big`` rows (0 skips it) go the same way on SQLite,
and the peak RSS of both sizes is compared. Targets from the issue: 100,000 rows on
SQLite under 10 s; a million with flat memory (here: within 10% of the smaller run's).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
SETS = ("nlp", '"nlp,llm"', "computer-vision")


def write_csv(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8") as out:
        out.write("email,categories,language\n")
        for n in range(rows):
            reader = n - 1 if n % 100 == 99 else n  # 1% of rows repeat the previous address
            out.write(f"reader{reader}@example.org,{SETS[n % 3]},{'en' if n % 2 else 'ko'}\n")


def child(url: str, csv_path: str, export_path: str) -> None:
    """Import, export and import again in this process; print the figures as JSON."""
    from newsletter.app import Services
    from newsletter.settings import load_settings
    from subscribers.bulk_import import import_readers
    from subscribers.csv_io import write_csv as export

    svc = Services.build(load_settings(database_url=url, feeds=[], mail_backend="memory"))
    start = time.perf_counter()
    first = import_readers(svc.engine, svc.taxonomy, Path(csv_path), "en")
    imported = time.perf_counter() - start
    start = time.perf_counter()
    with open(export_path, "w", encoding="utf-8") as out:
        exported = export(svc.engine, out)
    export_s = time.perf_counter() - start
    start = time.perf_counter()
    again = import_readers(svc.engine, svc.taxonomy, Path(export_path), "en")
    reimport = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "import_s": imported,
                "added": first.added,
                "merged": first.merged,
                "export_s": export_s,
                "exported": exported,
                "reimport_s": reimport,
                "unchanged": again.unchanged,
                "peak_mb": peak,
            }
        )
    )


def run(kind: str, rows: int, tmp: Path) -> dict[str, Any] | None:
    """Import, export and re-import ``rows`` generated rows on a fresh ``kind`` database in a
    child process; its figures, printed, or None when the database is not there."""
    from bench.send import database

    csv_path = tmp / f"readers-{rows}.csv"
    if not csv_path.exists():
        write_csv(csv_path, rows)
    try:
        with database(kind, tmp) as url:
            out = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "bench.subscribers",
                    "--child",
                    url,
                    str(csv_path),
                    str(tmp / "export.csv"),
                ],
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=False,
            )
    except Exception as exc:  # a missing PostgreSQL skips that database only
        print(f"{kind:<11} skipped: {exc}")
        return None
    if out.returncode != 0:
        raise SystemExit(f"the import failed:\n{out.stderr}")
    f: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    rate = rows / f["import_s"]
    target = 10 * rows / 100_000
    verdict = "ok" if f["import_s"] < target else "MISSED"
    print(
        f"{kind:<11} import: {rows:,} rows in {f['import_s']:.1f} s = {rate:,.0f} "
        f"rows/s ({f['added']:,} added, {f['merged']:,} merged); export "
        f"{f['exported']:,} in {f['export_s']:.1f} s; re-import {f['reimport_s']:.1f} s "
        f"({f['unchanged']:,} unchanged); peak RSS {f['peak_mb']:.0f} MB; "
        f"load {os.getloadavg()[0]:.1f}"
        + (f"; target <{target:g} s: {verdict}" if kind == "sqlite" else "")
    )
    return f


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--big", type=int, default=1_000_000)
    parser.add_argument("--db", default="sqlite,postgresql")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child)
        return
    sys.path.insert(0, str(ROOT))
    print(f"bench.subscribers: import of {args.rows:,} CSV rows (1% repeated), export, re-import")
    kinds = [k.strip() for k in args.db.split(",") if k.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        small = {kind: run(kind, args.rows, Path(tmp)) for kind in kinds}
        if not args.big or "sqlite" not in kinds or small["sqlite"] is None:
            return
        big = run("sqlite", args.big, Path(tmp))
        assert big is not None
        before, after = small["sqlite"]["peak_mb"], big["peak_mb"]
        flat = after <= before * 1.1
        print(
            f"sqlite      memory: peak RSS {before:.0f} MB at {args.rows:,} rows, {after:.0f} MB "
            f"at {args.big:,}; target flat (within 10%): {'ok' if flat else 'MISSED'}"
        )


if __name__ == "__main__":
    main()
