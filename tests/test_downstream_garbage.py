"""A data service that answers garbage, a 5xx, or a body too large: the public API says 502.

One real service and one fake in its neighbour's place; the fake answers whatever the test
sets, down to raw bytes that are not HTTP at all. Never a hang, never a 500, never a crash:
the public API still answers correctly once the neighbour behaves again.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tornado.ioloop import IOLoop

from common.downstream import MAX_RESPONSE_BYTES
from tests.support.apps import Served, make_public, stop_app
from tests.support.fake import FakeService
from tests.support.http import call

USER = {"id": 1, "name": "Ada", "created_at": 1, "updated_at": 1}
LISTING = {"id": 9, "user_id": 1, "listing_type": "rent", "price": 5, "created_at": 2,
           "updated_at": 2}


@pytest.fixture
def fake_users(io_loop: IOLoop, listing_svc: Served, make_fake: Any
               ) -> Iterator[tuple[FakeService, Served]]:
    """A fake user service behind the public API, and a real listing service with a listing."""
    fake = make_fake()
    public = make_public(io_loop, listing_svc.url, fake.url, request_timeout=2)
    io_loop.run_sync(lambda: call("POST", listing_svc.url + "/listings",
                                  form={"user_id": 1, "listing_type": "rent", "price": 5}))
    yield fake, public
    stop_app(io_loop, public)


@pytest.fixture
def fake_listings(io_loop: IOLoop, user_svc: Served, make_fake: Any
                  ) -> Iterator[tuple[FakeService, Served]]:
    """A fake listing service behind the public API, and a real user service with a user."""
    fake = make_fake()
    public = make_public(io_loop, fake.url, user_svc.url, request_timeout=2)
    io_loop.run_sync(lambda: call("POST", user_svc.url + "/users", form={"name": "Ada"}))
    yield fake, public
    stop_app(io_loop, public)


def public_calls(public: Served, service: str) -> list[tuple[str, str, Any]]:
    """The public requests that reach `service` (the one the fake stands in for)."""
    base = public.url + "/public-api"
    calls = [("GET", base + "/listings", None), ("GET", base + "/listings?user_id=1", None),
             ("POST", base + "/listings", {"user_id": 1, "listing_type": "rent", "price": 5})]
    if service == "user":
        calls.append(("POST", base + "/users", {"name": "Bob"}))
    return calls


def statuses(io_loop: IOLoop, public: Served, service: str) -> dict[str, Any]:
    async def run() -> dict[str, Any]:
        answers = {}
        for method, url, body in public_calls(public, service):
            reply = await call(method, url, json_body=body)
            answers[f"{method} {url}"] = (reply.status, reply.body)
        return answers
    return io_loop.run_sync(run)


GARBAGE = {
    "a 500": (500, {"result": False, "errors": ["boom"]}, "application/json"),
    "a 503": (503, b"", "text/plain"),
    "HTML": (200, b"<html>oops</html>", "text/html"),
    "truncated JSON": (200, b'{"users": [', "application/json"),
    "a JSON array": (200, [], "application/json"),
    "JSON without the key": (200, {"result": True}, "application/json"),
    "invalid UTF-8": (200, b'{"users": "\xff"}', "application/json"),
    "a body too large": (200, b" " * (MAX_RESPONSE_BYTES + 1) + b"{}", "application/json"),
}


def assert_all_502(answers: dict[str, Any], service: str) -> None:
    for request, (status, body) in answers.items():
        assert status == 502, (request, body)
        assert body["result"] is False and body["errors"], (request, body)
        assert body["errors"][0].startswith(f"{service} service") or "malformed" in \
            body["errors"][0], (request, body)


@pytest.mark.parametrize("garbage", GARBAGE.values(), ids=list(GARBAGE))
def test_user_service_garbage_is_a_502(io_loop: IOLoop, fake_users: tuple[FakeService, Served],
                                       garbage: tuple[int, Any, str]) -> None:
    fake, public = fake_users
    fake.answers(*garbage)
    assert_all_502(statuses(io_loop, public, "user"), "user")
    fake.answers(200, {"result": True, "users": [USER], "user": USER})
    answers = statuses(io_loop, public, "user")
    assert [status for status, _ in answers.values()] == [200, 200, 201, 201], answers


@pytest.mark.parametrize("garbage", GARBAGE.values(), ids=list(GARBAGE))
def test_listing_service_garbage_is_a_502(
        io_loop: IOLoop, fake_listings: tuple[FakeService, Served],
        garbage: tuple[int, Any, str]) -> None:
    fake, public = fake_listings
    fake.answers(*garbage)
    assert_all_502(statuses(io_loop, public, "listing"), "listing")
    fake.answers(200, {"result": True, "listings": [LISTING], "listing": LISTING})
    answers = statuses(io_loop, public, "listing")
    assert [status for status, _ in answers.values()] == [200, 200, 201], answers


NOT_HTTP = {
    "not HTTP at all": b"hello\r\n\r\n",
    "a cut-off answer": b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"users\"",
    "nothing": b"",
}


@pytest.mark.parametrize("reply", NOT_HTTP.values(), ids=list(NOT_HTTP))
def test_a_neighbour_speaking_garbage_bytes_is_a_502(io_loop: IOLoop, listing_svc: Served,
                                                     make_fake: Any, reply: bytes) -> None:
    fake = make_fake()
    fake.sends(reply)
    public = make_public(io_loop, listing_svc.url, fake.url, request_timeout=2)
    io_loop.run_sync(lambda: call("POST", listing_svc.url + "/listings",
                                  form={"user_id": 1, "listing_type": "rent", "price": 5}))
    try:
        assert_all_502(statuses(io_loop, public, "user"), "user")
    finally:
        stop_app(io_loop, public)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=3),
    max_leaves=8)


def shaped_like(record: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Records whose fields are sometimes right, sometimes missing, sometimes any JSON."""
    return st.fixed_dictionaries({}, optional={k: st.just(v) | json_values
                                               for k, v in record.items()})


@settings(max_examples=60, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(users=st.lists(shaped_like(USER), max_size=3) | json_values,
       user=shaped_like(USER) | json_values)
def test_any_json_from_the_user_service_is_an_answer_or_a_502_never_a_500(
        io_loop: IOLoop, fake_users: tuple[FakeService, Served], users: Any, user: Any) -> None:
    fake, public = fake_users
    fake.answers(200, {"result": True, "users": users, "user": user})
    for request, (status, body) in statuses(io_loop, public, "user").items():
        assert status in (200, 201, 502), (request, body)
        if status == 200:
            for listing in body["listings"]:
                assert listing["user"] is None or isinstance(listing["user"], dict), body


@settings(max_examples=60, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(listings=st.lists(shaped_like(LISTING), max_size=3) | json_values,
       listing=shaped_like(LISTING) | json_values)
def test_any_json_from_the_listing_service_is_an_answer_or_a_502_never_a_500(
        io_loop: IOLoop, fake_listings: tuple[FakeService, Served], listings: Any,
        listing: Any) -> None:
    fake, public = fake_listings
    fake.answers(200, {"result": True, "listings": listings, "listing": listing})
    for request, (status, body) in statuses(io_loop, public, "listing").items():
        assert status in (200, 201, 502), (request, body)
        if status == 201:
            assert isinstance(body["listing"], dict), body
