"""HTTP edges every service answers as RFC 9110/9112 say, on the real processes.

HEAD wherever GET is served; `Allow` on every 405; a request target in absolute form; and a
request id on every answer and log line, even for a method or a path tornado refuses before
any handler code runs. (Edges tornado's HTTP/1 server answers in its own way, such as an
oversized header or a chunk extension, are answered by nginx in front: see
tests/test_cluster.py and docs/operations.md.)
"""
from __future__ import annotations

import http.client as httpclient
import json
import time
from collections.abc import Iterator

import pytest

from harness.processes import Service, Stack, http, start_stack

# Headers that differ between any two answers, whatever the method.
PER_ANSWER = {"date", "x-request-id"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    started = start_stack(tmp_path_factory.mktemp("edges"), "--log_batch_delay=0")
    user = http("POST", started.public.url + "/public-api/users", {"name": "Ann"})[1]["user"]
    http("POST", started.public.url + "/public-api/listings",
         {"user_id": user["id"], "listing_type": "rent", "price": 6000})
    yield started
    started.stop()


def exchange(service: Service, method: str, target: str,
             headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """One request with the target written as given; status, headers (lower-case), body."""
    connection = httpclient.HTTPConnection("127.0.0.1", service.port, timeout=10)
    try:
        connection.request(method, target, headers=headers or {})
        answer = connection.getresponse()
        return answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read()
    finally:
        connection.close()


GET_ROUTES = {
    "listing": ["/listings", "/listings/1", "/listings/1/prices", "/listings/ping", "/ping",
                "/ready", "/openapi.json", "/listings/999", "/listings/abc"],
    "user": ["/users", "/users/1", "/users?ids=1,2", "/ping", "/ready", "/openapi.json",
             "/users/999"],
    "public": ["/public-api/listings", "/public-api/listings/1",
               "/public-api/listings/1/price-history", "/public-api/users/1", "/ping",
               "/ready", "/public-api/openapi.json", "/public-api/docs",
               "/public-api/docs/swagger-ui.css", "/public-api/listings/999", "/nowhere"],
}


@pytest.mark.parametrize("service, path", [(s, p) for s, paths in GET_ROUTES.items()
                                           for p in paths])
def test_head_answers_gets_status_and_headers_without_a_body(
        stack: Stack, service: str, path: str) -> None:
    target = getattr(stack, service)
    got = exchange(target, "GET", path)
    head = exchange(target, "HEAD", path)
    assert head[0] == got[0], (head, got[0])
    assert head[2] == b""
    same = {name: value for name, value in got[1].items() if name not in PER_ANSWER}
    assert {name: value for name, value in head[1].items() if name not in PER_ANSWER} == same
    assert int(head[1]["content-length"]) == len(got[2])


@pytest.mark.parametrize("service, path, allowed", [
    ("listing", "/listings", "GET, HEAD, POST"),
    ("listing", "/listings/1", "GET, HEAD, DELETE, PATCH"),
    ("user", "/users/1", "GET, HEAD, PATCH"),
    ("user", "/logins", "POST"),
    ("public", "/public-api/users", "POST"),
    ("public", "/public-api/listings/1/price-history", "GET, HEAD"),
    ("public", "/ping", "GET, HEAD"),
])
def test_every_405_names_the_allowed_methods(stack: Stack, service: str, path: str,
                                             allowed: str) -> None:
    status, headers, body = exchange(getattr(stack, service), "PUT", path)
    assert (status, headers["allow"]) == (405, allowed)
    assert json.loads(body)["errors"][0].startswith("method: PUT is not allowed here")


@pytest.mark.parametrize("service, path", [("public", "/public-api/listings?page_size=1"),
                                           ("listing", "/listings/1"), ("user", "/users/1")])
def test_a_target_in_absolute_form_is_routed_as_its_path(stack: Stack, service: str,
                                                         path: str) -> None:
    target = getattr(stack, service)
    absolute = exchange(target, "GET", f"http://127.0.0.1:{target.port}{path}")
    assert absolute[0] == 200, absolute
    assert json.loads(absolute[2]) == json.loads(exchange(target, "GET", path)[2])


@pytest.mark.parametrize("method, path, status", [
    ("FOO", "/ping", 405), ("GET", "/public-api/users/%ff", 400),
    ("GET", "/public-api/listings/%C0%AF", 400)])
def test_a_request_tornado_refuses_early_still_has_its_request_id(
        stack: Stack, method: str, path: str, status: int) -> None:
    given = f"edge-{method.lower()}-{status}-{len(path)}"
    answer = exchange(stack.public, method, path, {"X-Request-ID": given})
    assert answer[0] == status and answer[1]["x-request-id"] == given
    assert json.loads(answer[2])["result"] is False
    made = exchange(stack.public, method, path)
    assert len(made[1]["x-request-id"]) == 32  # one of ours when none was given
    wanted = (f"[{given}] tornado.access: {method} {path} {status}",
              f"[{made[1]['x-request-id']}] tornado.access")
    deadline = time.monotonic() + 5  # access lines are written in batches (--log_batch_delay)
    while not all(line in (log := stack.public.output()) for line in wanted):
        assert time.monotonic() < deadline, (wanted, log[-1500:])
        time.sleep(0.05)
