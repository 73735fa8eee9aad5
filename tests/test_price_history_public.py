"""The public price history and trend (#16): the arithmetic, its rounding and its JSON text,
and GET /public-api/listings/{id}/price-history end to end (one call to the listing service)."""
from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import orjson
import pytest
from tornado.httpclient import AsyncHTTPClient

from common.prices import change_percent_text, trend
from common.web import dumps
from tests.support.apps import Served
from tests.support.checks import assert_error
from tests.support.data import PASSWORD, create_listing, create_user, log_in
from tests.support.http import call


@pytest.mark.parametrize(("first", "last", "text"), [
    (6000, 5500, "-8.33"),       # the example: -8.3333...
    (5500, 6000, "9.09"),        # a rise: 9.0909...
    (6000, 6000, "0.00"),        # no change
    (100, 200, "100.00"),
    (200, 100, "-50.00"),
    (3, 2, "-33.33"),
    (3, 4, "33.33"),
    (6, 5, "-16.67"),            # -16.666...: rounds away from zero
    (200_000, 202_010, "1.01"),  # exactly 1.005: a tie, half up (banker's would give 1.00)
    (200_000, 197_990, "-1.01"),  # exactly -1.005: half up goes away from zero
    (200_000, 202_050, "1.03"),  # exactly 1.025: half up (banker's would give 1.02)
    (200_000, 202_030, "1.02"),  # exactly 1.015: half up (banker's gives 1.02 too)
    (1_000_000_000, 999_999_999, "0.00"),  # -0.0000001%: no "-0.00"
    (1, 2**63 - 1, "922337203685477580600.00"),  # beyond a float's 15 digits, still exact
])
def test_change_percent_is_exact_and_rounds_half_up(first: int, last: int, text: str) -> None:
    assert change_percent_text(first, last) == text
    exact = Decimal(last - first) * 100 / Decimal(first)
    if abs(exact) < 10**20:  # Decimal's 28 digits suffice to check the ordinary cases
        assert Decimal(text) == exact.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def test_change_percent_reaches_json_as_a_number_with_exactly_its_text() -> None:
    body = dumps({"trend": trend(None, [{"price": 6000, "changed_at": 1},
                                        {"price": 5500, "changed_at": 2}])})
    assert body == b'{"trend":{"first":6000,"last":5500,"change_percent":-8.33}}'
    assert orjson.loads(body)["trend"]["change_percent"] == -8.33


def p(price: int, changed_at: int) -> dict[str, int]:
    return {"price": price, "changed_at": changed_at}


def shown(result: dict[str, Any] | None) -> Any:
    if result is None:
        return None
    return {**result, "change_percent": orjson.dumps(result["change_percent"])}


def test_trend_over_the_edges_of_a_window() -> None:
    # A single point: no change.
    assert shown(trend(None, [p(6000, 1)])) == {"first": 6000, "last": 6000,
                                                "change_percent": b"0.00"}
    # since before creation: first is the creation price (the first point after since).
    assert shown(trend(None, [p(6000, 5), p(5500, 9)]))["first"] == 6000
    # since after the last change: the point in force throughout, no change.
    assert shown(trend(p(5500, 9), [])) == {"first": 5500, "last": 5500,
                                            "change_percent": b"0.00"}
    # A prior point and changes in the window: first is the prior's price.
    assert shown(trend(p(5000, 1), [p(6000, 5), p(5500, 9)])) == {
        "first": 5000, "last": 5500, "change_percent": b"10.00"}
    # The window ends before the listing existed: no trend.
    assert trend(None, []) is None


async def make_listing(public: Served) -> dict:
    """A listing of a new user with a password (repricing it takes their token)."""
    user = await create_user(public, "Ann", PASSWORD)
    return await create_listing(public, user["id"], price=6000)


async def reprice(public: Served, listing_id: int, price: int) -> dict:
    """PATCH the listing's price as its owner (make_listing's user, logged in here)."""
    owner = (await call("GET", f"{public.url}/public-api/listings/{listing_id}")).body
    owner_id = owner["listing"]["user"]["id"]
    reply = await call("PATCH", f"{public.url}/public-api/listings/{listing_id}",
                       json_body={"price": price}, headers=await log_in(public, owner_id))
    assert reply.status == 200, reply.body
    return reply.body["listing"]


async def history(public: Served, listing_id: int, query: str = "") -> dict:
    reply = await call("GET", f"{public.url}/public-api/listings/{listing_id}/price-history"
                              f"?{query}")
    assert reply.status == 200, reply.body
    assert list(reply.body) == ["listing_id", "since", "until", "prices", "trend"]
    return reply.body


