"""Price history in the listing service (#16): the points a create and a PATCH record, in
the same statement as the change; the window read; the price_changed_since filter; the
upgrade of a database made before price history existed; and the query plans."""
from __future__ import annotations

import asyncio
import itertools
import sqlite3
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from common.validation import Page
from listing_service import ListingStore
from tests.support.apps import Served
from tests.support.checks import assert_error
from tests.support.http import call
from tests.support.stores import run_sql

# What a refused write raises, on either backend.
INTEGRITY_ERRORS = (sqlite3.IntegrityError, asyncpg.IntegrityConstraintViolationError)


async def create(listing_svc: Served, price: int = 6000, listing_type: str = "rent",
                 user_id: int = 1) -> dict:
    reply = await call("POST", f"{listing_svc.url}/listings",
                       form={"user_id": user_id, "listing_type": listing_type, "price": price})
    assert reply.status == 201, reply.body
    return reply.body["listing"]


async def patch(listing_svc: Served, listing_id: int, **changes: Any) -> Any:
    return await call("PATCH", f"{listing_svc.url}/listings/{listing_id}", form=changes)


async def prices(listing_svc: Served, listing_id: int, query: str = "") -> list[dict]:
    reply = await call("GET", f"{listing_svc.url}/listings/{listing_id}/prices?{query}")
    assert reply.status == 200, reply.body
    assert list(reply.body) == ["result", "prices"] and reply.body["result"] is True
    return reply.body["prices"]


def point(listing: dict) -> dict:
    """The point a create or a price change answered with `listing` must have left."""
    return {"price": listing["price"], "changed_at": listing["updated_at"]}


@pytest.mark.gen_test
async def test_a_create_and_each_price_change_record_one_point_and_nothing_else_does(
        listing_svc: Served) -> None:
    created = await create(listing_svc, 6000)
    lid = created["id"]
    assert created["created_at"] == created["updated_at"]
    first_change = (await patch(listing_svc, lid, price=5000)).body["listing"]
    assert (await patch(listing_svc, lid, price=5000)).status == 200  # same price: no point
    assert (await patch(listing_svc, lid, listing_type="sale")).status == 200  # no price
    assert_error(await patch(listing_svc, lid, price=0), 400, "price:")
    assert_error(await patch(listing_svc, lid + 1, price=7000), 404)
    second_change = (await patch(listing_svc, lid, price=5500, listing_type="rent")).body["listing"]
    assert await prices(listing_svc, lid) == [point(created), point(first_change),
                                              point(second_change)]
    # Another listing's points are its own.
    other = await create(listing_svc, 100)
    assert await prices(listing_svc, other["id"]) == [point(other)]


@pytest.mark.gen_test
async def test_the_window_is_inclusive_and_include_prior_adds_the_point_in_force(
        listing_svc: Served) -> None:
    created = await create(listing_svc, 6000)
    lid = created["id"]
    changes = [(await patch(listing_svc, lid, price=p)).body["listing"] for p in (5000, 5500)]
    all_points = [point(created)] + [point(c) for c in changes]
    t0, t1, t2 = (p["changed_at"] for p in all_points)
    assert await prices(listing_svc, lid, f"since={t1}") == all_points[1:]
    assert await prices(listing_svc, lid, f"since={t1 + 1}") == all_points[2:]
    assert await prices(listing_svc, lid, f"until={t1}") == all_points[:2]
    assert await prices(listing_svc, lid, f"since={t1}&until={t1}") == all_points[1:2]
    assert await prices(listing_svc, lid, f"since={t2 + 1}") == []
    assert await prices(listing_svc, lid, f"until={t0 - 1}") == []
    # include_prior: the point in force at since leads, when it is older than since.
    prior = "include_prior=true"
    assert await prices(listing_svc, lid, f"since={t1 + 1}&{prior}") == all_points[1:]
    assert await prices(listing_svc, lid, f"since={t1}&{prior}") == all_points[1:]  # at since
    assert await prices(listing_svc, lid, f"since={t2 + 5}&{prior}") == all_points[2:]
    assert await prices(listing_svc, lid, f"since={t0 - 5}&{prior}") == all_points  # younger
    assert await prices(listing_svc, lid, f"since={t1 + 1}&until={t2 - 1}&{prior}") == \
        all_points[1:2]
    assert await prices(listing_svc, lid, f"since={t1 + 1}&include_prior=false") == \
        all_points[2:]


