"""How the public API answers when a downstream service fails: 502, 503, 504, or its 4xx.

The failing service is a fake the test scripts; the other one is the real service.
"""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.apps import Served, make_public, stop_app
from tests.support.checks import assert_error
from tests.support.data import post_listing, post_user
from tests.support.fake import FakeService
from tests.support.http import call

TIMEOUT = 2.0  # the public API's total timeout per downstream call, in these tests


@pytest.fixture
def fake(make_fake) -> FakeService:
    fake = make_fake()
    fake.answers(200, b'{"result": true}')
    return fake


@pytest.fixture
def fake_users(io_loop, listing_svc, fake) -> Iterator[Served]:
    """The public API with the real listing service and a fake user service."""
    public = make_public(io_loop, listing_svc.url, fake.url, request_timeout=TIMEOUT)
    yield public
    stop_app(io_loop, public)


@pytest.fixture
def fake_listings(io_loop, user_svc, fake) -> Iterator[Served]:
    """The public API with a fake listing service and the real user service."""
    public = make_public(io_loop, fake.url, user_svc.url, request_timeout=TIMEOUT)
    yield public
    stop_app(io_loop, public)


@pytest.fixture
def nowhere(io_loop, make_fake) -> Iterator[Served]:
    """The public API in front of two ports nothing listens on."""
    gone = make_fake(connects="refused")
    public = make_public(io_loop, gone.url, gone.url, request_timeout=TIMEOUT)
    yield public
    stop_app(io_loop, public)


def listing_row(user_id: int = 1) -> dict:
    return {"id": 1, "user_id": user_id, "listing_type": "rent", "price": 10,
            "created_at": 5, "updated_at": 5}


# --- 502: a 5xx or garbage ------------------------------------------------------------------

@pytest.mark.gen_test
@pytest.mark.parametrize("status", [500, 503])
async def test_a_5xx_from_the_listing_service_is_a_502(fake_listings, fake, status):
    fake.answers(status, {"result": False, "errors": ["internal error"]})
    reply = await call("GET", fake_listings.url + "/public-api/listings")
    assert reply.body["errors"] == [f"listing service answered {status}"]
    assert_error(reply, 502, "listing service")


@pytest.mark.gen_test
@pytest.mark.parametrize("query", ["", "?user_id=1"])
async def test_a_5xx_from_the_user_service_is_a_502_for_the_page(fake_users, fake, query):
    fake.answers(201, {"result": True, "user": {"id": 1}})
    assert (await post_listing(fake_users)).status == 201
    fake.answers(500, b"<html>oops</html>")
    reply = await call("GET", fake_users.url + "/public-api/listings" + query)
    assert reply.body["errors"] == ["user service answered 500"]
    assert_error(reply, 502, "user service")


@pytest.mark.gen_test
async def test_a_5xx_on_create_user_is_a_502(fake_users, fake):
    fake.answers(500, {"result": False, "errors": ["disk full"]})
    reply = await post_user(fake_users)
    assert reply.body["errors"] == ["user service answered 500"]  # its details stay inside
    assert_error(reply, 502, "user service")


@pytest.mark.gen_test
@pytest.mark.parametrize("body", [
    b"not json at all", b"", b"[1, 2]", b'"listings"', b"{", b'{"result": true}',
    b'{"result": true, "listings": {"id": 1}}', b'{"result": true, "listings": [1, 2]}',
    b'{"result": true, "listings": [{"id": 1, "user_id": 1}]}',
])
async def test_garbage_from_the_listing_service_is_a_502(fake_listings, fake, body):
    fake.answers(200, body)
    reply = await call("GET", fake_listings.url + "/public-api/listings")
    assert_error(reply, 502)
    assert any("listing service" in error or "downstream" in error
               for error in reply.body["errors"]), reply.body


@pytest.mark.gen_test
@pytest.mark.parametrize("body", [b"garbage", b'{"result": true}', b'{"users": {"1": {}}}',
                                  b'{"users": "Ann"}'])
async def test_garbage_from_the_user_service_is_a_502(fake_users, fake, listing_svc, body):
    fake.answers(201, {"result": True, "user": {"id": 1}})
    assert (await post_listing(fake_users)).status == 201
    fake.answers(200, body)
    assert_error(await call("GET", fake_users.url + "/public-api/listings"), 502)


