"""GET /listings filters (listing_type, min_price, max_price, user_id), their validation and
their query plans; the public API passes them through with the same rules."""
from __future__ import annotations

import itertools
from urllib.parse import urlencode

import pytest

from common.validation import MAX_INT64, Page
from listing_service import ListingStore
from tests.support.apps import Served
from tests.support.http import call

# (user_id, listing_type, price), created oldest first.
ROWS = [(1, "rent", 500), (1, "sale", 90000), (2, "rent", 1500), (2, "sale", 120000),
        (1, "rent", 2500), (3, "rent", 1500), (2, "rent", 800)]


async def seed(listing_svc: Served) -> list[dict]:
    created = []
    for user_id, listing_type, price in ROWS:
        reply = await call("POST", f"{listing_svc.url}/listings",
                           form={"user_id": user_id, "listing_type": listing_type, "price": price})
        created.append(reply.body["listing"])
    return created


def expected(created: list[dict], **filters: object) -> list[int]:
    """The ids the filters should select, newest first, computed independently of the SQL."""
    def keep(listing: dict) -> bool:
        return (listing["user_id"] == filters.get("user_id", listing["user_id"])
                and listing["listing_type"] == filters.get("listing_type", listing["listing_type"])
                and filters.get("min_price", 0) <= listing["price"]
                and listing["price"] <= filters.get("max_price", MAX_INT64))
    return [listing["id"] for listing in reversed(created) if keep(listing)]


FILTER_VALUES = {"user_id": 2, "listing_type": "rent", "min_price": 800, "max_price": 2500}


@pytest.mark.gen_test
async def test_every_combination_of_filters(listing_svc: Served) -> None:
    created = await seed(listing_svc)
    for n in range(len(FILTER_VALUES) + 1):
        for names in itertools.combinations(FILTER_VALUES, n):
            filters = {name: FILTER_VALUES[name] for name in names}
            reply = await call("GET", f"{listing_svc.url}/listings?{urlencode(filters)}")
            assert reply.status == 200, (filters, reply.body)
            ids = [row["id"] for row in reply.body["listings"]]
            assert ids == expected(created, **filters), filters


@pytest.mark.gen_test
async def test_filters_page_and_bounds_are_inclusive(listing_svc: Served) -> None:
    created = await seed(listing_svc)
    url = f"{listing_svc.url}/listings?listing_type=rent&min_price=1500&max_price=1500"
    exact = await call("GET", url)
    assert [row["id"] for row in exact.body["listings"]] == expected(
        created, listing_type="rent", min_price=1500, max_price=1500)
    assert len(exact.body["listings"]) == 2
    page2 = await call("GET",
                       f"{listing_svc.url}/listings?listing_type=rent&page_size=2&page_num=2")
    assert [row["id"] for row in page2.body["listings"]] == expected(
        created, listing_type="rent")[2:4]


BAD_QUERIES = {
    "min_price=10&max_price=9": ["min_price: must not be above max_price"],
    "min_price=-1": [f"min_price: must be an integer from 0 to {MAX_INT64}"],
    "max_price=ten": [f"max_price: must be an integer from 0 to {MAX_INT64}"],
    "max_price=1.5": [f"max_price: must be an integer from 0 to {MAX_INT64}"],
    "listing_type=lease": ["listing_type: must be 'rent' or 'sale'"],
    "listing_type=Rent&min_price=x": ["listing_type: must be 'rent' or 'sale'",
                                      f"min_price: must be an integer from 0 to {MAX_INT64}"],
    "listing_type=rent&listing_type=sale": ["listing_type: is given more than once"],
}


@pytest.mark.gen_test
@pytest.mark.parametrize("query", list(BAD_QUERIES))
async def test_bad_filters_are_400_naming_them(listing_svc: Served, public: Served,
                                               query: str) -> None:
    for url in (f"{listing_svc.url}/listings", f"{public.url}/public-api/listings"):
        reply = await call("GET", f"{url}?{query}")
        assert (reply.status, reply.body) == (
            400, {"result": False, "errors": BAD_QUERIES[query]}), url
    # Only the direct call reached the listing service: the public API refused on its own.
    assert len(listing_svc.requests) == 1


@pytest.mark.gen_test
async def test_public_api_passes_filters_through(listing_svc: Served, user_svc: Served,
                                                 public: Served) -> None:
    created = await seed(listing_svc)
    for name in ("Ann", "Bo"):
        await call("POST", f"{user_svc.url}/users", form={"name": name})
    query = "user_id=2&listing_type=rent&min_price=800&max_price=2500"
    reply = await call("GET", f"{public.url}/public-api/listings?{query}")
    assert reply.status == 200
    listings = reply.body["listings"]
    assert [row["id"] for row in listings] == expected(
        created, user_id=2, listing_type="rent", min_price=800, max_price=2500)
    assert len(listings) == 2
    assert all(row["user"]["name"] == "Bo" and "user_id" not in row for row in listings)
    forwarded = [uri for uri in listing_svc.requests if uri.startswith("/listings?")][-1]
    for part in ("user_id=2", "listing_type=rent", "min_price=800", "max_price=2500"):
        assert part in forwarded


@pytest.mark.gen_test
@pytest.mark.parametrize("backend", ["sqlite"])  # SQLite's EXPLAIN QUERY PLAN
async def test_each_filter_is_served_by_an_index(listing_store: ListingStore) -> None:
    """No combination of filters reads the table without an index or sorts a whole scan."""
    plans = {}
    for n in range(len(FILTER_VALUES) + 1):
        for names in itertools.combinations(FILTER_VALUES, n):
            filters = {name: FILTER_VALUES[name] for name in names}
            sql, params = listing_store.page_query(Page(), **filters)
            rows = await listing_store.db.execute_fetchall(f"EXPLAIN QUERY PLAN {sql}", params)
            plan = [row[3] for row in rows]
            assert any("USING INDEX" in step for step in plan), (names, plan)
            assert not any(step == "SCAN listings" for step in plan), (names, plan)
            plans[names] = plan[0]
    assert plans[()] == "SCAN listings USING INDEX listings_newest"
    assert plans[("user_id",)] == "SEARCH listings USING INDEX listings_by_user_newest (user_id=?)"
    assert plans[("listing_type",)] == (
        "SEARCH listings USING INDEX listings_by_type_newest (listing_type=?)")
    assert plans[("min_price", "max_price")] == (
        "SEARCH listings USING INDEX listings_by_price (price>? AND price<?)")
    # One bound alone walks the list's own index in order, so a page stops early (no sort).
    assert plans[("min_price",)] == "SCAN listings USING INDEX listings_newest"
