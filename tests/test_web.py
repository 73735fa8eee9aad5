"""common/web.py: the one JSON error path, for what no service test reaches on its own."""
from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from checks import assert_error
from common.web import JsonHandler, json_application
from conftest import Served, call, serve_app, stop_app


class Boom(JsonHandler):
    """A genuine bug: an exception nobody meant to raise."""

    async def get(self) -> None:
        raise RuntimeError("secret detail /etc/passwd")


@pytest.fixture
def buggy(io_loop) -> Iterator[Served]:
    served = serve_app(io_loop, json_application([(r"/boom", Boom)]))
    yield served
    stop_app(io_loop, served)


@pytest.mark.gen_test
async def test_a_bug_is_a_json_500_that_hides_its_traceback(buggy, caplog):
    with caplog.at_level(logging.ERROR):
        reply = await call("GET", buggy.url + "/boom")
    assert reply.status == 500
    assert reply.body == {"result": False,
                          "errors": ["internal error: the service failed; it has been logged"]}
    logged = [r for r in caplog.records if r.name == "common.web"]
    assert logged and logged[0].exc_info and "secret detail" in str(logged[0].exc_info[1])


@pytest.mark.gen_test
async def test_a_method_tornado_does_not_know_is_a_json_405(listing_svc):
    reply = await call("PROPFIND", listing_svc.url + "/listings")
    assert_error(reply, 405, "method:")
    assert reply.headers["Allow"] == "GET, POST"


@pytest.mark.gen_test
async def test_a_query_that_is_not_utf8_is_a_400(listing_svc):
    assert_error(await call("GET", listing_svc.url + "/listings?user_id=%FF"), 400, "query string:")


@pytest.mark.gen_test
async def test_a_query_with_too_many_fields_is_a_400(listing_svc):
    query = "&".join(f"p{i}=1" for i in range(101))
    assert_error(await call("GET", f"{listing_svc.url}/listings?{query}"), 400, "query string:")


@pytest.mark.gen_test
@pytest.mark.parametrize("body", ["[" * 100_000, '{"user_id": ' + "9" * 5000 + "}"])
async def test_json_too_deep_or_too_long_is_a_400_not_a_500(public, body):
    reply = await call("POST", public.url + "/public-api/listings", body=body,
                       headers={"Content-Type": "application/json"})
    assert_error(reply, 400, "body:")