@pytest.mark.gen_test
async def test_bad_windows_are_400_naming_them_and_an_unknown_listing_is_404(
        listing_svc: Served) -> None:
    created = await create(listing_svc)
    url = f"{listing_svc.url}/listings/{created['id']}/prices"
    reply = await call("GET", f"{url}?since=10&until=9")
    assert (reply.status, reply.body) == (400, {"result": False,
                                                "errors": ["since: must not be after until"]})
    assert_error(await call("GET", f"{url}?since=-1&until=x"), 400, "since:", "until:")
    assert_error(await call("GET", f"{url}?include_prior=yes"), 400, "include_prior:")
    assert_error(await call("GET", f"{url}?since=1&since=2"), 400, "since:")
    assert (await call("GET", f"{url}?since=9&until=9")).status == 200
    reply = await call("GET", f"{listing_svc.url}/listings/{created['id'] + 1}/prices")
    assert (reply.status, reply.body) == (
        404, {"result": False, "errors": [f"listing {created['id'] + 1} does not exist"]})
    assert_error(await call("GET", f"{listing_svc.url}/listings/abc/prices"), 400, "id:")


async def history_rows(store: ListingStore) -> list[tuple[int, int, int]]:
    rows = await store.fetch_all(
        "SELECT listing_id, price, changed_at FROM price_history ORDER BY listing_id, changed_at")
    return [tuple(row) for row in rows]


@pytest.mark.gen_test
async def test_a_delete_takes_the_history_with_it(listing_store: ListingStore) -> None:
    kept = await listing_store.create(1, "rent", 100)
    gone = await listing_store.create(1, "rent", 200)
    await listing_store.update(gone["id"], price=300)
    await listing_store.delete(gone["id"])
    assert await history_rows(listing_store) == [(kept["id"], 100, kept["updated_at"])]


@pytest.mark.gen_test
async def test_the_change_and_its_point_commit_together_or_not_at_all(
        listing_store: ListingStore) -> None:
    """Make the point's insert fail (its key taken): the price change fails with it."""
    listing = await listing_store.create(1, "rent", 100)
    future = 4_000_000_000_000_000  # the year 2096: the update will stamp exactly this
    await run_sql(listing_store, "UPDATE listings SET updated_at = ? WHERE id = ?",
                  (future - 1, listing["id"]))
    await run_sql(listing_store, "INSERT INTO price_history VALUES (?, 999, ?)",
                  (listing["id"], future))
    with pytest.raises(INTEGRITY_ERRORS):
        await listing_store.update(listing["id"], price=200)
    after = await listing_store.get(listing["id"])
    assert (after["price"], after["updated_at"]) == (100, future - 1)
    assert await history_rows(listing_store) == [(listing["id"], 100, listing["updated_at"]),
                                                 (listing["id"], 999, future)]
    # A listing the CHECK refuses leaves no point either.
    with pytest.raises(INTEGRITY_ERRORS):
        await listing_store.create(1, "rent", 0)
    assert len(await history_rows(listing_store)) == 2


@pytest.mark.gen_test(timeout=60)
async def test_concurrent_patches_each_leave_exactly_one_point_with_the_answered_price(
        listing_svc: Served) -> None:
    listings = [await create(listing_svc, 1000 + n) for n in range(4)]
    new_prices = {listing["id"]: [5000 + 10 * k + n for k in range(25)]
                  for n, listing in enumerate(listings)}
    calls = [patch(listing_svc, lid, price=price)
             for k in range(25) for lid, plist in new_prices.items() for price in plist[k:k + 1]]
    replies = await asyncio.gather(*calls)
    assert all(reply.status == 200 for reply in replies), replies
    for listing in listings:
        answered = [point(r.body["listing"]) for r in replies
                    if r.body["listing"]["id"] == listing["id"]]
        history = await prices(listing_svc, listing["id"])
        assert history[0] == point(listing)
        assert sorted(history[1:], key=lambda p: p["changed_at"]) == sorted(
            answered, key=lambda p: p["changed_at"])
        assert len(history) == 26
        current = (await call("GET", f"{listing_svc.url}/listings/{listing['id']}")).body
        assert history[-1] == point(current["listing"])


# --- price_changed_since ----------------------------------------------------------------

async def ids(listing_svc: Served, query: str) -> list[int]:
    reply = await call("GET", f"{listing_svc.url}/listings?{query}")
    assert reply.status == 200, reply.body
    return [listing["id"] for listing in reply.body["listings"]]


