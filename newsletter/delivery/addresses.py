"""Addresses as they travel: the domain IDNA-encoded (RFC 5890), the local part as is.

Readers' addresses are stored as they typed them (``user@bücher.example``): readable,
and unique as a person means them. On the wire a header or an SMTP command wants the
domain in ASCII (``user@xn--bcher-kva.example``); left to Python's e-mail package, the
domain became an encoded word (``user@=?utf-8?q?b=C3=BCcher?=.example``), which no
server can deliver to. A non-ASCII local part has no ASCII form: only a server that
announces SMTPUTF8 (RFC 6531) takes it, and the subscribe form refuses it otherwise.
"""

from __future__ import annotations

import idna


def wire_address(address: str) -> str:
    """``address`` with its domain in IDNA ASCII form; unchanged when already ASCII."""
    if address.isascii():  # nearly every address: nothing to encode
        return address
    local, at, domain = address.rpartition("@")
    if not at or domain.isascii():
        return address
    try:
        ascii_domain = idna.encode(domain, uts46=True).decode("ascii")
    except idna.IDNAError:
        # Not a valid IDN: leave it for the server to refuse, with its own words.
        return address
    return f"{local}@{ascii_domain}"


def has_utf8_local_part(address: str) -> bool:
    """True when the part before ``@`` is not ASCII (it needs SMTPUTF8 end to end)."""
    return not address.rpartition("@")[0].isascii()
