"""The one fake downstream service: it answers what a test scripts and records what it got.

It speaks HTTP/1.1 by hand on a TCPServer, so besides proper answers (a status and a JSON or
byte body, after a delay, or never) it can misbehave as a test needs: write raw bytes that are
not HTTP, close mid-answer or without answering, close idle connections, or not accept at all.
It counts connections, the requests on each, and the connections that ended.

    fake = make_fake()                              # the `make_fake` fixture (tests/conftest.py)
    fake.answers(500, {"result": False})            # every request, or those under `path=`
    fake.hangs()                                    # never answers (until the fake stops)
    fake.sends(b"garbage\\r\\n\\r\\n")                 # raw bytes, then closes
    fake.script(lambda request: Answer(...))        # per request; may return an awaitable
    fake.requests, fake.calls, fake.connections, fake.ended
"""
from __future__ import annotations

import asyncio
import inspect
import json
import re
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http.client import responses
from typing import Any

from tornado.httputil import HTTPHeaders
from tornado.ioloop import IOLoop
from tornado.iostream import IOStream, StreamClosedError
from tornado.tcpserver import TCPServer


def http_answer(body: bytes = b'{"user": "Ann"}', *head: str, status: str = "200 OK") -> bytes:
    """An HTTP/1.1 answer as bytes: status line, `head` lines, Content-Length unless chunked."""
    lines = [f"HTTP/1.1 {status}", *head]
    if not any(line.lower().startswith("transfer-encoding") for line in head):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def chunked(body: bytes, size: int = 1024 * 1024) -> bytes:
    """`body` in chunks of `size`, with no Content-Length: its length is known only at the end."""
    parts = [body[at:at + size] for at in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in parts) + b"0\r\n\r\n"


@dataclass
class Answer:
    """What the fake does with one request.

    By default an HTTP answer of `status` with `body` (JSON-encoded unless bytes). `raw` bytes
    are written as they are instead; `close` ends the connection after writing (with `raw=b""`,
    without answering at all); `hang` never answers; `delay` waits before answering.
    """

    status: int = 200
    body: Any = b"{}"
    content_type: str = "application/json"
    headers: tuple[str, ...] = ()
    raw: bytes | None = None
    close: bool = False
    hang: bool = False
    delay: float = 0
    chunked: bool = False

    def encode(self) -> bytes:
        if self.raw is not None:
            return self.raw
        body = self.body if isinstance(self.body, bytes) else json.dumps(self.body).encode()
        head = [f"Content-Type: {self.content_type}", *self.headers]
        if self.chunked:
            return http_answer(chunked(body), *head, "Transfer-Encoding: chunked",
                               status=self.status_line)
        return http_answer(body, *head, status=self.status_line)

    @property
    def status_line(self) -> str:
        return f"{self.status} {responses.get(self.status, 'Unknown')}"


def cut(raw: bytes) -> Answer:
    """`raw` bytes, then the connection closes."""
    return Answer(raw=raw, close=True)


CLOSE = cut(b"")  # the connection closes without an answer


@dataclass
class Request:
    """One request as the fake read it."""

    method: str
    path: str  # with its query string
    headers: HTTPHeaders
    body: bytes
    raw: bytes  # head and body, as they came on the wire
    connection: int  # 1 for the first connection the fake accepted
    served: int  # requests before this one on its connection
    peer_port: int  # the client's port: the same port twice means a reused connection


Script = Callable[[Request], "Answer | bytes | Awaitable[Answer | bytes | None] | None"]

CONNECTS = ("accepted", "never_accepted", "never_completed", "refused")


