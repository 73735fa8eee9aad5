"""The listing service over real HTTP: shapes, types, order, pages, filters, every bad input."""
from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
from tornado.httpclient import AsyncHTTPClient

import listing_service
from common.validation import MAX_INT64
from tests.support.apps import Served, serve_app, stop_app
from tests.support.checks import LISTING_KEYS, assert_error, assert_listing, is_int, listed
from tests.support.data import create_listing
from tests.support.http import call
from tests.support.stores import run_sql

FORM = {"user_id": "1", "listing_type": "rent", "price": "6000"}


async def listings(svc: Served, query: str = "") -> list[dict]:
    return await listed(f"{svc.url}/listings?{query}", "listings", assert_listing)


async def insert(store: listing_service.Store, user_id: int, created_at: int) -> int:
    """A row with a chosen timestamp, straight into the service's own database."""
    rows = await run_sql(
        store, "INSERT INTO listings (user_id, listing_type, price, created_at, updated_at)"
        " VALUES (?, 'sale', 100, ?, ?) RETURNING id", (user_id, created_at, created_at))
    return rows[0][0]


# --- create ---------------------------------------------------------------------------------

@pytest.mark.gen_test
async def test_create_answers_201_with_the_listing(listing_svc):
    before = time.time_ns() // 1000
    reply = await call("POST", listing_svc.url + "/listings",
                       form={"user_id": "7", "listing_type": "sale", "price": "450000"})
    after = time.time_ns() // 1000
    assert reply.status == 201
    assert list(reply.body) == ["result", "listing"] and reply.body["result"] is True
    listing = reply.body["listing"]
    assert list(listing) == LISTING_KEYS
    assert_listing(listing)
    assert (listing["user_id"], listing["listing_type"], listing["price"]) == (7, "sale", 450000)
    assert listing["created_at"] == listing["updated_at"]
    assert before <= listing["created_at"] <= after  # microseconds since the epoch


@pytest.mark.gen_test
async def test_created_listing_is_stored_with_a_new_id(listing_svc):
    first = await create_listing(listing_svc)
    second = await create_listing(listing_svc, price=7000)
    assert second["id"] > first["id"]
    assert await listings(listing_svc) == [second, first]


@pytest.mark.gen_test
async def test_create_accepts_the_largest_64_bit_price(listing_svc):
    listing = await create_listing(listing_svc, price=MAX_INT64)
    assert listing["price"] == MAX_INT64 and is_int(listing["price"])
    assert (await listings(listing_svc))[0]["price"] == MAX_INT64


@pytest.mark.gen_test
@pytest.mark.parametrize("price", ["0", "-1", str(MAX_INT64 + 1), "1.5", "6e3", "abc", "", "true"])
async def test_create_rejects_a_bad_price(listing_svc, price):
    reply = await call("POST", listing_svc.url + "/listings", form={**FORM, "price": price})
    assert_error(reply, 400, "price:")
    assert await listings(listing_svc) == []


@pytest.mark.gen_test
@pytest.mark.parametrize("user_id", ["0", "-4", "x", "1.0", str(MAX_INT64 + 1), "", "true"])
async def test_create_rejects_a_bad_user_id(listing_svc, user_id):
    reply = await call("POST", listing_svc.url + "/listings", form={**FORM, "user_id": user_id})
    assert_error(reply, 400, "user_id:")


@pytest.mark.gen_test
@pytest.mark.parametrize("listing_type", ["lease", "RENT", "Sale", " rent", ""])
async def test_create_rejects_an_unknown_listing_type(listing_svc, listing_type):
    reply = await call("POST", listing_svc.url + "/listings",
                       form={**FORM, "listing_type": listing_type})
    assert_error(reply, 400, "listing_type:")


@pytest.mark.gen_test
async def test_create_lists_every_missing_field(listing_svc):
    reply = await call("POST", listing_svc.url + "/listings", form={})
    errors = assert_error(reply, 400, "user_id:", "listing_type:", "price:")
    assert len(errors) == 3


@pytest.mark.gen_test
async def test_create_rejects_an_unknown_field(listing_svc):
    reply = await call("POST", listing_svc.url + "/listings", form={**FORM, "colour": "red"})
    assert_error(reply, 400, "colour:")
    assert await listings(listing_svc) == []