@pytest.mark.gen_test
async def test_price_changed_since_keeps_listings_a_patch_repriced_after_that_time(
        listing_svc: Served) -> None:
    moved = await create(listing_svc, 100, "rent")
    untouched = await create(listing_svc, 100, "rent")
    retyped = await create(listing_svc, 100, "rent")
    same_price = await create(listing_svc, 100, "rent")
    moved_sale = await create(listing_svc, 100, "sale")
    start = moved["created_at"] - 1
    assert await ids(listing_svc, f"price_changed_since={start}") == []  # creation: no change
    change = (await patch(listing_svc, moved["id"], price=90)).body["listing"]
    await patch(listing_svc, retyped["id"], listing_type="sale")
    await patch(listing_svc, same_price["id"], price=100)
    later = (await patch(listing_svc, moved_sale["id"], price=110)).body["listing"]
    assert await ids(listing_svc, f"price_changed_since={start}") == [moved_sale["id"],
                                                                      moved["id"]]
    # Strictly after: a change AT the time given is not after it.
    assert await ids(listing_svc, f"price_changed_since={change['updated_at']}") == [
        moved_sale["id"]]
    assert await ids(listing_svc, f"price_changed_since={later['updated_at']}") == []
    # Combined with the other filters.
    assert await ids(listing_svc, f"price_changed_since={start}&listing_type=rent") == [
        moved["id"]]
    assert await ids(listing_svc, f"price_changed_since={start}&min_price=100&max_price=200") \
        == [moved_sale["id"]]
    assert await ids(listing_svc, f"price_changed_since={start}&user_id=2") == []
    assert untouched["id"] not in await ids(listing_svc, "price_changed_since=0")


@pytest.mark.gen_test
@pytest.mark.parametrize("value", ["-1", "x", "1.5", ""])
async def test_a_bad_price_changed_since_is_400_naming_it(
        listing_svc: Served, public: Served, value: str) -> None:
    for url in (f"{listing_svc.url}/listings", f"{public.url}/public-api/listings"):
        reply = await call("GET", f"{url}?price_changed_since={value}")
        assert (reply.status, reply.body) == (400, {"result": False, "errors": [
            "price_changed_since: must be an integer from 0 to 9223372036854775807"]}), url
    assert len(listing_svc.requests) == 1  # the public API refused on its own


# --- query plans --------------------------------------------------------------------------

# SQLite's alone: its planner and EXPLAIN QUERY PLAN (PostgreSQL's planner has statistics).
async def plan(store: ListingStore, sql: str, params: list[Any]) -> list[str]:
    rows = await store.fetch_all(f"EXPLAIN QUERY PLAN {sql}", params)
    return [row[3] for row in rows]


@pytest.mark.gen_test
@pytest.mark.parametrize("backend", ["sqlite"])  # SQLite's query plan
async def test_the_history_read_is_served_by_the_primary_key_index(
        listing_store: ListingStore) -> None:
    for include_prior in (False, True):
        steps = await plan(listing_store,
                           *ListingStore.prices_query(5, 10, 20, include_prior))
        assert steps[0] == "SEARCH l USING INTEGER PRIMARY KEY (rowid=?)", steps
        assert steps[1].startswith(
            "SEARCH h USING INDEX sqlite_autoindex_price_history_1 (listing_id=? AND changed_at>?"
        ), steps
        assert not any(step.startswith("SCAN") or "TEMP B-TREE" in step for step in steps), steps
        if include_prior:
            assert steps[-1] == (
                "SEARCH price_history USING COVERING INDEX"
                " sqlite_autoindex_price_history_1 (listing_id=? AND changed_at<?)")


OTHER_FILTERS = {"user_id": 2, "listing_type": "rent", "min_price": 800, "max_price": 2500}


@pytest.mark.gen_test
@pytest.mark.parametrize("backend", ["sqlite"])  # SQLite's query plan
async def test_price_changed_since_is_served_by_an_index_alone_and_combined(
        listing_store: ListingStore) -> None:
    steps = await plan(listing_store, *listing_store.page_query(Page(), price_changed_since=5))
    assert steps[0] == ("SEARCH listings USING INDEX listings_by_price_change"
                        " (price_changed_at>? AND price_changed_at<?)"), steps
    for n in range(len(OTHER_FILTERS) + 1):
        for names in itertools.combinations(OTHER_FILTERS, n):
            filters = {name: OTHER_FILTERS[name] for name in names}
            steps = await plan(listing_store, *listing_store.page_query(
                Page(), **filters, price_changed_since=5))
            assert "USING INDEX" in steps[0] and not steps[0].startswith("SCAN"), (names, steps)


