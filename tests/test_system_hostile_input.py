"""Input written to break the services: every answer is a 4xx JSON error or a success.

Property-based (hypothesis) against the three services as real processes: arbitrary bytes
as bodies, invalid UTF-8, NUL bytes, deep nesting, huge numbers, floats, booleans, repeated
query parameters, odd Content-Types and methods. Never a 5xx, never a hang (every request has
a client timeout), and after each test every service still answers and has logged no bug.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, quote_from_bytes

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from common.validation import MAX_INT64
from harness.processes import Answer, Stack, http, http_raw, start_stack

PROPERTY = settings(max_examples=150, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    started = start_stack(tmp_path_factory.mktemp("hostile"))
    try:
        status, body = http("POST", started.public.url + "/public-api/users", {"name": "Ada"})
        assert status == 201, body
        status, body = http("POST", started.public.url + "/public-api/listings",
                            {"user_id": 1, "listing_type": "rent", "price": 10})
        assert status == 201, body
        yield started
    finally:
        started.stop()


@pytest.fixture(autouse=True)
def still_standing(stack: Stack) -> Iterator[None]:
    """After each test: every service answers, and none has logged a bug (a 500)."""
    logged_before = len(stack.output())
    yield
    for service in stack.services:
        assert http("GET", service.url + "/ping") == (200, {"result": True})
    log = stack.output()[logged_before:]
    assert "Traceback" not in log and "uncaught exception" not in log
    assert not re.search(r" 5\d\d [0-9.]+ms", log), "a service answered a 5xx"


def send(url: str, data: bytes | None, content_type: str | None = JSON,
         method: str = "POST") -> Answer:
    headers = {"Content-Type": content_type} if content_type is not None else {}
    return http_raw(method, url, data, headers=headers, timeout=10)


# An id that is well formed but no one's: the issues' own wording names the thing, not a field.
_NOT_FOUND = re.compile(r"(user|listing) \d+ does not exist")


def assert_client_error_or(answer: Answer, *success: int) -> Any:
    """A success in `success`, or a 4xx JSON error whose every message names what is wrong."""
    body = answer.json()
    if answer.status in success:
        return body
    assert 400 <= answer.status < 500, (answer.status, body)
    assert body["result"] is False and body["errors"], body
    if answer.status == 404 and all(_NOT_FOUND.fullmatch(e) for e in body["errors"]):
        return body
    assert all(": " in error for error in body["errors"]), body  # "<field>: <problem>"
    return body


PUBLIC_POSTS = ["/public-api/users", "/public-api/listings"]


@PROPERTY
@given(path=st.sampled_from(PUBLIC_POSTS), data=st.binary(max_size=400))
@example(path="/public-api/users", data=b'{"name": "\xff\xfe"}')
@example(path="/public-api/users", data=b'\xef\xbb\xbf{"name": "BOM"}')
@example(path="/public-api/users", data=b'{"name": "a\x00b"}')
@example(path="/public-api/users", data=b"")
def test_any_bytes_as_a_json_body(stack: Stack, path: str, data: bytes) -> None:
    assert_client_error_or(send(stack.public.url + path, data), 201)


json_scalars = (st.none() | st.booleans() | st.integers() | st.integers(min_value=MAX_INT64 - 1)
                | st.floats() | st.text())
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                           max_leaves=6)
LISTING_FIELDS = {"user_id": st.just(1) | json_values,
                  "listing_type": st.sampled_from(["rent", "sale"]) | json_values,
                  "price": st.integers(min_value=-5) | json_values}


def encode(value: Any) -> bytes:
    """JSON as a hostile client may write it: NaN and Infinity included."""
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


@PROPERTY
@given(name=st.text() | json_values, extra=st.dictionaries(st.text(max_size=5), json_values,
                                                             max_size=2))
@example(name="\x00", extra={})
@example(name="  Zoë \u6771\u4eac \U0001F3E0 ", extra={})
@example(name="\ud800", extra={})
def test_any_json_object_as_a_new_user(stack: Stack, name: Any, extra: dict) -> None:
    body = assert_client_error_or(
        send(stack.public.url + "/public-api/users", encode({**extra, "name": name})), 201)
    if "user" in body:
        assert not extra
        assert body["user"]["name"] == name.strip()
        got = http("GET", f"{stack.user.url}/users/{body['user']['id']}")[1]["user"]
        assert got == body["user"]


@PROPERTY
@given(fields=st.fixed_dictionaries({}, optional=LISTING_FIELDS))
def test_any_json_object_as_a_new_listing(stack: Stack, fields: dict) -> None:
    body = assert_client_error_or(
        send(stack.public.url + "/public-api/listings", encode(fields)), 201)
    if "listing" in body:  # compared as JSON text, so that true is not 1 and 5.0 is not 5
        assert encode({k: body["listing"][k] for k in fields}) == encode(fields)


@pytest.mark.parametrize("field, value", [
    ("price", MAX_INT64 + 1), ("price", 10**30), ("price", 1.0), ("price", 1e300), ("price", "5"),
    ("price", True), ("price", 0), ("price", -1), ("price", None), ("price", [5]),
    ("user_id", True), ("user_id", False), ("user_id", 1.5), ("user_id", "1"),
    ("user_id", 2**64), ("listing_type", "RENT"), ("listing_type", 1),
])
def test_a_wrong_number_or_type_names_its_field(stack: Stack, field: str, value: Any) -> None:
    fields = {"user_id": 1, "listing_type": "rent", "price": 5, field: value}
    answer = send(stack.public.url + "/public-api/listings", encode(fields))
    body = assert_client_error_or(answer)
    assert answer.status == 400 and [e.split(":")[0] for e in body["errors"]] == [field], body


@pytest.mark.parametrize("data, error", [
    (b"[" * 100_000, "body: is not valid JSON"),
    (b'{"name": ' + b"[" * 5000 + b"]" * 5000 + b"}", "body: is not valid JSON"),
    (b'{"user_id": 1, "listing_type": "rent", "price": ' + b"9" * 5000 + b"}",
     "body: is not valid JSON"),
    (b'{"user_id": 1, "listing_type": "rent", "price": 1e400}',
     f"price: must be an integer from 1 to {MAX_INT64}"),
    (b'{"user_id": 1, "listing_type": "rent", "price": -0}',
     f"price: must be an integer from 1 to {MAX_INT64}"),
    (b'{"name": "a", "name": "b"}', "name: is given more than once"),
    (b'[{"name": "x"}]', "body: must be a JSON object"),
    (b'"just a string"', "body: must be a JSON object"),
    (b'{"name": NaN}', "body: is not valid JSON"),
    (b'{"name": "\xc3\x28"}', "body: is not valid UTF-8"),
])
def test_pathological_json(stack: Stack, data: bytes, error: str) -> None:
    path = "/public-api/listings" if b"price" in data else "/public-api/users"
    body = assert_client_error_or(send(stack.public.url + path, data), 201)
    assert body["errors"] == [error]


@PROPERTY
@given(content_type=st.sampled_from([
    JSON, "APPLICATION/JSON", "application/json; charset=utf-8", " application/json ",
    "application/json-patch+json", "text/json", "text/plain", FORM, "multipart/form-data",
    "application/x-json", "*/*", ";", "", "application/json;;;=", "application/\u00e9"])
    | st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
              max_size=40))
def test_odd_content_types(stack: Stack, content_type: str) -> None:
    answer = send(stack.public.url + "/public-api/users", b'{"name": "Typed"}', content_type)
    body = assert_client_error_or(answer, 201)
    is_json = content_type.split(";")[0].strip().lower() == JSON
    assert answer.status == (201 if is_json else 415), body


query_keys = st.sampled_from(["page_num", "page_size", "user_id", "ids", "x"]) | st.text(max_size=5)
query_values = (st.integers(min_value=-3, max_value=2**64).map(str)
                | st.sampled_from(["", "1", "100", "101", "0", "1.5", "true", "１", "+1", " 1",
                                   "9223372036854775807", "9223372036854775808", "1,2,3"])
                | st.text(max_size=8))


def query_string(pairs: list[tuple[str, str]], raw: bytes) -> str:
    parts = [f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs]
    if raw:
        parts.append("x=" + quote_from_bytes(raw, safe=""))  # maybe not UTF-8 once decoded
    return "&".join(parts)


@PROPERTY
@given(service=st.sampled_from(["public", "listing", "user"]),
       pairs=st.lists(st.tuples(query_keys, query_values), max_size=4),
       raw=st.binary(max_size=4))
@example(service="public", pairs=[("page_num", "1"), ("page_num", "2")], raw=b"")
@example(service="public", pairs=[("page_num", "9223372036854775807")], raw=b"")
@example(service="user", pairs=[("ids", ",".join(map(str, range(1, 102))))], raw=b"")
@example(service="listing", pairs=[], raw=b"\xff")
def test_any_query_string_on_a_list(stack: Stack, service: str, pairs: list, raw: bytes) -> None:
    path = {"public": "/public-api/listings", "listing": "/listings", "user": "/users"}[service]
    url = getattr(stack, service).url + path + "?" + query_string(pairs, raw)
    body = assert_client_error_or(send(url, None, None, "GET"), 200)
    keys = [k for k, _ in pairs]
    repeated = any(keys.count(k) > 1 for k in ("page_num", "page_size", "user_id", "ids"))
    if repeated and raw.decode("utf-8", "ignore") == raw.decode("utf-8", "replace"):
        assert body["result"] is False and any("more than once" in e for e in body["errors"])


@PROPERTY
@given(service=st.sampled_from(["listing", "user"]), data=st.binary(max_size=300)
       | st.lists(st.tuples(st.sampled_from(["name", "user_id", "listing_type", "price"])
                            | st.text(max_size=4), query_values), max_size=4)
       .map(lambda pairs: query_string(pairs, b"").encode()))
@example(service="user", data=b"name=a%00b")
@example(service="user", data=b"name=%ff")
@example(service="user", data="name=caf\u00e9".encode())
@example(service="listing", data=b"user_id=1&listing_type=rent&price=1&price=2")
def test_any_form_body_on_a_data_service(stack: Stack, service: str, data: bytes) -> None:
    path = {"listing": "/listings", "user": "/users"}[service]
    assert_client_error_or(send(getattr(stack, service).url + path, data, FORM), 201)


@PROPERTY
@given(raw=st.binary(min_size=1, max_size=30))
@example(raw=b"1")
@example(raw=b"99999999999999999999999")
@example(raw=b"\xff")
@example(raw=b"-1")
@example(raw=b"1/extra")
@example(raw=b"987654321")
def test_any_user_id_in_a_path(stack: Stack, raw: bytes) -> None:
    url = f"{stack.user.url}/users/{quote_from_bytes(raw, safe='/')}"
    body = assert_client_error_or(send(url, None, None, "GET"), 200)
    if raw == b"1":
        assert body["user"]["name"] == "Ada"
    if raw == b"987654321":
        assert body["errors"] == ["user 987654321 does not exist"]


@PROPERTY
@given(method=st.sampled_from(["PUT", "DELETE", "PATCH", "OPTIONS", "FOO", "GET", "POST"]),
       path=st.sampled_from(["/public-api/listings", "/public-api/users", "/ping", "/ready",
                             "/nowhere", "/public-api/users/1"]))
def test_any_method_on_any_route(stack: Stack, method: str, path: str) -> None:
    data = b'{"name": "Method"}' if method in ("POST", "PUT", "PATCH") else None
    answer = send(stack.public.url + path, data, JSON if data else None, method)
    assert_client_error_or(answer, 200, 201)


INJECTIONS = [
    "Robert'); DROP TABLE users;--",
    "' OR '1'='1",
    '"; DELETE FROM listings; --',
    "<script>alert('x')</script>",
    "</script><img src=x onerror=alert(1)>",
    "\\\"\\u0000\\n",
    "%s%n%x {0} ${HOME} `id` $(id)",
    "line\u2028separator\u2029\u202e reversed",
]


@pytest.mark.parametrize("name", INJECTIONS)
def test_sql_and_script_looking_names_are_stored_and_returned_verbatim(
        stack: Stack, name: str) -> None:
    answer = send(stack.public.url + "/public-api/users", encode({"name": name}))
    assert answer.status == 201, answer.raw
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert json.dumps(name, ensure_ascii=False).encode() in answer.raw  # JSON-escaped, once
    user = answer.json()["user"]
    assert user["name"] == name
    status, body = http("POST", stack.public.url + "/public-api/listings",
                        {"user_id": user["id"], "listing_type": "sale", "price": 7})
    assert status == 201, body
    status, body = http("GET", f"{stack.public.url}/public-api/listings?user_id={user['id']}")
    assert status == 200 and [listing["user"] for listing in body["listings"]] == [user]
    assert http("GET", f"{stack.user.url}/users/{user['id']}")[1]["user"] == user
    # The tables are all still there.
    assert http("GET", stack.public.url + "/public-api/listings")[0] == 200
