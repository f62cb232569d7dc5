"""The one web server: ``newsletter serve`` and ``newsletter start`` both run what this builds.

Built in one place so that the two commands cannot drift apart again (``start``, the
command containers and units run, once logged link tokens and announced its server):

- the access log goes through the process's own logging (``newsletter.logs``: text or
  JSON, shown with ``--debug``), and link tokens are cut out of it: a manage or
  unsubscribe token is a bearer credential, and logs travel to collectors;
- no ``Server`` header (it only tells a scanner what to try);
- ``X-Forwarded-For``/``-Proto`` are trusted only from the proxies named in
  NEWSLETTER_TRUSTED_PROXIES (addresses or CIDRs), by default from none. uvicorn's own
  default trusts loopback, which let any local client pick its address, and so its
  subscribe allowance, by writing the header; and a proxy that is not on loopback
  (compose, Kubernetes) made every reader share the proxy's one allowance.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
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


def build_server(
    app: ASGIApp, host: str, port: int, trusted_proxies: Sequence[str] = ()
) -> uvicorn.Server:
    """The uvicorn server for ``app`` on ``host:port``, with the policy above.

    ``trusted_proxies`` (``Settings.trusted_proxies``): the only peers whose forwarded
    headers name the client; empty, the connecting address is the client.

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
        proxy_headers=bool(trusted_proxies),
        forwarded_allow_ips=list(trusted_proxies),
        server_header=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN,
    )
    return uvicorn.Server(config)
