"""A service's PostgreSQL database through an asyncpg pool: what both PostgreSQL stores share.

- A pool of at most `--db_pool_size` connections (asyncpg prepares each statement once per
  connection and keeps it). Every statement runs on its own, autocommitted: as on SQLite, a
  write and its price point are one statement (the triggers run inside it).
- No reset query on release: asyncpg's default runs one round trip on every release
  (`SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL;`), measured at 249 ->
  173 us per page query without it. Nothing here uses SET, LISTEN, cursors or session
  advisory locks; the migrations' lock is a transaction lock, gone at COMMIT, and an open
  transaction is still rolled back by asyncpg on release whatever `reset` is.
- Schema: migrations/<service>/postgresql, applied once per database under an advisory
  lock (common.migrations).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, TypeVar

import asyncpg

from common.errors import Changed, NotFound
from common.migrations import load, migrate_postgres
from common.validation import IfMatch

DEFAULT_POOL_SIZE = 10

PgStoreT = TypeVar("PgStoreT", bound="PgStore")


async def _keep_session(connection: asyncpg.Connection) -> None:
    """The pool's `reset`: nothing to undo (see the module's doc)."""


async def open_pool(url: str, pool_size: int = DEFAULT_POOL_SIZE) -> asyncpg.Pool:
    """A pool on `url`, one connection open at once, up to `pool_size` under load."""
    pool = await asyncpg.create_pool(url, min_size=1, max_size=pool_size, reset=_keep_session)
    assert pool is not None  # create_pool answers None only when not awaited
    return pool


class PgStore:
    """One service's pool, opened with the migrations of `SERVICE`, checked by reading
    `TABLE`, and conditional writes. A subclass adds its queries ($1, $2, ... placeholders)
    and raises the domain errors of common/errors.py, as the SQLite store does."""

    SERVICE: ClassVar[str]
    TABLE: ClassVar[str]

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @classmethod
    async def open(cls: type[PgStoreT], url: str,
                   pool_size: int = DEFAULT_POOL_SIZE) -> PgStoreT:
        pool = await open_pool(url, pool_size)
        try:
            async with pool.acquire() as connection:
                await migrate_postgres(connection, cls.SERVICE, load(cls.SERVICE, "postgresql"))
        except BaseException:
            await pool.close()
            raise
        return cls(pool)

    async def close(self) -> None:
        await self.pool.close()

    async def fetch_all(self, sql: str, parameters: Sequence[Any] = ()) -> list[asyncpg.Record]:
        """All rows of one statement (its own transaction)."""
        return await self.pool.fetch(sql, *parameters)

    @staticmethod
    def version_condition(if_match: IfMatch | None, number: int) -> tuple[str, tuple[Any, ...]]:
        """SQL to AND onto a write's WHERE, whose parameter is $`number`, and its parameters:
        the write happens only at a version If-Match names (one statement, no race)."""
        if if_match is None or if_match.any:
            return "", ()
        versions = sorted(if_match.versions) or [-1]  # no record is at version -1
        return f" AND updated_at = ANY(${number}::bigint[])", (versions,)

    async def unwritten(self, what: str, ident: int) -> NotFound | Changed:
        """Why a write by id touched no row: the record is missing, or at another version."""
        exists = await self.fetch_all(f"SELECT 1 FROM {self.TABLE} WHERE id = $1", (ident,))
        return Changed(what, ident) if exists else NotFound(what, ident)

    async def check(self) -> None:
        """Raise unless the table can be read (readiness)."""
        await self.fetch_all(f"SELECT id FROM {self.TABLE} LIMIT 1")


def row_json_sql(subquery: str) -> str:
    """SQL writing each row of `subquery` as one JSON text whose keys are its columns, in
    order: the same bytes as SQLite's json_object (row_to_json writes no spaces and keeps the
    column order; json_build_object adds spaces, jsonb reorders keys). Over the subquery, so
    that rows its OFFSET skips are never made JSON; a plain scan of the subquery above, no
    join or sort, keeps its ORDER BY."""
    return f"SELECT row_to_json(t)::text FROM ({subquery}) t"


def database_kind(url: str) -> str:
    """'sqlite' or 'postgresql', from a --database_url (raises on anything else)."""
    for prefix, kind in (("sqlite:///", "sqlite"), ("postgresql://", "postgresql"),
                         ("postgres://", "postgresql")):
        if url.startswith(prefix):
            return kind
    raise ValueError(f"--database_url: want sqlite:///<path> or postgresql://..., not {url!r}")


def sqlite_path(url: str) -> str:
    """The file of a sqlite:/// URL: sqlite:///listings.db is ./listings.db,
    sqlite:////var/lib/portal/listings.db an absolute path (as SQLAlchemy reads them)."""
    assert database_kind(url) == "sqlite", url
    return url[len("sqlite:///"):]
