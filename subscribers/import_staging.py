"""The rows of a CSV import, staged in a temporary table of the import's connection.

An import checks the whole file before it writes anything, and an address the file
repeats counts once (its last row wins): both need the whole file at hand. The
database holds it instead of Python, so an import's memory is one chunk of rows
whether the file has a thousand rows or ten million. Valid rows go into the
temporary table as they are read (``COPY`` on PostgreSQL, ``executemany``
elsewhere); repeated addresses are merged there by one ``DELETE``; the writing pass
then reads the table back in chunks, in the file's order.

A temporary table belongs to one connection and disappears with it: two imports at
once never see each other's rows.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

#: line number, address, categories (joined), language, interests text (None: keep)
Row = tuple[int, str, str, str, str | None]

_METADATA = sa.MetaData()
STAGED = sa.Table(
    "import_rows",
    _METADATA,
    sa.Column("line", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column("categories", sa.String, nullable=False),
    sa.Column("language", sa.String(16), nullable=False),
    sa.Column("interests", sa.Text, nullable=True),
    sa.Index("ix_import_rows_email", "email", "line"),
    prefixes=["TEMPORARY"],
)
_COLUMNS = [c.name for c in STAGED.columns]


class Staging:
    """The staged rows of one import on ``conn`` (created now, dropped by ``drop``)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        # A pooled connection may still hold the table of an import that crashed.
        STAGED.drop(conn, checkfirst=True)
        STAGED.create(conn)

    def add(self, rows: Sequence[Row]) -> None:
        """Stage ``rows`` (valid rows, in file order)."""
        if not rows:
            return
        if self.conn.dialect.name == "postgresql":
            raw = self.conn.connection.driver_connection
            assert raw is not None
            columns = ", ".join(_COLUMNS)
            with (
                raw.cursor() as cursor,
                cursor.copy(f"COPY {STAGED.name} ({columns}) FROM STDIN") as copy,
            ):
                for row in rows:
                    copy.write_row(row)
            return
        self.conn.execute(
            sa.insert(STAGED), [dict(zip(_COLUMNS, row, strict=True)) for row in rows]
        )

    def merge_repeats(self) -> int:
        """Drop every row whose address comes again later in the file; returns how many."""
        later = STAGED.alias("later")
        result = self.conn.execute(
            sa.delete(STAGED).where(
                sa.exists().where(later.c.email == STAGED.c.email, later.c.line > STAGED.c.line)
            )
        )
        return int(result.rowcount or 0)

    def chunks(self, size: int) -> Iterator[list[Row]]:
        """The staged rows in file order, ``size`` at a time (keyset pages by line)."""
        query = (
            sa.select(*STAGED.columns)
            .where(STAGED.c.line > sa.bindparam("last"))
            .order_by(STAGED.c.line)
            .limit(size)
        )
        last = 0
        while True:
            rows: list[Row] = [
                (line, email, categories, language, text)
                for line, email, categories, language, text in self.conn.execute(
                    query, {"last": last}
                )
            ]
            if not rows:
                return
            yield rows
            last = rows[-1][0]

    def drop(self) -> None:
        STAGED.drop(self.conn, checkfirst=True)
