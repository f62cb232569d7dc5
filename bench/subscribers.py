"""Import and export readers in bulk: ``subscribers import`` of a generated CSV file.

python -m bench.subscribers [--rows 100000] [--db sqlite,postgresql]

For each database a fresh one is made, a CSV of ``--rows`` readers (three category
sets, two languages, 1% repeated addresses) is imported in a child process that
reports its wall time and peak RSS, then exported (streamed) and imported again
(every reader unchanged). Target from the issue: 100,000 rows on SQLite under 10 s;
a million with flat memory.
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--db", default="sqlite,postgresql")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child)
        return
    sys.path.insert(0, str(ROOT))
    from bench.send import database

    print(f"bench.subscribers: import of {args.rows:,} CSV rows (1% repeated), export, re-import")
    with tempfile.TemporaryDirectory() as tmp:
        csv_path = Path(tmp) / "readers.csv"
        write_csv(csv_path, args.rows)
        for kind in [k.strip() for k in args.db.split(",") if k.strip()]:
            try:
                with database(kind, Path(tmp)) as url:
                    out = subprocess.run(
                        [
                            sys.executable,
                            "-m",
                            "bench.subscribers",
                            "--child",
                            url,
                            str(csv_path),
                            str(Path(tmp) / "export.csv"),
                        ],
                        cwd=ROOT,
                        capture_output=True,
                        text=True,
                        check=False,
                    )
            except Exception as exc:  # a missing PostgreSQL skips that database only
                print(f"{kind:<11} skipped: {exc}")
                continue
            if out.returncode != 0:
                raise SystemExit(f"the import failed:\n{out.stderr}")
            f = json.loads(out.stdout.strip().splitlines()[-1])
            rate = args.rows / f["import_s"]
            target = 10 * args.rows / 100_000
            verdict = "ok" if kind != "sqlite" or f["import_s"] < target else "MISSED"
            print(
                f"{kind:<11} import: {args.rows:,} rows in {f['import_s']:.1f} s = {rate:,.0f} "
                f"rows/s ({f['added']:,} added, {f['merged']:,} merged); export "
                f"{f['exported']:,} in {f['export_s']:.1f} s; re-import {f['reimport_s']:.1f} s "
                f"({f['unchanged']:,} unchanged); peak RSS {f['peak_mb']:.0f} MB"
                + (f"; target <{target:g} s: {verdict}" if kind == "sqlite" else "")
            )


if __name__ == "__main__":
    main()
