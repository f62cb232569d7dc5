"""The process of ``newsletter start``: the scheduler and the web app, until told to stop.

``--no-web`` and ``--no-scheduler`` split them across processes. What one daily run
does is ``newsletter.daily_run``; this module owns the process around it: SIGTERM
and SIGINT set a stop flag that the send checks between chunks, so the current batch
is mailed and recorded before the process exits (within ``SHUTDOWN_GRACE``); runs of
a process that died are closed at the next start; a missed scheduled time is caught
up at once.
"""

from __future__ import annotations

import datetime as dt
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine

from newsletter import runs
from newsletter.daily_run import DailyRun, missed_run
from newsletter.db import utcnow
from newsletter.delivery.base import MailBackend
from newsletter.errors import NewsletterError, one_line
from newsletter.locks import owner_gone
from newsletter.retry import TRANSIENT
from newsletter.scheduler import DailyScheduler, parse_trigger

if TYPE_CHECKING:
    import uvicorn

    from newsletter.app import Services

log = logging.getLogger(__name__)

#: How long a stopping process waits for the current batch before it exits anyway.
SHUTDOWN_GRACE = 25.0


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM and SIGINT set ``stop`` instead of killing the process (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum: int, _frame: object) -> None:
        log.info(
            "received %s: finishing the current batch, then exiting", signal.Signals(signum).name
        )
        stop.set()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def build_scheduler(svc: Services, job: DailyRun) -> DailyScheduler:
    """The scheduler for ``svc``'s settings; a bad crontab or zone raises ConfigurationError."""
    started = utcnow()

    def heartbeat(next_run: dt.datetime | None) -> None:
        try:
            runs.beat(svc.engine, job.owner, started, next_run)
        except TRANSIENT as exc:
            log.warning("could not record the scheduler heartbeat: %s", one_line(exc))

    def run(trigger: str, scheduled_for: dt.datetime | None) -> None:
        job(trigger, scheduled_for)

    return DailyScheduler(
        svc.engine,
        svc.settings.schedule,
        svc.settings.timezone,
        run,
        misfire_grace=dt.timedelta(hours=max(svc.settings.catchup_hours, 1 / 60)),
        heartbeat=heartbeat,
        heartbeat_every=runs.HEARTBEAT,
    )


@dataclass(frozen=True)
class DaemonExit:
    """How ``run_daemon`` ended: the exit code, and whether a run thread is still going."""

    code: int
    hard: bool


def run_daemon(
    svc: Services,
    backend_factory: Callable[[], MailBackend],
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    web: bool = True,
    scheduler: bool = True,
    stop: threading.Event | None = None,
    grace: float = SHUTDOWN_GRACE,
) -> DaemonExit:
    """Run the web app and/or the scheduler until SIGTERM/SIGINT (or ``stop``).

    A run in progress gets ``grace`` seconds to finish its batch; if it is still
    going, the result says ``hard``: the caller exits without waiting for it (its
    deliveries in flight become ``unknown`` at the next start, never sent twice).
    """
    if not (web or scheduler):
        raise NewsletterError("nothing to start: drop --no-web or --no-scheduler")
    stop = stop or threading.Event()
    job = DailyRun(svc, backend_factory, stop)
    sched = build_scheduler(svc, job) if scheduler else None
    parse_trigger(svc.settings.schedule, svc.settings.timezone)
    with stop_on_signals(stop):
        server, server_thread = _start_web(svc, sched, host, port) if web else (None, None)
        if sched is not None:
            closed = runs.close_interrupted(svc.engine, owner_gone)
            if closed:
                log.warning("%d earlier run(s) were interrupted by a process that ended", closed)
            missed = missed_run(svc, sched)
            if missed is not None:
                log.warning(
                    "the run scheduled for %s did not complete; catching up now",
                    missed.isoformat(),
                )
            sched.start(run_now=missed is not None)
        code = 0
        while not stop.wait(0.5):
            if server_thread is not None and not server_thread.is_alive():
                log.error("the web server stopped (see above); shutting the service down")
                code = 1
                stop.set()
        log.info("stopping")
        if server is not None:
            server.should_exit = True
        if sched is not None:
            sched.shutdown()
        finished = job.idle.wait(grace)
        if sched is not None:
            _drop_beat(svc.engine, job.owner)
        if server_thread is not None:
            server_thread.join(timeout=5)
    if not finished:
        log.error(
            "the current batch did not finish within %.0f s; exiting anyway (its deliveries "
            "become 'unknown' at the next start and are not resent)",
            grace,
        )
    return DaemonExit(code=code or (0 if finished else 1), hard=not finished)


def _drop_beat(engine: Engine, owner: str) -> None:
    try:
        runs.drop_beat(engine, owner)
    except TRANSIENT as exc:
        log.warning("could not remove the scheduler heartbeat: %s", one_line(exc))


def _start_web(
    svc: Services, sched: DailyScheduler | None, host: str, port: int
) -> tuple[uvicorn.Server, threading.Thread]:
    from subscribers.server import build_server
    from subscribers.web_app import create_app

    app = create_app(svc)
    app.state.scheduler = sched
    server = build_server(app, host, port, svc.settings.trusted_proxies)
    # In a thread uvicorn installs no signal handlers: ours (stop_on_signals) stay in charge.
    thread = threading.Thread(target=_run_web, args=(server,), name="web", daemon=True)
    thread.start()
    return server, thread


def _run_web(server: uvicorn.Server) -> None:
    """uvicorn exits through SystemExit when it cannot start (a busy port): say so and end."""
    try:
        server.run()
    except SystemExit as exc:
        log.error("the web server could not start (uvicorn exit code %s)", exc.code)