# --- the upgrade of a database made before price history ----------------------------------

# (user_id, listing_type, price, created_at, updated_at): some edited, some not.
OLD_ROWS = [(1, "rent", 6000, 1_600_000_000_000_000, 1_600_000_000_000_000),
            (2, "sale", 90000, 1_600_000_100_000_000, 1_650_000_000_000_000),
            (1, "rent", 1500, 1_600_000_200_000_000, 1_600_000_200_000_001)]


# The schema of a file made before #16, as listing_service.SCHEMA had it (frozen here: the
# migration files may change, files already made do not).
OLD_SCHEMA = """
CREATE TABLE IF NOT EXISTS listings (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id      INTEGER NOT NULL,
    listing_type TEXT    NOT NULL CHECK (listing_type IN ('rent', 'sale')),
    price        INTEGER NOT NULL CHECK (price > 0),
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS listings_newest ON listings (created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS listings_by_user_newest
    ON listings (user_id, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS listings_by_type_newest
    ON listings (listing_type, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS listings_by_price ON listings (price);
"""
MIGRATIONS = [(1, "0001_listings.sql"), (2, "0002_price_history.sql")]


async def versions(store: Any) -> list[tuple[int, str]]:
    rows = await store.fetch_all("SELECT version, name FROM schema_version ORDER BY version")
    return [tuple(row) for row in rows]


def make_todays_database(path: Path) -> list[tuple]:
    """A file as the code before #16 made it: its schema, its rows, and one deleted
    listing, so the AUTOINCREMENT counter is ahead of the ids."""
    db = sqlite3.connect(path)
    db.executescript(OLD_SCHEMA)
    db.executemany("INSERT INTO listings (user_id, listing_type, price, created_at, updated_at)"
                   " VALUES (?, ?, ?, ?, ?)", [*OLD_ROWS, (9, "rent", 1, 1, 1)])
    db.execute("DELETE FROM listings WHERE user_id = 9")
    db.commit()
    rows = db.execute("SELECT * FROM listings ORDER BY id").fetchall()
    assert db.execute("PRAGMA user_version").fetchone() == (0,)
    assert db.execute("SELECT name FROM sqlite_master WHERE name = 'price_history'"
                      ).fetchall() == []
    db.close()
    return rows


@pytest.mark.gen_test
async def test_upgrading_a_database_gives_each_listing_one_point_and_loses_no_row(
        tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old_rows = make_todays_database(path)
    store = await ListingStore.open(str(path))
    try:
        columns = "id, user_id, listing_type, price, created_at, updated_at"
        rows = await store.fetch_all(f"SELECT {columns} FROM listings ORDER BY id")
        assert [tuple(row) for row in rows] == old_rows
        assert await history_rows(store) == [(row[0], row[3], row[5]) for row in old_rows]
        assert [tuple(row) for row in await store.fetch_all(
            "SELECT price_changed_at FROM listings")] == [(None,)] * 3  # no change known
        assert await versions(store) == MIGRATIONS
        # The upgraded file works as a new one: a change records, a new listing follows on.
        changed = await store.update(old_rows[0][0], price=5500)
        new = await store.create(3, "sale", 10)
        assert new["id"] == old_rows[-1][0] + 2  # after the deleted one: no id reused
        assert (await store.prices(old_rows[0][0]))[-1] == {
            "price": 5500, "changed_at": changed["updated_at"]}
        # The backfill ran once: a point removed by hand does not come back on reopening.
        await store.fetch_all("DELETE FROM price_history WHERE listing_id = ?", (old_rows[1][0],))
    finally:
        await store.close()
    store = await ListingStore.open(str(path))
    try:
        assert [r[0] for r in await history_rows(store)].count(old_rows[1][0]) == 0
        assert len(await history_rows(store)) == 2 + 1 + 1  # 1 and 3, 1's change, the new one
        assert await versions(store) == MIGRATIONS
    finally:
        await store.close()


@pytest.mark.gen_test
async def test_a_new_database_is_made_at_the_latest_version(listing_store: ListingStore) -> None:
    assert await versions(listing_store) == MIGRATIONS
    assert await history_rows(listing_store) == []
