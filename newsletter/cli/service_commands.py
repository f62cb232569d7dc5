"""Commands that run or inspect the service: serve, start, status."""

from __future__ import annotations

import argparse
import logging
import os

from newsletter.cli.common import configure_logging, out, services, settings
from newsletter.cli.registry import HOST, JSON, PORT, arg, command


@command(
    "serve",
    "run the web app: subscribe, manage, unsubscribe, archive",
    HOST,
    PORT,
    log_level=logging.INFO,
)
def serve(args: argparse.Namespace) -> int:
    from newsletter.app import Services
    from subscribers.server import build_server
    from subscribers.web_app import create_app

    loaded = settings(args)
    loaded.require_serving_secret(args.host)
    app = create_app(Services.build(loaded))
    build_server(app, args.host, args.port, loaded.trusted_proxies).run()
    return 0


@command(
    "start",
    "run the web app and the daily schedule in one process",
    HOST,
    PORT,
    arg("--no-web", action="store_true", help="run only the scheduler"),
    arg("--no-scheduler", action="store_true", help="run only the web app"),
    log_level=logging.INFO,
)
def start(args: argparse.Namespace) -> int:
    from newsletter.daemon import run_daemon
    from newsletter.delivery import get_backend
    from newsletter.retry import connect
    from newsletter.scheduler import parse_trigger
    from newsletter.settings import load_settings

    settings = load_settings()
    if not args.no_web:
        settings.require_serving_secret(args.host)
    if not args.no_scheduler:
        parse_trigger(settings.schedule, settings.timezone)
    configure_logging(args.debug, settings.log_format, args.log_level)
    svc = connect(settings)
    get_backend(svc.settings)  # refuse a bad mail setup at start, not at 07:00
    ended = run_daemon(
        svc,
        lambda: get_backend(svc.settings),
        host=args.host,
        port=args.port,
        web=not args.no_web,
        scheduler=not args.no_scheduler,
    )
    if ended.hard:
        # A run thread is still mailing; only a hard exit keeps the 30 s shutdown promise.
        logging.shutdown()
        os._exit(ended.code)
    return ended.code


@command("status", "database, scheduler, last issue and next run", JSON)
def status(args: argparse.Namespace) -> int:
    from newsletter.health import health, status_lines

    data = health(services(args))
    out(data, args.json, lambda: status_lines(data))
    return 0 if data["ok"] else 1


COMMANDS = (serve, start, status)
