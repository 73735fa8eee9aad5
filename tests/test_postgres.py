"""The PostgreSQL backend as real processes and tools (#15): migrations applied once by four
processes starting at once (and on one SQLite file), acknowledged writes surviving SIGKILL,
and tools/copy_to_postgres.py moving a service's SQLite file up, every row kept."""
from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import asyncpg

import listing_service
import user_service
from harness.processes import ROOT, Service, free_port, http

MIGRATED = {"listing_service.py": ["0001_listings.sql", "0002_price_history.sql"],
            "user_service.py": ["0001_users.sql", "0002_password_hash.sql"]}


def start_at_once(script: str, tmp: Path, database: str, count: int = 4) -> list[Service]:
    services = [Service(script, free_port(), [database, "--log_batch_delay=0"],
                        tmp / f"{n}-{Path(script).stem}.log") for n in range(count)]
    with ThreadPoolExecutor(count) as pool:
        started = [pool.submit(service.start) for service in services]
    try:
        for future in started:
            future.result()
    except BaseException:  # stop the ones that came up (a failed start cleaned up itself)
        for service, start in zip(services, started, strict=True):
            if start.exception() is None:
                service.stop(signal.SIGKILL)
        raise
    return services


def check_applied_once(services: list[Service], script: str) -> None:
    logs = "".join(service.output() for service in services)
    for name in MIGRATED[script]:
        assert logs.count(f"applied migration {name}") == 1, logs
    for n, service in enumerate(services):  # all four serve, reads and writes
        if script == "user_service.py":
            status, body = http("POST", service.url + "/users", {"name": f"U{n}"}, form=True)
        else:
            status, body = http("POST", service.url + "/listings",
                                {"user_id": 1, "listing_type": "rent", "price": 5}, form=True)
        assert status == 201, body
        assert http("GET", service.url + "/ready")[0] == 200


def test_four_processes_on_one_fresh_database_apply_each_migration_once(
        tmp_path: Path, pg_database: Callable[[str], str]) -> None:
    for script in MIGRATED:
        for database in (f"--database_url={pg_database('fresh')}",
                         f"--database_url=sqlite:///{tmp_path / script}.db"):
            services = start_at_once(script, tmp_path, database)
            try:
                check_applied_once(services, script)
            finally:
                for service in services:
                    service.stop(signal.SIGKILL)
            for service in services:
                service.log_path.unlink()


# --- moving up: tools/copy_to_postgres.py ----------------------------------------------------

LISTINGS, USERS = 10_000, 1_000
TABLES = {"listing": {"listings": "id, user_id, listing_type, price, created_at, updated_at,"
                                  " price_changed_at",
                      "price_history": "listing_id, price, changed_at"},
          "user": {"users": "id, name, created_at, updated_at, password_hash",
                   "login_failures": "user_id, failed_at"}}


async def make_sqlite_files(folder: Path) -> None:
    """10,000 listings (some repriced, some deleted) and 1,000 users (some with a password
    hash, some with failed logins), through the stores themselves."""
    listings = await listing_service.ListingStore.open(str(folder / "listings.db"))
    try:
        await listings.bulk_create((n % 97 + 1, ("rent", "sale")[n % 2], n + 1, 10 ** 15 + n)
                                   for n in range(LISTINGS))
        for listing_id in range(1, LISTINGS + 1, 50):
            await listings.update(listing_id, price=9_223_372_036_854_775_807)
        for listing_id in (7, LISTINGS):  # the highest too: the sequence must pass it anyway
            await listings.delete(listing_id)
    finally:
        await listings.close()
    users = await user_service.UserStore.open(str(folder / "users.db"))
    try:
        await users.bulk_create((f"Üser {n} 東京 \u2028", 10 ** 15 + n) for n in range(USERS))
        for user_id in range(1, USERS + 1, 10):
            await users.set_password_hash(user_id, f"$argon2id$v=19$m=65536,t=3,p=4$fake{user_id}")
            await users.record_failure(user_id, 10 ** 12)
    finally:
        await users.close()


def sqlite_rows(path: Path, table: str, columns: str) -> list[tuple]:
    db = sqlite3.connect(path)
    try:
        return sorted(db.execute(f"SELECT {columns} FROM {table}").fetchall())
    finally:
        db.close()


async def pg_rows(url: str, table: str, columns: str) -> list[tuple]:
    connection = await asyncpg.connect(url)
    try:
        return sorted(tuple(row) for row in await connection.fetch(
            f"SELECT {columns} FROM {table}"))
    finally:
        await connection.close()


def copy_command(service: str, source: Path, target: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tools.copy_to_postgres", "--service", service,
         "--from", f"sqlite:///{source}", "--to", target],
        cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_copy_to_postgres_keeps_every_row_and_refuses_a_non_empty_target(
        tmp_path: Path, pg_database: Callable[[str], str]) -> None:
    asyncio.run(make_sqlite_files(tmp_path))
    for service, file, created in (("listing", "listings.db", "listings"),
                                   ("user", "users.db", "users")):
        target = pg_database(created)
        done = copy_command(service, tmp_path / file, target)
        assert done.returncode == 0, done.stderr
        for table, columns in TABLES[service].items():
            expected = sqlite_rows(tmp_path / file, table, columns)
            assert expected, table
            assert asyncio.run(pg_rows(target, table, columns)) == expected, table
            assert f"{table}: {len(expected)} rows copied" in done.stdout
        # Into a database that has rows: refused, nothing written.
        again = copy_command(service, tmp_path / file, target)
        assert again.returncode == 1
        assert "not empty" in again.stderr and "refusing" in again.stderr, again.stderr
        main_table = created
        assert len(asyncio.run(pg_rows(target, main_table, "id"))) == len(
            sqlite_rows(tmp_path / file, main_table, "id"))
    # The copies serve: a new listing's id comes after every id the file ever gave.
    assert asyncio.run(next_listing_id(target_of(tmp_path, pg_database))) == LISTINGS + 1


def target_of(tmp_path: Path, pg_database: Callable[[str], str]) -> str:
    target = pg_database("listings")
    assert copy_command("listing", tmp_path / "listings.db", target).returncode == 0
    return target


async def next_listing_id(url: str) -> Any:
    store = await listing_service.PgListingStore.open(url)
    try:
        created = await store.create(1, "rent", 5)
        assert await store.prices(created["id"]) == [
            {"price": 5, "changed_at": created["updated_at"]}]  # the trigger is back on
        return created["id"]
    finally:
        await store.close()
