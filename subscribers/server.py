"""The one web server: ``newsletter serve`` and ``newsletter start`` both run what this builds.

Built in one place so that the two commands cannot drift apart again (``start``, the
command containers and units run, once logged link tokens and announced its server):

- the access log goes through the process's own logging (``newsletter.logs``: text or
  JSON, shown with ``--debug``), and link tokens are cut out of it: a manage or
  unsubscribe token is a bearer credential, and logs travel to collectors;
- no ``Server`` header (it only tells a scanner what to try);
- ``X-Forwarded-For``/``-Proto`` are trusted from the local proxy only (uvicorn's
  default ``forwarded_allow_ips``), so a reverse proxy on the same host works as is.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from subscribers.tokens import redact_token_paths

if TYPE_CHECKING:
    import uvicorn
    from starlette.types import ASGIApp

ACCESS_LOGGER = "uvicorn.access"
#: Seconds a stopping server gives open requests before it closes them.
GRACEFUL_SHUTDOWN = 10


class RedactTokens(logging.Filter):
    """Keeps link tokens out of the access log: they are bearer credentials."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact_token_paths(a) if isinstance(a, str) else a for a in record.args
            )
        return True


def build_server(app: ASGIApp, host: str, port: int) -> uvicorn.Server:
    """The uvicorn server for ``app`` on ``host:port``, with the policy above.

    The caller configures logging (``newsletter.logs.configure_logging``) and runs it:
    ``server.run()`` in the main thread (``serve``), or in a thread whose shutdown it
    drives through ``server.should_exit`` (``start``).
    """
    import uvicorn

    access = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, RedactTokens) for f in access.filters):
        access.addFilter(RedactTokens())
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        # None: uvicorn leaves logging alone, so its records reach our handler and format.
        log_config=None,
        proxy_headers=True,
        server_header=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN,
    )
    return uvicorn.Server(config)
