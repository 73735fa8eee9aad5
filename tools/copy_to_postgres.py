"""Copy one service's SQLite file into its (empty) PostgreSQL database: moving up.

    python -m tools.copy_to_postgres --service listing \\
        --from sqlite:///listings.db --to postgresql://portal@db:5432/listings

Every row keeps its id and timestamps; the listing service's price history and the user
service's password hashes and login failures come along. The target gets its schema from
the migrations (as the service would), then the rows, in ONE transaction, then its id
sequence is set past the highest id the file ever gave (SQLite's AUTOINCREMENT counter, so
an id deleted before the copy is not given again). A target with any row is refused: exit 1
and a message, nothing written. Stop the service on the SQLite file first; the file itself
is only brought up to its latest schema (as opening it with the service would) and read.
"""
from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

import listing_service
import user_service
from common.db import SqliteStore
from common.pg import PgStore, database_kind, open_pool, sqlite_path


@dataclass(frozen=True)
class Plan:
    """What to copy of one service: its tables with their columns, in insert order, and the
    table whose id sequence follows the copy."""

    tables: tuple[tuple[str, tuple[str, ...]], ...]
    sequence_table: str
    sqlite_store: type[SqliteStore]
    pg_store: type[PgStore]


PLANS = {
    "listing": Plan(
        (("listings", ("id", "user_id", "listing_type", "price", "created_at", "updated_at",
                       "price_changed_at")),
         ("price_history", ("listing_id", "price", "changed_at"))),
        "listings", listing_service.ListingStore, listing_service.PgListingStore),
    "user": Plan(
        (("users", ("id", "name", "created_at", "updated_at", "password_hash")),
         ("login_failures", ("user_id", "failed_at"))),
        "users", user_service.UserStore, user_service.PgUserStore),
}
BATCH = 10_000


class Refused(Exception):
    """The copy cannot run; nothing was written."""


async def copy(service: str, source_url: str, target_url: str) -> dict[str, int]:
    """Copy `service`'s SQLite file at `source_url` into `target_url`; rows copied per table."""
    plan = PLANS[service]
    if database_kind(source_url) != "sqlite" or database_kind(target_url) != "postgresql":
        raise Refused("--from must be sqlite:///<path> and --to postgresql://...")
    path = sqlite_path(source_url)
    try:  # read-only: a mistyped path is refused instead of made
        sqlite3.connect(f"file:{path}?mode=ro", uri=True).close()
    except sqlite3.OperationalError as error:
        raise Refused(f"cannot open {path}: {error}") from None
    await (await plan.sqlite_store.open(path)).close()  # its latest schema
    await (await plan.pg_store.open(target_url, 1)).close()  # the target's schema
    source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    pool = await open_pool(target_url, 1)
    counts = {}
    try:
        async with pool.acquire() as connection, connection.transaction():
            names = ", ".join(table for table, _ in plan.tables)
            await connection.execute(f"LOCK TABLE {names} IN EXCLUSIVE MODE")
            for table, _ in plan.tables:
                if await connection.fetchval(f"SELECT EXISTS (SELECT 1 FROM {table})"):
                    raise Refused(f"the target database is not empty ({table} has rows):"
                                  " refusing to copy into it")
            # The rows come with their own price points: the trigger that would add one per
            # new listing is off for this transaction's inserts (ALTER TABLE is transactional).
            for table, _ in plan.tables:
                await connection.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
            for table, columns in plan.tables:
                counts[table] = await copy_table(source, connection, table, columns)
            for table, _ in plan.tables:
                await connection.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
            await advance_sequence(source, connection, plan.sequence_table)
    finally:
        source.close()
        await pool.close()
    return counts


async def copy_table(source: sqlite3.Connection, connection: asyncpg.Connection, table: str,
                     columns: Sequence[str]) -> int:
    cursor = source.execute(f"SELECT {', '.join(columns)} FROM {table}")
    copied = 0
    while rows := cursor.fetchmany(BATCH):
        await connection.copy_records_to_table(table, records=rows, columns=list(columns))
        copied += len(rows)
    return copied


async def advance_sequence(source: sqlite3.Connection, connection: asyncpg.Connection,
                           table: str) -> None:
    """The next id PostgreSQL gives is past every id the SQLite file gave."""
    highest = source.execute(f"SELECT max(id) FROM {table}").fetchone()[0] or 0
    counter = source.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (table,)).fetchone()
    highest = max(highest, counter[0] if counter else 0)
    if highest:  # else the sequence stays where a new database has it: 1 comes first
        await connection.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), $1)",
                                 highest)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.copy_to_postgres",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--service", choices=sorted(PLANS), required=True)
    parser.add_argument("--from", dest="source", required=True, help="sqlite:///<path>")
    parser.add_argument("--to", dest="target", required=True,
                        help="postgresql://user@host:port/dbname (empty)")
    args = parser.parse_args(argv)
    try:
        counts = asyncio.run(copy(args.service, args.source, args.target))
    except Refused as refused:
        print(f"copy_to_postgres: {refused}", file=sys.stderr)  # noqa: T201
        return 1
    for table, count in counts.items():
        print(f"{table}: {count} rows copied")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
