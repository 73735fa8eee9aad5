"""common/web.py: the one JSON error path, for what no service test reaches on its own, and
every answer's JSON encoding: compact UTF-8, and valid JSON even for text that is not UTF-8."""
from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from common.validation import MAX_INT64
from common.web import JsonHandler, dumps, json_application
from tests.support.apps import Served, make_public, serve_app, stop_app
from tests.support.checks import assert_error
from tests.support.http import call


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
    assert reply.headers["Allow"] == "GET, HEAD, POST"


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


@pytest.mark.gen_test
async def test_a_raw_utf8_form_body_is_read_as_utf8(user_svc):
    # What `curl -d 'name=Zoë'` sends: UTF-8 bytes, not percent-encoded.
    made = await call("POST", user_svc.url + "/users", body="name=Zoë Ó Briain".encode(),
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert made.status == 201, made.body
    assert made.body["user"]["name"] == "Zoë Ó Briain"


@pytest.mark.gen_test
async def test_a_form_body_that_is_not_utf8_is_a_400(user_svc):
    reply = await call("POST", user_svc.url + "/users", body=b"name=\xff\xfe",
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert reply.status == 400
    assert reply.body == {"result": False, "errors": ["body: is not valid UTF-8"]}


@pytest.mark.gen_test
async def test_a_json_key_given_twice_is_a_400_naming_it(public):
    reply = await call("POST", public.url + "/public-api/users", body='{"name": "a", "name": "b"}',
                       headers={"Content-Type": "application/json"})
    assert reply.status == 400
    assert reply.body == {"result": False, "errors": ["name: is given more than once"]}


@pytest.fixture
def public_without_users(io_loop, listing_svc) -> Iterator[Served]:
    from harness.processes import free_port
    served = make_public(io_loop, listing_svc.url, f"http://127.0.0.1:{free_port()}")
    yield served
    stop_app(io_loop, served)


@pytest.mark.gen_test
async def test_not_ready_names_the_service_that_is_down(public_without_users):
    reply = await call("GET", public_without_users.url + "/ready")
    assert reply.status == 503
    assert reply.body == {"result": False, "errors": ["ready: user service cannot be reached"]}


# --- the JSON encoding ----------------------------------------------------------------------

def test_answers_are_compact_utf8_with_64_bit_integers() -> None:
    body = {"name": "Zoë 東京", "price": MAX_INT64, "user": None, "result": True}
    assert dumps(body) == ('{"name":"Zoë 東京","price":9223372036854775807,"user":null,'
                           '"result":true}').encode()


def test_a_lone_surrogate_is_escaped_not_a_failure() -> None:
    encoded = dumps({"errors": ["\ud800x: is not a known field"]})
    assert encoded == b'{"errors":["\\ud800x: is not a known field"]}'
    assert json.loads(encoded) == {"errors": ["\ud800x: is not a known field"]}
