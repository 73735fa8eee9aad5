"""200 concurrent creates through the public API, with reads running during the burst.

Real processes, real SQLite. Every create must be acknowledged with its own id, every record
must read back, no read may fail while the writes run, and "database is locked" never shows.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from harness.processes import Stack, http, start_stack

CONCURRENCY = 200


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    started = start_stack(tmp_path_factory.mktemp("load"))
    yield started
    started.stop()


def all_at_once(call: Callable[[int], tuple[int, Any]]) -> list[tuple[int, Any]]:
    """Run `call(0..CONCURRENCY-1)` on as many threads, released together by a barrier."""
    barrier = threading.Barrier(CONCURRENCY)

    def released(n: int) -> tuple[int, Any]:
        barrier.wait()
        return call(n)

    with ThreadPoolExecutor(CONCURRENCY) as pool:
        return list(pool.map(released, range(CONCURRENCY)))


class Reader(threading.Thread):
    """Reads the public list in a loop until stopped, keeping every answer."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.answers: list[tuple[int, Any]] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            self.answers.append(http("GET", self.url, timeout=30))


def test_200_concurrent_creates_all_land_and_reads_never_fail_meanwhile(stack: Stack) -> None:
    public = stack.public.url + "/public-api"
    reader = Reader(public + "/listings?page_size=100")
    reader.start()
    try:
        made_users = all_at_once(lambda n: http("POST", public + "/users", {"name": f"User {n}"},
                                                timeout=60))
        assert [status for status, _ in made_users] == [201] * CONCURRENCY, made_users
        users = [body["user"] for _, body in made_users]
        assert len({user["id"] for user in users}) == CONCURRENCY
        assert [user["name"] for user in users] == [f"User {n}" for n in range(CONCURRENCY)]

        made_listings = all_at_once(lambda n: http(
            "POST", public + "/listings",
            {"user_id": users[n]["id"], "listing_type": "rent", "price": n + 1}, timeout=60))
    finally:
        reader.stopping.set()
        reader.join()
    assert [status for status, _ in made_listings] == [201] * CONCURRENCY, made_listings
    listings = [body["listing"] for _, body in made_listings]
    assert len({listing["id"] for listing in listings}) == CONCURRENCY

    assert len(reader.answers) > 1
    for status, body in reader.answers:
        assert status == 200, body
        assert all(listing["user"] is not None for listing in body["listings"]), body

    assert_all_readable(stack, users, listings)
    assert "database is locked" not in stack.output()


def assert_all_readable(stack: Stack, users: list[dict], listings: list[dict]) -> None:
    by_id = {user["id"]: user for user in users}
    for start in range(0, CONCURRENCY, 100):
        ids = ",".join(str(user["id"]) for user in users[start:start + 100])
        status, body = http("GET", f"{stack.user.url}/users?ids={ids}")
        assert status == 200 and body["users"] == users[start:start + 100]
    seen = []
    for page in (1, 2, 3):
        status, body = http("GET", f"{stack.public.url}/public-api/listings"
                                   f"?page_size=100&page_num={page}")
        assert status == 200, body
        seen.extend(body["listings"])
    assert len(seen) == CONCURRENCY
    expected = {listing["id"]: (listing["price"], by_id[listing["user_id"]])
                for listing in listings}
    assert {listing["id"]: (listing["price"], listing["user"]) for listing in seen} == expected
