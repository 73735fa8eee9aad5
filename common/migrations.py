"""Schema changes as numbered SQL files, applied once per database, on SQLite and PostgreSQL.

    migrations/<service>/<backend>/0001_listings.sql, 0002_price_history.sql, ...

A database records what it has had in `schema_version` (version, name, applied_at). Opening
a store applies the files it has not had, in order, ALL IN ONE TRANSACTION with their rows
in schema_version, under a lock taken before schema_version is read: `BEGIN IMMEDIATE` on
SQLite (the file's write lock), `pg_advisory_xact_lock` on PostgreSQL (one key per service).
So N processes starting at once on one fresh database apply each file exactly once (the
others wait, then find nothing to do), and a crash leaves the database before or after the
whole batch, never half-way.

SQLite files made before schema_version existed (code that counted its one upgrade step in
`PRAGMA user_version`) are adopted: the store's `legacy_version` reads what the file already
has and those versions are recorded as applied, without running them.

Why not yoyo-migrations or alembic: the services open their databases on asyncio drivers
(aiosqlite, asyncpg), which neither tool speaks (yoyo wants psycopg or sqlite3, alembic
SQLAlchemy); yoyo's lock is a row in a lock table, which a killed process leaves behind,
where an advisory transaction lock ends with its connection. What is needed is ~80 lines.
"""
from __future__ import annotations

import hashlib
import logging
import re
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite

log = logging.getLogger(__name__)
FOLDER = Path(__file__).resolve().parents[1] / "migrations"
def now_us() -> int:
    return time.time_ns() // 1000


FILE_NAME = re.compile(r"(\d{4})_[a-z0-9_]+\.sql")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str  # the file's name
    sql: str


def load(service: str, backend: str) -> list[Migration]:
    """The service's migrations for `backend` ("sqlite" or "postgresql"), in order, numbered
    1, 2, ... with no gap (a gap or a stray file is a mistake, raised at once)."""
    found = []
    for path in sorted((FOLDER / service / backend).iterdir()):
        match = FILE_NAME.fullmatch(path.name)
        if not match:
            raise ValueError(f"{path}: not a migration file (NNNN_name.sql)")
        found.append(Migration(int(match[1]), path.name, path.read_text()))
    if [m.version for m in found] != list(range(1, len(found) + 1)):
        raise ValueError(f"migrations/{service}/{backend}: not numbered 1, 2, ...: {found}")
    return found


def sqlite_statements(script: str) -> list[str]:
    """A script's statements, one by one (a trigger's body, with its `;`s, is one):
    Python's executescript would COMMIT first, out of the migration's transaction."""
    statements, pending = [], ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    if any(line.strip() and not line.strip().startswith("--") for line in pending.splitlines()):
        raise ValueError(f"an unfinished statement at the end: {pending!r}")
    return statements


SCHEMA_VERSION = """CREATE TABLE IF NOT EXISTS schema_version (
    version    BIGINT PRIMARY KEY,
    name       TEXT   NOT NULL,
    applied_at BIGINT NOT NULL
)"""


async def migrate_sqlite(db: aiosqlite.Connection, migrations: list[Migration],
                         legacy_version: Callable[[aiosqlite.Connection], Awaitable[int]]
                         ) -> list[str]:
    """Apply the migrations `db` has not had (see the module's doc); the names applied."""
    await db.execute("BEGIN IMMEDIATE")
    try:
        tables = await db.execute_fetchall(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'")
        if not tables:
            adopted = await legacy_version(db)
            await db.execute(SCHEMA_VERSION)
            await db.executemany(
                "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
                [(m.version, m.name, now_us()) for m in migrations[:adopted]])
        applied = {row[0] for row in await db.execute_fetchall(
            "SELECT version FROM schema_version")}
        done = []
        for migration in migrations:
            if migration.version in applied:
                continue
            for statement in sqlite_statements(migration.sql):
                await db.execute(statement)
            await db.execute(
                "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
                (migration.version, migration.name, now_us()))
            done.append(migration.name)
            log.info("applied migration %s", migration.name)
    except BaseException:
        await db.execute("ROLLBACK")
        raise
    await db.execute("COMMIT")
    return done


def lock_key(service: str) -> int:
    """The advisory lock of `service`'s migrations: a signed 64-bit number from its name."""
    digest = hashlib.sha256(f"migrations/{service}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


async def migrate_postgres(connection: Any, service: str, migrations: list[Migration]
                           ) -> list[str]:
    """Apply the migrations the database has not had (see the module's doc); the names
    applied. `connection` is an asyncpg connection no one else uses meanwhile."""
    done = []
    async with connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock($1)", lock_key(service))
        await connection.execute(SCHEMA_VERSION)
        applied = {row[0] for row in await connection.fetch("SELECT version FROM schema_version")}
        for migration in migrations:
            if migration.version in applied:
                continue
            await connection.execute(migration.sql)  # a script: the simple query protocol
            await connection.execute(
                "INSERT INTO schema_version (version, name, applied_at) VALUES ($1, $2, $3)",
                migration.version, migration.name, now_us())
            done.append(migration.name)
            log.info("applied migration %s", migration.name)
    return done
