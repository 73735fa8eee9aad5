"""What both stores share (common/db.py) and their domain errors (common/errors.py).

The stores know nothing of HTTP: a lookup that finds nothing raises `NotFound`, and the one
error path (`JsonHandler.write_error`) turns it into a 404, without logging it as a bug.
"""
from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from tornado.web import HTTPError

from common.db import SqliteStore, now_us, open_database
from common.errors import NotFound, http_error
from common.pg import PgStore
from tests.support.http import call


@pytest.mark.gen_test
async def test_the_listing_store_raises_a_domain_not_found(listing_store):
    for attempt in (listing_store.get(5), listing_store.update(5, price=1),
                    listing_store.delete(5)):
        with pytest.raises(NotFound) as raised:
            await attempt
        assert not isinstance(raised.value, HTTPError)
        assert (raised.value.what, raised.value.ident) == ("listing", 5)


@pytest.mark.gen_test
async def test_the_user_store_raises_a_domain_not_found(user_store):
    for attempt in (user_store.get(9), user_store.update(9, name="x")):
        with pytest.raises(NotFound) as raised:
            await attempt
        assert not isinstance(raised.value, HTTPError)
        assert str(raised.value) == "user 9 does not exist"


def test_a_domain_error_maps_to_its_status_and_anything_else_to_none():
    answer = http_error(NotFound("listing", 3))
    assert answer is not None
    assert (answer.status_code, answer.errors) == (404, ["listing 3 does not exist"])
    assert http_error(ValueError("a bug")) is None
    assert http_error(None) is None


@pytest.mark.gen_test
async def test_not_found_answers_404_json_and_is_not_logged_as_a_bug(listing_svc, caplog):
    with caplog.at_level(logging.ERROR):
        reply = await call("GET", listing_svc.url + "/listings/42")
    assert (reply.status, reply.body) == (404, {"result": False,
                                                "errors": ["listing 42 does not exist"]})
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.gen_test
async def test_both_stores_share_open_check_close_and_the_clock(listing_store, user_store,
                                                                backend):
    base = SqliteStore if backend == "sqlite" else PgStore
    assert isinstance(listing_store, base) and isinstance(user_store, base)
    await listing_store.check()
    await user_store.check()
    assert now_us() > 1_700_000_000_000_000  # microseconds, not seconds or nanoseconds


@pytest.mark.gen_test(timeout=30)
async def test_many_connections_opening_one_fresh_file_at_once_all_open(tmp_path: Path):
    """Switching a fresh file to WAL can meet SQLITE_BUSY at once, without the busy timeout
    (SQLite refuses rather than risk a deadlock); processes starting together on one new
    file met it about once in a hundred opens, and the loser crashed at start-up."""
    async def open_and_close(path: Path) -> None:
        db = await open_database(str(path))
        await db.close()

    failed = []
    for round_ in range(200):
        path = tmp_path / f"{round_}.db"
        outcomes = await asyncio.gather(*(open_and_close(path) for _ in range(8)),
                                        return_exceptions=True)  # every connection closed
        failed += [repr(outcome) for outcome in outcomes if outcome is not None]
    assert failed == []
