"""Latency of the subscriber pages through a real ``newsletter serve`` on loopback.

python -m bench.web [N]

Starts the server (SQLite, file outbox, rate limits lifted), then times N requests of
each kind from one client, one at a time: the subscribe form, a subscribe (which also
renders and writes a confirmation mail after answering), the manage page and the
one-click unsubscribe. Prints median and 95th percentile per kind, requests per
second, and each kind's median relative to the plain form page.
"""

from __future__ import annotations

import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from newsletter.settings import DEV_SECRET_KEY
from subscribers.tokens import Signer
from tests.fakes.webserver import free_port, newsletter_env, serve

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _time(n: int, request: Callable[[int], httpx.Response]) -> list[float]:
    seconds = []
    for i in range(n):
        start = time.perf_counter()
        response = request(i)
        seconds.append(time.perf_counter() - start)
        if response.status_code != 200:
            raise SystemExit(f"request {i} answered {response.status_code}: {response.text[:200]}")
    return seconds


def main(n: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-web-") as tmp:
        workdir = Path(tmp)
        port = free_port()
        env = newsletter_env(
            {
                "NEWSLETTER_DATABASE_URL": f"sqlite:///{workdir / 'bench.db'}",
                "NEWSLETTER_MAIL_BACKEND": "file",
                "NEWSLETTER_OUTBOX_DIR": str(workdir / "outbox"),
                "NEWSLETTER_BASE_URL": f"http://127.0.0.1:{port}",
                "NEWSLETTER_FEEDS": "",
                "NEWSLETTER_SUBSCRIBE_RATE_IP": "1000000/minute",
                "NEWSLETTER_SUBSCRIBE_RATE_ADDRESS": "1000000/hour",
            }
        )
        signer = Signer(DEV_SECRET_KEY)
        with (
            serve(env, workdir, port) as base,
            httpx.Client(base_url=base) as client,
            httpx.Client(base_url=base) as provider,  # a mail provider: no cookies
        ):
            found = CSRF.search(client.get("/").text)
            assert found
            token = found.group(1)
            results = {
                "GET / (form)": _time(n, lambda i: client.get("/")),
                "POST /subscribe": _time(
                    n,
                    lambda i: client.post(
                        "/subscribe",
                        data={
                            "csrf_token": token,
                            "email": f"bench{i}@example.com",
                            "categories": ["nlp", "llm"],
                            "language": "en",
                        },
                    ),
                ),
                "GET /manage/{t}": _time(
                    n, lambda i: client.get(f"/manage/{signer.sign(i + 1, 'manage')}")
                ),
                "POST /unsubscribe/{t} (one-click)": _time(
                    n,
                    lambda i: provider.post(
                        f"/unsubscribe/{signer.sign(i + 1, 'unsubscribe')}",
                        content=b"List-Unsubscribe=One-Click",
                        headers={"Content-Type": "application/x-www-form-urlencoded"},
                    ),
                ),
            }
            mails = len(list((workdir / "outbox").glob("*.eml")))
    baseline = statistics.median(results["GET / (form)"])
    print(f"{n} requests of each kind, one at a time, loopback, SQLite")
    print(f"{'request':36} {'median ms':>10} {'p95 ms':>8} {'req/s':>7} {'x form':>7}")
    for name, seconds in results.items():
        median = statistics.median(seconds)
        p95 = sorted(seconds)[int(len(seconds) * 0.95) - 1]
        print(
            f"{name:36} {median * 1000:10.1f} {p95 * 1000:8.1f} "
            f"{len(seconds) / sum(seconds):7.0f} {median / baseline:7.2f}"
        )
    print(f"confirmation mails written: {mails} of {n}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