@pytest.mark.gen_test
async def test_create_rejects_a_repeated_field(listing_svc):
    body = urlencode(FORM) + "&price=7000"
    reply = await call("POST", listing_svc.url + "/listings", body=body,
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert_error(reply, 400, "price:")


@pytest.mark.gen_test
async def test_create_rejects_a_json_body(listing_svc):
    reply = await call("POST", listing_svc.url + "/listings",
                       json_body={"user_id": 1, "listing_type": "rent", "price": 6000})
    assert_error(reply, 415, "Content-Type:")


@pytest.mark.gen_test
async def test_create_reads_a_raw_utf8_form_body_and_names_the_bad_field(listing_svc):
    reply = await call("POST", listing_svc.url + "/listings", body="user_id=1&listing_type=rént"
                       .encode() + b"&price=1",
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert_error(reply, 400, "listing_type:")


@pytest.mark.gen_test
async def test_create_rejects_a_form_body_that_is_not_utf8(listing_svc):
    reply = await call("POST", listing_svc.url + "/listings",
                       body=b"user_id=1&listing_type=r\xe9nt&price=1",
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert_error(reply, 400, "body:")


@pytest.fixture
def small_listing_svc(io_loop, listing_store) -> Iterator[Served]:
    """The listing service with a 64-byte body limit."""
    served = serve_app(io_loop, listing_service.make_app(listing_store, max_body_size=64))
    yield served
    stop_app(io_loop, served)


@pytest.fixture
def guarded_listing_svc(io_loop, listing_store) -> Iterator[Served]:
    """The listing service asking for an internal token."""
    served = serve_app(io_loop, listing_service.make_app(listing_store, internal_token="s3cret"))
    yield served
    stop_app(io_loop, served)


@pytest.mark.gen_test
async def test_create_rejects_a_body_over_the_limit_from_its_length(small_listing_svc):
    body = urlencode({**FORM, "pad": "x" * 100})
    reply = await call("POST", small_listing_svc.url + "/listings", body=body,
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert_error(reply, 413, "body:")
    assert await listings(small_listing_svc) == []


@pytest.mark.gen_test
async def test_create_rejects_a_streamed_body_over_the_limit(small_listing_svc):
    async def chunks(write):  # chunked, no Content-Length: refused while streaming
        for _ in range(4):
            await write(b"x" * 40)
    response = await AsyncHTTPClient().fetch(
        small_listing_svc.url + "/listings", method="POST", body_producer=chunks,
        raise_error=False, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.code == 413
    assert json.loads(response.body) == {
        "result": False, "errors": ["body: larger than the limit of 64 bytes"]}
    assert await listings(small_listing_svc) == []


@pytest.mark.gen_test
async def test_a_body_at_the_limit_is_accepted(small_listing_svc):
    # Leading zeros pad the form to exactly 64 bytes without changing its values.
    padded = urlencode({"user_id": "0" * 18 + "1", "listing_type": "rent",
                        "price": "0" * 8 + "6000"})
    assert len(padded) == 64
    reply = await call("POST", small_listing_svc.url + "/listings", body=padded,
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert reply.status == 201, reply.body
    assert (reply.body["listing"]["user_id"], reply.body["listing"]["price"]) == (1, 6000)


# --- list -----------------------------------------------------------------------------------

@pytest.mark.gen_test
async def test_list_of_an_empty_store(listing_svc):
    reply = await call("GET", listing_svc.url + "/listings")
    assert (reply.status, reply.body) == (200, {"result": True, "listings": []})


@pytest.mark.gen_test
async def test_list_defaults_to_the_newest_10(listing_svc, listing_store):
    ids = [await insert(listing_store, 1, 1_000_000 + i) for i in range(12)]
    page = await listings(listing_svc)
    assert [listing["id"] for listing in page] == ids[::-1][:10]


@pytest.mark.gen_test
async def test_list_orders_by_created_at_then_id_descending(listing_svc, listing_store):
    old = await insert(listing_store, 1, 1_000)
    tied = [await insert(listing_store, 1, 5_000) for _ in range(3)]
    new = await insert(listing_store, 1, 9_000)
    older_but_later_id = await insert(listing_store, 1, 2_000)
    page = await listings(listing_svc)
    assert [listing["id"] for listing in page] == [new, *tied[::-1], older_but_later_id, old]


@pytest.mark.gen_test
async def test_page_2_continues_page_1_without_overlap(listing_svc, listing_store):
    # Equal timestamps across the page boundary: only the id tie-break keeps pages apart.
    ids = [await insert(listing_store, 1, 1_000 * (i // 4)) for i in range(13)]
    pages = [[listing["id"] for listing in
              await listings(listing_svc, f"page_num={n}&page_size=5")] for n in (1, 2, 3, 4)]
    assert [len(page) for page in pages] == [5, 5, 3, 0]
    assert pages[0] + pages[1] + pages[2] == sorted(ids, reverse=True)


@pytest.mark.gen_test
async def test_page_size_100_is_allowed(listing_svc, listing_store):
    for i in range(101):
        await insert(listing_store, 1, i)
    assert len(await listings(listing_svc, "page_size=100")) == 100
    assert len(await listings(listing_svc, "page_size=100&page_num=2")) == 1


@pytest.mark.gen_test
async def test_a_page_past_the_end_is_empty(listing_svc):
    await create_listing(listing_svc)
    assert await listings(listing_svc, "page_num=2") == []
    assert await listings(listing_svc, f"page_num={MAX_INT64}&page_size=100") == []


@pytest.mark.gen_test
async def test_list_filters_by_user_id(listing_svc, listing_store):
    mine = [await insert(listing_store, 5, t) for t in (10, 20, 30)]
    await insert(listing_store, 6, 25)
    page = await listings(listing_svc, "user_id=5")
    assert [listing["id"] for listing in page] == mine[::-1]
    assert {listing["user_id"] for listing in page} == {5}
    assert await listings(listing_svc, "user_id=99") == []
    assert [x["id"] for x in await listings(listing_svc, "user_id=5&page_size=2&page_num=2")] == [
        mine[0]]


@pytest.mark.gen_test
async def test_list_ignores_unknown_query_parameters(listing_svc):
    listing = await create_listing(listing_svc)
    assert await listings(listing_svc, "_=12345&sort=price") == [listing]


@pytest.mark.gen_test
@pytest.mark.parametrize("query, field", [
    ("page_num=0", "page_num"), ("page_num=-1", "page_num"), ("page_num=abc", "page_num"),
    ("page_num=1.5", "page_num"), ("page_num=", "page_num"),
    ("page_size=0", "page_size"), ("page_size=101", "page_size"), ("page_size=ten", "page_size"),
    ("user_id=0", "user_id"), ("user_id=abc", "user_id"), (f"user_id={MAX_INT64 + 1}", "user_id"),
])
async def test_list_rejects_a_bad_query_parameter(listing_svc, query, field):
    reply = await call("GET", listing_svc.url + "/listings?" + query)
    assert_error(reply, 400, f"{field}:")


@pytest.mark.gen_test
async def test_list_rejects_a_repeated_query_parameter(listing_svc):
    reply = await call("GET", listing_svc.url + "/listings?page_num=1&page_num=2")
    assert_error(reply, 400, "page_num:")


# --- routes, methods, health ----------------------------------------------------------------

@pytest.mark.gen_test
async def test_unknown_route_is_a_json_404(listing_svc):
    reply = await call("GET", listing_svc.url + "/nowhere")
    assert_error(reply, 404, "path:")


@pytest.mark.gen_test
@pytest.mark.parametrize("method", ["DELETE", "PUT", "PATCH"])
async def test_wrong_method_is_a_json_405_with_allow(listing_svc, method):
    reply = await call(method, listing_svc.url + "/listings", body=b"")
    assert_error(reply, 405, "method:")
    assert reply.headers["Allow"] == "GET, HEAD, POST"


@pytest.mark.gen_test
async def test_ping_and_ready(listing_svc):
    for path in ("/ping", "/listings/ping", "/ready"):
        reply = await call("GET", listing_svc.url + path)
        assert (reply.status, reply.body) == (200, {"result": True}), path


@pytest.mark.gen_test
async def test_ready_fails_when_the_database_is_closed(listing_svc, listing_store):
    await listing_store.close()
    assert_error(await call("GET", listing_svc.url + "/ready"), 503, "ready:")
    assert (await call("GET", listing_svc.url + "/ping")).status == 200


@pytest.mark.gen_test
async def test_internal_token_guards_everything_but_health(guarded_listing_svc):
    url = guarded_listing_svc.url
    assert_error(await call("GET", url + "/listings"), 401, "X-Internal-Token:")
    assert_error(await call("GET", url + "/listings", headers={"X-Internal-Token": "guess"}),
                 401, "X-Internal-Token:")
    ok = await call("GET", url + "/listings", headers={"X-Internal-Token": "s3cret"})
    assert (ok.status, ok.body) == (200, {"result": True, "listings": []})
    assert (await call("GET", url + "/ping")).status == 200
    assert (await call("GET", url + "/ready")).status == 200


@pytest.mark.gen_test
async def test_request_id_is_echoed_or_made_up(listing_svc):
    echoed = await call("GET", listing_svc.url + "/ping", headers={"X-Request-ID": "abc-123"})
    assert echoed.headers["X-Request-ID"] == "abc-123"
    made_up = await call("GET", listing_svc.url + "/ping", headers={"X-Request-ID": "bad id; rm"})
    assert re.fullmatch("[0-9a-f]{32}", made_up.headers["X-Request-ID"])