@pytest.mark.gen_test
async def test_an_answer_too_large_is_a_502(fake_listings, fake):
    fake.answers(200, b'{"result": true, "listings": [], "pad": "' + b"x" * (9 * 1024 * 1024)
                 + b'"}')
    reply = await call("GET", fake_listings.url + "/public-api/listings")
    assert reply.body["errors"] == ["listing service gave an answer that could not be read"]
    assert_error(reply, 502, "listing service")


# --- 503: nobody listening --------------------------------------------------------------------

@pytest.mark.gen_test
async def test_an_unreachable_service_is_a_503(nowhere):
    listings = await call("GET", nowhere.url + "/public-api/listings")
    assert listings.body["errors"] == ["listing service cannot be reached"]
    assert_error(listings, 503, "listing service")
    assert_error(await post_user(nowhere), 503, "user service")
    assert_error(await post_listing(nowhere), 503, "user service")


@pytest.mark.gen_test
async def test_ready_is_503_while_a_service_is_unreachable(nowhere):
    assert_error(await call("GET", nowhere.url + "/ready"), 503, "ready:")
    assert (await call("GET", nowhere.url + "/ping")).status == 200


@pytest.mark.gen_test
async def test_ready_is_503_while_a_service_is_not_ready(fake_users, fake):
    fake.answers(503, {"result": False, "errors": ["ready: database is locked"]})
    assert_error(await call("GET", fake_users.url + "/ready"), 503, "ready:")


# --- 504: no answer in time ---------------------------------------------------------------------

@pytest.mark.gen_test(timeout=10)
async def test_a_service_that_never_answers_is_a_504(fake_listings, fake):
    fake.hangs()
    reply = await call("GET", fake_listings.url + "/public-api/listings")
    assert reply.body["errors"] == ["listing service did not answer in time"]
    assert_error(reply, 504, "listing service")


@pytest.mark.gen_test(timeout=10)
async def test_a_user_service_that_never_answers_is_a_504_on_create(fake_users, fake):
    fake.hangs()
    assert_error(await post_user(fake_users), 504, "user service")
    assert_error(await post_listing(fake_users), 504, "user service")


# --- a downstream 4xx is passed on ----------------------------------------------------------------

@pytest.mark.gen_test
@pytest.mark.parametrize("status", [400, 404, 409, 422])
async def test_a_4xx_is_passed_on_with_its_messages(fake_users, fake, status):
    fake.answers(status, {"result": False, "errors": ["name: is reserved"]})
    reply = await post_user(fake_users, "admin")
    assert (reply.status, reply.body) == (
        status, {"result": False, "errors": ["name: is reserved"]})


@pytest.mark.gen_test
async def test_a_4xx_without_messages_is_passed_on_with_a_message_of_ours(fake_users, fake):
    fake.answers(429, {"result": False, "detail": "slow down"})
    reply = await post_user(fake_users)
    assert reply.body["errors"] == ["user service refused the request (429)"]
    assert_error(reply, 429, "user service")


@pytest.mark.gen_test
async def test_a_4xx_with_garbage_is_a_502(fake_users, fake):
    fake.answers(400, b"<html>Bad Request</html>")
    assert_error(await post_user(fake_users), 502, "user service")


@pytest.mark.gen_test
async def test_a_404_from_the_user_service_means_a_null_user(fake_users, fake, listing_svc):
    fake.answers(201, {"result": True, "user": {"id": 1}})
    listing = (await post_listing(fake_users)).body["listing"]
    fake.answers(404, {"result": False, "errors": ["user 1 does not exist"]})
    reply = await call("GET", fake_users.url + "/public-api/listings?user_id=1")
    assert reply.status == 200
    assert [x["user"] for x in reply.body["listings"]] == [None]
    assert reply.body["listings"][0]["id"] == listing["id"]


# --- the request id travels downstream ------------------------------------------------------------

@pytest.mark.gen_test
async def test_the_request_id_reaches_the_downstream_service(fake_users, fake):
    fake.answers(201, {"result": True, "user": {"id": 1, "name": "Ann"}})
    reply = await call("POST", fake_users.url + "/public-api/users", json_body={"name": "Ann"},
                       headers={"X-Request-ID": "trace-42"})
    assert reply.headers["X-Request-ID"] == "trace-42"
    assert [r.headers.get("X-Request-ID", "") for r in fake.requests] == ["trace-42"]