@dataclass
class FakeService:
    """A stand-in for the listing or user service on a loopback port; see the module's doc.

    `connects` picks how connecting goes: "accepted" (a served fake), "never_accepted" (the
    kernel completes the connection, nobody reads it), "never_completed" (the listen queue is
    full, so connecting times out) or "refused" (nothing listens on the port).
    `idle_timeout` closes connections kept idle longer than that many seconds.
    """

    url: str = ""
    connects: str = "accepted"
    idle_timeout: float | None = None
    requests: list[Request] = field(default_factory=list)
    connections: int = 0
    ended: int = 0
    routes: dict[str, Answer] = field(default_factory=lambda: {"": Answer()})
    scripted: Script | None = None
    released: asyncio.Event = field(default_factory=asyncio.Event)
    _server: TCPServer | None = None
    _sockets: list[socket.socket] = field(default_factory=list)
    _streams: set[IOStream] = field(default_factory=set)

    # --- what it answers ------------------------------------------------------------------------

    def answers(self, status: int, body: Any = b"{}", content_type: str = "application/json", *,
                path: str = "", delay: float = 0,
                chunked: bool = False) -> None:
        """Answer `status` and `body` (JSON unless bytes) to requests under `path`."""
        self.routes[path] = Answer(status, body, content_type, delay=delay, chunked=chunked)

    def hangs(self, *, path: str = "") -> None:
        """Never answer requests under `path` (until the fake stops)."""
        self.routes[path] = Answer(hang=True)

    def sends(self, raw: bytes, *, close: bool = True, path: str = "") -> None:
        """Write `raw` bytes (HTTP or not) to requests under `path`, then close by default."""
        self.routes[path] = Answer(raw=raw, close=close)

    def script(self, script: Script) -> None:
        """Decide per request: an Answer, raw bytes (the connection stays), or None (closes)."""
        self.scripted = script

    @property
    def calls(self) -> list[tuple[int, str]]:
        """(connection number, method) of each request, in order."""
        return [(request.connection, request.method) for request in self.requests]

    # --- serving --------------------------------------------------------------------------------

    def start(self, io_loop: IOLoop) -> FakeService:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        if self.connects == "refused":
            sock.close()
            return self
        self._sockets.append(sock)
        if self.connects == "never_completed":
            sock.listen(0)
            for _ in range(2):  # fill the queue: the kernel drops further SYNs
                filler = socket.socket()
                filler.setblocking(False)
                filler.connect_ex(sock.getsockname())
                self._sockets.append(filler)
            return self
        sock.listen(128)
        if self.connects == "never_accepted":
            return self
        assert self.connects == "accepted", self.connects
        sock.setblocking(False)
        fake = self

        class Server(TCPServer):
            async def handle_stream(self, stream: IOStream, address: Any) -> None:
                await fake._serve(stream, address)

        def listen() -> None:
            self._server = Server()
            self._server.add_socket(sock)

        _on_loop(io_loop, listen)
        return self

    def stop(self) -> None:
        self.released.set()
        if self._server is not None:
            self._server.stop()
        for stream in list(self._streams):
            stream.close()
        for sock in self._sockets:
            sock.close()

    async def _read(self, stream: IOStream, served: int) -> bytes:
        if served and self.idle_timeout is not None:
            return await asyncio.wait_for(stream.read_until(b"\r\n\r\n"), self.idle_timeout)
        return await stream.read_until(b"\r\n\r\n")

    async def _serve(self, stream: IOStream, address: Any) -> None:
        self.connections += 1
        number = self.connections
        self._streams.add(stream)
        try:
            for served in range(1000):
                head = await self._read(stream, served)
                first, _, rest = head.decode("latin-1").partition("\r\n")
                headers = HTTPHeaders.parse(rest)
                length = re.fullmatch(r" *(\d+) *", headers.get("Content-Length", ""))
                body = await stream.read_bytes(int(length[1])) if length else b""
                method, path = [*first.split(" "), ""][:2]
                request = Request(method, path, headers, body, head + body, number, served,
                                  address[1])
                self.requests.append(request)
                answer = await self._answer(request)
                if answer.hang:
                    await self.released.wait()
                    break
                if answer.delay:
                    await asyncio.sleep(answer.delay)
                if answer.raw != b"" or not answer.close:
                    await stream.write(answer.encode())
                if answer.close:
                    break
        except (TimeoutError, StreamClosedError):
            pass
        finally:
            stream.close()
            self._streams.discard(stream)
            self.ended += 1

    async def _answer(self, request: Request) -> Answer:
        if self.scripted is not None:
            answer = self.scripted(request)
            if inspect.isawaitable(answer):
                answer = await answer
            if answer is None:
                return CLOSE
            return Answer(raw=answer) if isinstance(answer, bytes) else answer
        path = request.path.split("?", 1)[0]
        return self.routes[max((p for p in self.routes if path.startswith(p)), key=len)]


def _on_loop(io_loop: IOLoop, work: Callable[[], None]) -> None:
    """Run `work` on the test's loop, from a fixture (loop stopped) or a test (loop running)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        async def run() -> None:
            work()
        io_loop.run_sync(run)
    else:
        work()
