"""Every acknowledged record survives the data services being killed outright (SIGKILL).

SIGKILL gives a process no chance to flush or close anything: what survives is what the
database had committed before the 201 went out (SQLite: its WAL file; PostgreSQL: the server,
which the kill does not touch). On both backends.
"""
from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.processes import Stack, http, start_stack


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_acknowledged_users_and_listings_survive_sigkill_and_restart(
        tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> None:
    urls = None
    if backend == "postgresql":
        pg_database: Callable[[str], str] = request.getfixturevalue("pg_database")
        urls = (pg_database("listings"), pg_database("users"))
    stack = start_stack(tmp_path, database_urls=urls)
    try:
        users, listings = [], []
        for n in range(20):
            status, body = http("POST", stack.public.url + "/public-api/users",
                                {"name": f"Owner {n} \u00e9\u6771"})
            assert status == 201, body
            users.append(body["user"])
            status, body = http("POST", stack.public.url + "/public-api/listings",
                                {"user_id": users[-1]["id"], "listing_type": "sale",
                                 "price": 1000 + n})
            assert status == 201, body
            listings.append(body["listing"])
        for service in (stack.listing, stack.user):
            assert service.stop(signal.SIGKILL) == -signal.SIGKILL
        if backend == "sqlite":  # the commits live in the WAL
            assert (tmp_path / "users.db-wal").stat().st_size > 0
        for service in (stack.listing, stack.user):
            service.start()  # same port, same database

        assert_all_there(stack, users, listings)
    finally:
        stack.stop()


def assert_all_there(stack: Stack, users: list[dict], listings: list[dict]) -> None:
    for user in users:
        assert http("GET", f"{stack.user.url}/users/{user['id']}") == (
            200, {"result": True, "user": user})
    status, body = http("GET", stack.listing.url + "/listings?page_size=100")
    assert status == 200 and body["listings"] == listings[::-1]  # newest first
    status, body = http("GET", stack.public.url + "/public-api/listings?page_size=100")
    assert status == 200
    owners = {listing["id"]: listing["user"] for listing in body["listings"]}
    assert owners == {listing["id"]: user for listing, user in zip(listings, users, strict=True)}
