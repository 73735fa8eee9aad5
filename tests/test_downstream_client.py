"""The downstream client keeps the contract's error mapping, and reuses its connections.

Each fault is a real one on loopback: a port nobody listens on (503), a server that never
answers or never accepts (504), a fake service answering 5xx, garbage, nothing, or too much
(502), and one answering 4xx (passed on with its own messages).
"""
from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from tornado.ioloop import IOLoop
from tornado.iostream import IOStream
from tornado.tcpserver import TCPServer
from tornado.testing import bind_unused_port
from tornado.web import Application, RequestHandler

from common.downstream import MAX_RESPONSE_BYTES, ServiceClient
from common.errors import ApiError
from tests.support.apps import Served, make_public, serve_app, stop_app
from tests.support.http import call
from harness.processes import free_port


class Answer(RequestHandler):
    """Answers what the test put in `answers`: (status, body) per path."""

    def initialize(self, answers: dict[str, tuple[int, bytes]]) -> None:
        self.answers = answers

    def get(self, path: str) -> None:
        status, body = self.answers[path]
        self.set_status(status)
        self.finish(body)


class Hang(RequestHandler):
    """Never answers until the test releases it."""

    def initialize(self, release: asyncio.Event) -> None:
        self.release = release

    async def get(self) -> None:
        await self.release.wait()
        self.finish(b'{"late": true}')


class Huge(RequestHandler):
    """A JSON body one byte over the client's limit, in chunks (no Content-Length)."""

    async def get(self) -> None:
        chunk = b" " * (1024 * 1024)
        self.write(b"{")
        for _ in range(MAX_RESPONSE_BYTES // len(chunk)):
            self.write(chunk)
            await self.flush()
        self.finish(b"}")


class Peers(RequestHandler):
    """Answers with the client's port: the same port twice means a reused connection."""

    def get(self) -> None:
        self.finish({"port": self.request.connection.stream.socket.getpeername()[1]})


@pytest.fixture
def release() -> asyncio.Event:
    return asyncio.Event()


@pytest.fixture
def fake(io_loop: IOLoop, release: asyncio.Event) -> Iterator[tuple[Served, dict]]:
    answers: dict[str, tuple[int, bytes]] = {}
    app = Application([
        (r"/hang|/slow/.*", Hang, {"release": release}),
        (r"/huge", Huge),
        (r"/peer", Peers),
        (r"/(.*)", Answer, {"answers": answers}),
    ], log_function=lambda handler: None)
    served = serve_app(io_loop, app)
    yield served, answers
    release.set()
    stop_app(io_loop, served)


class RawServer(TCPServer):
    """Writes `reply` (raw bytes, not necessarily HTTP) to every connection and closes it."""

    def __init__(self, reply: bytes) -> None:
        super().__init__()
        self.reply = reply

    async def handle_stream(self, stream: IOStream, address: Any) -> None:
        await stream.read_until(b"\r\n\r\n")
        if self.reply:
            await stream.write(self.reply)
        stream.close()


@pytest.fixture
def raw(io_loop: IOLoop) -> Iterator[Any]:
    servers: list[RawServer] = []

    def start(reply: bytes) -> str:
        sock, port = bind_unused_port()
        server = RawServer(reply)
        server.add_sockets([sock])
        servers.append(server)
        return f"http://127.0.0.1:{port}"

    yield start
    for server in servers:
        server.stop()


async def status_of(client: ServiceClient, path: str) -> tuple[int, list[str]]:
    with pytest.raises(ApiError) as failure:
        await client.get(path, key="users")
    return failure.value.status_code, failure.value.errors


@pytest.mark.gen_test
async def test_refused_port_is_503() -> None:
    client = ServiceClient("user", f"http://127.0.0.1:{free_port()}")
    assert await status_of(client, "/users") == (503, ["user service cannot be reached"])


@pytest.mark.gen_test
async def test_no_answer_within_the_total_timeout_is_504(fake: tuple[Served, dict]) -> None:
    client = ServiceClient("user", fake[0].url, connect_timeout=1, request_timeout=0.3)
    assert await status_of(client, "/hang") == (504, ["user service did not answer in time"])


@pytest.mark.gen_test
async def test_no_connection_within_the_connect_timeout_is_504() -> None:
    # A listener that never accepts, its queue already full: the kernel drops further SYNs.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    fillers = [socket.socket() for _ in range(2)]
    for filler in fillers:
        filler.setblocking(False)
        filler.connect_ex(listener.getsockname())
    try:
        client = ServiceClient("listing", "http://127.0.0.1:%d" % listener.getsockname()[1],
                               connect_timeout=0.3, request_timeout=5)
        status, errors = await status_of(client, "/listings")
    finally:
        for sock in (*fillers, listener):
            sock.close()
    assert (status, errors) == (504, ["listing service did not answer in time"])


@pytest.mark.gen_test
@pytest.mark.parametrize("status", [500, 503])
async def test_a_5xx_is_502(fake: tuple[Served, dict], status: int) -> None:
    served, answers = fake
    answers["boom"] = (status, b'{"result": false, "errors": ["database is on fire"]}')
    assert await status_of(ServiceClient("user", served.url), "/boom") == (
        502, [f"user service answered {status}"])


@pytest.mark.gen_test
async def test_a_body_that_is_not_json_is_502(fake: tuple[Served, dict]) -> None:
    served, answers = fake
    answers["html"] = (200, b"<html>hello</html>")
    assert await status_of(ServiceClient("user", served.url), "/html") == (
        502, ["user service answered 200 with a body that is not JSON"])


@pytest.mark.gen_test
@pytest.mark.parametrize("reply", [b"garbage\r\n\r\n", b"HTTP/1.1 abc\r\n\r\n", b""],
                         ids=["not-http", "bad-status-line", "closed-without-answer"])
async def test_garbage_or_no_answer_on_the_wire_is_502(raw: Any, reply: bytes) -> None:
    client = ServiceClient("listing", raw(reply))
    assert await status_of(client, "/listings") == (
        502, ["listing service gave an answer that could not be read"])


@pytest.mark.gen_test
async def test_a_body_over_the_limit_is_502(fake: tuple[Served, dict]) -> None:
    assert await status_of(ServiceClient("user", fake[0].url), "/huge") == (
        502, ["user service gave an answer that could not be read"])


@pytest.mark.gen_test
async def test_a_4xx_is_passed_on_with_the_services_messages(fake: tuple[Served, dict]) -> None:
    served, answers = fake
    answers["users/9"] = (404, b'{"result": false, "errors": ["user 9 does not exist"]}')
    answers["odd"] = (409, b'{"detail": "no errors list"}')
    client = ServiceClient("user", served.url)
    assert await status_of(client, "/users/9") == (404, ["user 9 does not exist"])
    assert await status_of(client, "/odd") == (409, ["user service refused the request (409)"])


@pytest.mark.gen_test
async def test_connections_are_kept_alive_between_calls(fake: tuple[Served, dict]) -> None:
    client = ServiceClient("user", fake[0].url)
    ports = {(await client.get("/peer", key="port")) for _ in range(5)}
    assert len(ports) == 1, f"a new connection per call: {sorted(ports)}"


@pytest.fixture
def public_over_faults(io_loop: IOLoop, fake: tuple[Served, dict], user_svc: Served
                       ) -> Iterator[dict[str, Served]]:
    """A public API whose listing service is down, and one whose listing service hangs."""
    apis = {"refused": make_public(io_loop, f"http://127.0.0.1:{free_port()}", user_svc.url),
            "hanging": make_public(io_loop, fake[0].url + "/slow", user_svc.url,
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
