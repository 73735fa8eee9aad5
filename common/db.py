"""Opening a service's SQLite file through aiosqlite, with the settings both stores rely on.

- Autocommit (`isolation_level=None`): every statement is its own transaction, so concurrent
  requests sharing the one connection never commit inside each other's transaction.
- WAL with `synchronous=NORMAL`: a committed write survives a crash of the process (it is in
  the WAL file, handed to the OS); on power loss the last few commits may roll back, but the
  database is never corrupted. Readers never block the writer.
- A busy timeout, so a second process on the same file (a backup, the bench seeder) waits
  rather than failing with "database is locked". Switching a new file to WAL is the one
  step SQLite may refuse at once, busy timeout or not (when two connections would otherwise
  wait on each other), so that step is retried, within the same budget.
- Schema: the numbered SQL files of migrations/<service>/sqlite, applied once per file by
  common.migrations (BEGIN IMMEDIATE), so a file made by older code is brought up to date
  when opened. The PostgreSQL stores (common/pg.py) do the same from .../postgresql.
"""
from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Awaitable, Iterable, Sequence
from typing import Any, ClassVar, TypeVar, cast

import aiosqlite

from common.errors import Changed, NotFound
from common.migrations import load, migrate_sqlite
from common.validation import IfMatch

BUSY_TIMEOUT_MS = 5000

StoreT = TypeVar("StoreT", bound="SqliteStore")


def now_us() -> int:
    """The stores' clock: integer microseconds since the epoch, as the contract stamps rows."""
    return time.time_ns() // 1000


class SqliteStore:
    """What both services' SQLite stores share: one connection, opened with the migrations of
    `SERVICE`, checked by reading `TABLE`, and conditional writes. A subclass adds its
    queries and raises the domain errors of common/errors.py."""

    SERVICE: ClassVar[str]  # its folder under migrations/
    TABLE: ClassVar[str]

    def __init__(self, db: aiosqlite.Connection) -> None:
        self.db = db

    @classmethod
    async def open(cls: type[StoreT], path: str) -> StoreT:
        db = await open_database(path)
        try:
            await migrate_sqlite(db, load(cls.SERVICE, "sqlite"), cls.legacy_version)
        except BaseException:
            await db.close()
            raise
        return cls(db)

    @staticmethod
    async def legacy_version(db: aiosqlite.Connection) -> int:
        """How many of the migrations a file made before schema_version already has (0 for a
        new file); a subclass reads its tables and PRAGMA user_version."""
        return 0

    async def close(self) -> None:
        await self.db.close()

    def fetch_all(self, sql: str, parameters: Sequence[Any] = ()) -> Awaitable[list[aiosqlite.Row]]:
        """All rows of one statement, in one trip to the database thread (execute, fetch and
        close at once: the bench's POST measured it against three trips)."""
        # aiosqlite types the rows as an Iterable; they are a list. A plain function that
        # hands back the awaitable, so the hot path gains no coroutine frame.
        return cast(Awaitable[list[aiosqlite.Row]], self.db.execute_fetchall(sql, parameters))

    @staticmethod
    def version_condition(if_match: IfMatch | None) -> tuple[str, tuple[int, ...]]:
        """SQL to AND onto a write's WHERE, and its parameters, so that the write happens only
        at a version If-Match names: the check and the write are one statement, no race."""
        if if_match is None or if_match.any:
            return "", ()
        versions = tuple(sorted(if_match.versions)) or (-1,)  # no record is at version -1
        return f" AND updated_at IN ({', '.join('?' * len(versions))})", versions

    async def unwritten(self, what: str, ident: int) -> NotFound | Changed:
        """Why a write by id touched no row: the record is missing, or at another version.
        (Read after the write failed: it only chooses the error; nothing was written.)"""
        exists = await self.fetch_all(f"SELECT 1 FROM {self.TABLE} WHERE id = ?", (ident,))
        return Changed(what, ident) if exists else NotFound(what, ident)

    async def check(self) -> None:
        """Raise unless the table can be read (readiness)."""
        await self.fetch_all(f"SELECT id FROM {self.TABLE} LIMIT 1")


async def open_database(path: str) -> aiosqlite.Connection:
    """Open (creating if absent) the SQLite file at `path`, with the settings above."""
    db = await aiosqlite.connect(path, isolation_level=None)
    try:
        db.row_factory = aiosqlite.Row
        await db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        await switch_to_wal(db)
        await db.execute("PRAGMA synchronous=NORMAL")
    except BaseException:
        await db.close()
        raise
    return db


async def switch_to_wal(db: aiosqlite.Connection) -> None:
    """PRAGMA journal_mode=WAL, retried while SQLite answers SQLITE_BUSY, for up to the busy
    timeout: processes opening one new file together each try to switch it, and SQLite
    refuses one of two at once, without waiting, where waiting could deadlock."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    pause = 0.001
    while True:
        try:
            await db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if error.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY:
                raise
            if time.monotonic() + pause > deadline:
                raise
        await asyncio.sleep(pause)
        pause = min(pause * 2, 0.1)


async def table_columns(db: aiosqlite.Connection, table: str) -> list[str]:
    """The columns of `table`, none if there is no such table."""
    return [row[1] for row in await db.execute_fetchall(f"PRAGMA table_info({table})")]


async def user_version(db: aiosqlite.Connection) -> int:
    """PRAGMA user_version: how code before schema_version counted a file's upgrades."""
    rows = await db.execute_fetchall("PRAGMA user_version")
    return int(next(iter(rows))[0])


def json_object_sql(columns: str, table: str = "") -> str:
    """SQL that writes a row as a JSON object whose keys are `columns` ("id, name"), in order.

    List reads select this instead of the columns: SQLite writes each row as JSON (integers
    as integers, text escaped), and the answer is joined from those texts, with no dict and
    no encoding per row in Python (callgrind: 6% fewer instructions per listing page
    request, 4% per batch of users).
    """
    prefix = f"{table}." if table else ""
    return "json_object(" + ", ".join(f"'{c}', {prefix}{c}" for c in columns.split(", ")) + ")"


async def insert_many(db: aiosqlite.Connection, sql: str, rows: Iterable[Sequence[Any]]) -> None:
    """Run `sql` for every row in ONE transaction (bulk seeding and imports).

    Only on a connection no request shares: the explicit transaction would take in the
    statements of concurrent requests. One commit instead of one per row is what makes a
    million rows take seconds.
    """
    await db.execute("BEGIN")
    try:
        await db.executemany(sql, rows)
    except BaseException:
        await db.execute("ROLLBACK")
        raise
    await db.execute("COMMIT")