@pytest.mark.gen_test
async def test_price_history_and_trend_end_to_end(public: Served, listing_svc: Served) -> None:
    created = await make_listing(public)
    lid = created["id"]
    rise = await reprice(public, lid, 6600)
    fall = await reprice(public, lid, 5500)
    t0, t1, t2 = created["updated_at"], rise["updated_at"], fall["updated_at"]
    points = [p(6000, t0), p(6600, t1), p(5500, t2)]

    before = len(listing_svc.requests)
    whole = await history(public, lid)
    assert len(listing_svc.requests) == before + 1  # one call for prices and trend
    assert whole == {"listing_id": lid, "since": None, "until": None, "prices": points,
                     "trend": {"first": 6000, "last": 5500, "change_percent": -8.33}}
    # since between the create and the rise: first is the price in force then (6000).
    window = await history(public, lid, f"since={t0 + 1}&until={t2}")
    assert window == {"listing_id": lid, "since": t0 + 1, "until": t2, "prices": points[1:],
                      "trend": {"first": 6000, "last": 5500, "change_percent": -8.33}}
    # A rise: from the create to just before the fall.
    assert (await history(public, lid, f"until={t2 - 1}"))["trend"] == {
        "first": 6000, "last": 6600, "change_percent": 10.0}
    # since before the listing existed: first is its creation price.
    assert (await history(public, lid, f"since={t0 - 10**6}"))["trend"]["first"] == 6000
    # since after the last change: the price in force, no change, no point in the window.
    late = await history(public, lid, f"since={t2 + 1}")
    assert (late["prices"], late["trend"]) == ([], {"first": 5500, "last": 5500,
                                                    "change_percent": 0.0})
    # A window before the listing existed: no point, no trend.
    early = await history(public, lid, f"since=1&until={t0 - 1}")
    assert (early["prices"], early["trend"]) == ([], None)
    # The text on the wire is -8.33, not a float's -8.329999...
    raw = await AsyncHTTPClient().fetch(f"{public.url}/public-api/listings/{lid}/price-history")
    assert b'"change_percent":-8.33}' in raw.body


@pytest.mark.gen_test
async def test_a_single_point_and_no_change(public: Served) -> None:
    created = await make_listing(public)
    assert (await history(public, created["id"]))["trend"] == {
        "first": 6000, "last": 6000, "change_percent": 0.0}
    raw = await AsyncHTTPClient().fetch(
        f"{public.url}/public-api/listings/{created['id']}/price-history")
    assert b'"change_percent":0.00}' in raw.body


@pytest.mark.gen_test
async def test_bad_requests_and_unknown_listings(public: Served, listing_svc: Served) -> None:
    created = await make_listing(public)
    url = f"{public.url}/public-api/listings"
    before = len(listing_svc.requests)
    reply = await call("GET", f"{url}/{created['id']}/price-history?since=5&until=4")
    assert (reply.status, reply.body) == (400, {"result": False,
                                                "errors": ["since: must not be after until"]})
    assert_error(await call("GET", f"{url}/{created['id']}/price-history?since=x"), 400, "since:")
    assert_error(await call("GET", f"{url}/0/price-history"), 400, "id:")
    assert len(listing_svc.requests) == before  # refused without calling the listing service
    reply = await call("GET", f"{url}/{created['id'] + 1}/price-history")
    assert (reply.status, reply.body) == (
        404, {"result": False, "errors": [f"listing {created['id'] + 1} does not exist"]})
    assert (await call("POST", f"{url}/{created['id']}/price-history", body=b"")).status == 405


@pytest.mark.gen_test
async def test_the_public_list_filters_by_price_changed_since(public: Served,
                                                              listing_svc: Served) -> None:
    still = await make_listing(public)
    moved = await make_listing(public)
    change = await reprice(public, moved["id"], 5000)
    reply = await call("GET", f"{public.url}/public-api/listings"
                              f"?price_changed_since={still['created_at']}&listing_type=rent")
    assert reply.status == 200, reply.body
    assert [listing["id"] for listing in reply.body["listings"]] == [moved["id"]]
    assert reply.body["listings"][0]["user"]["name"] == "Ann"
    assert f"price_changed_since={still['created_at']}" in listing_svc.requests[-1]
    reply = await call("GET", f"{public.url}/public-api/listings"
                              f"?price_changed_since={change['updated_at']}")
    assert reply.body["listings"] == []
