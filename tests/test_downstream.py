"""The downstream client keeps the contract's error mapping, and reuses its connections.

Each fault is a real one on loopback: a port nobody listens on (503), a server that never
answers or never accepts (504), a fake service answering 5xx, garbage, nothing, or too much
(502), and one answering 4xx (passed on with its own messages).
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from tornado.ioloop import IOLoop

from common.downstream import MAX_RESPONSE_BYTES, ServiceClient
from common.errors import ApiError
from tests.support.apps import Served, make_public, stop_app
from tests.support.fake import Answer, FakeService
from tests.support.http import call


@pytest.fixture
def fake(make_fake: Any) -> FakeService:
    """Hangs under /hang and /slow, answers a body one byte over the client's limit under
    /huge (in chunks, no Content-Length), and whatever a test sets under other paths."""
    fake = make_fake()
    fake.hangs(path="/hang")
    fake.hangs(path="/slow")
    chunk = b" " * (1024 * 1024)
    fake.answers(200, b"{" + chunk * (MAX_RESPONSE_BYTES // len(chunk)) + b"}", path="/huge",
                 chunked=True)
    return fake


async def status_of(client: ServiceClient, path: str) -> tuple[int, list[str]]:
    with pytest.raises(ApiError) as failure:
        await client.get(path, key="users")
    return failure.value.status_code, failure.value.errors


@pytest.mark.gen_test
async def test_refused_port_is_503(make_fake: Any) -> None:
    client = ServiceClient("user", make_fake(connects="refused").url)
    assert await status_of(client, "/users") == (503, ["user service cannot be reached"])


@pytest.mark.gen_test
async def test_no_answer_within_the_total_timeout_is_504(fake: FakeService) -> None:
    client = ServiceClient("user", fake.url, connect_timeout=1, request_timeout=0.3)
    assert await status_of(client, "/hang") == (504, ["user service did not answer in time"])


@pytest.mark.gen_test
async def test_no_connection_within_the_connect_timeout_is_504(make_fake: Any) -> None:
    # A listener that never accepts, its queue already full: the kernel drops further SYNs.
    never = make_fake(connects="never_completed")
    client = ServiceClient("listing", never.url, connect_timeout=0.3, request_timeout=5)
    status, errors = await status_of(client, "/listings")
    assert (status, errors) == (504, ["listing service did not answer in time"])


@pytest.mark.gen_test
@pytest.mark.parametrize("status", [500, 503])
async def test_a_5xx_is_502(fake: FakeService, status: int) -> None:
    fake.answers(status, b'{"result": false, "errors": ["database is on fire"]}', path="/boom")
    assert await status_of(ServiceClient("user", fake.url), "/boom") == (
        502, [f"user service answered {status}"])


@pytest.mark.gen_test
async def test_a_body_that_is_not_json_is_502(fake: FakeService) -> None:
    fake.answers(200, b"<html>hello</html>", "text/html", path="/html")
    assert await status_of(ServiceClient("user", fake.url), "/html") == (
        502, ["user service answered 200 with a body that is not JSON"])


@pytest.mark.gen_test
@pytest.mark.parametrize("reply", [b"garbage\r\n\r\n", b"HTTP/1.1 abc\r\n\r\n", b""],
                         ids=["not-http", "bad-status-line", "closed-without-answer"])
async def test_garbage_or_no_answer_on_the_wire_is_502(fake: FakeService, reply: bytes) -> None:
    fake.sends(reply)
    client = ServiceClient("listing", fake.url)
    assert await status_of(client, "/listings") == (
        502, ["listing service gave an answer that could not be read"])


@pytest.mark.gen_test
async def test_a_body_over_the_limit_is_502(fake: FakeService) -> None:
    assert await status_of(ServiceClient("user", fake.url), "/huge") == (
        502, ["user service gave an answer that could not be read"])


@pytest.mark.gen_test
async def test_a_4xx_is_passed_on_with_the_services_messages(fake: FakeService) -> None:
    fake.answers(404, b'{"result": false, "errors": ["user 9 does not exist"]}', path="/users/9")
    fake.answers(409, b'{"detail": "no errors list"}', path="/odd")
    client = ServiceClient("user", fake.url)
    assert await status_of(client, "/users/9") == (404, ["user 9 does not exist"])
    assert await status_of(client, "/odd") == (409, ["user service refused the request (409)"])


@pytest.mark.gen_test
async def test_connections_are_kept_alive_between_calls(make_fake: Any) -> None:
    # The fake answers with the client's port: the same port twice means a reused connection.
    peers = make_fake()
    peers.script(lambda request: Answer(body={"port": request.peer_port}))
    client = ServiceClient("user", peers.url)
    ports = {(await client.get("/peer", key="port")) for _ in range(5)}
    assert len(ports) == 1, f"a new connection per call: {sorted(ports)}"


@pytest.fixture
def public_over_faults(io_loop: IOLoop, fake: FakeService, make_fake: Any, user_svc: Served
                       ) -> Iterator[dict[str, Served]]:
    """A public API whose listing service is down, and one whose listing service hangs."""
    apis = {"refused": make_public(io_loop, make_fake(connects="refused").url, user_svc.url),
            "hanging": make_public(io_loop, fake.url + "/slow", user_svc.url,
                                   request_timeout=0.3)}
    yield apis
    for served in apis.values():
        stop_app(io_loop, served)


@pytest.mark.gen_test
async def test_the_public_api_answers_the_mapped_status_as_json(
        public_over_faults: dict[str, Served]) -> None:
    down = await call("GET", public_over_faults["refused"].url + "/public-api/listings")
    late = await call("GET", public_over_faults["hanging"].url + "/public-api/listings")
    assert (down.status, down.body) == (
        503, {"result": False, "errors": ["listing service cannot be reached"]})
    assert (late.status, late.body) == (
        504, {"result": False, "errors": ["listing service did not answer in time"]})
