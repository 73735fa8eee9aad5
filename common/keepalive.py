"""A tornado `AsyncHTTPClient` that keeps HTTP/1.1 connections alive and reuses them.

Why it exists: the public API makes one or two loopback calls to the services per request.
Tornado's own `SimpleAsyncHTTPClient` opens a new connection for every call (it sends
`Connection: close`; client keep-alive is tornado issue #324, and PRs #1457 and #1622 were
never merged), and no maintained library offers one for tornado. `CurlAsyncHTTPClient`
reuses connections but costs about 0.17 ms of CPU per call in the public API: pycurl's socket
and timer callbacks into Python, ~30 setopt calls per request, a Python callback per header
line. A hand-written keep-alive prototype cost about a fifth of that, and took the public
API from ~900 to ~1,070 req/s.

So this client is small on purpose: tornado's `TCPClient` connects, tornado's
`HTTP1Connection` writes the request and parses the answer (Content-Length, chunked,
204/304/HEAD without body, header and body limits are tornado's parser, not ours), and all
this module adds is a pool of idle connections per host. Plain http only, no redirects,
no decompression, no proxies: it calls our own services on loopback.

Pool rules:
- after a complete HTTP/1.1 answer without `Connection: close`, the stream is detached from
  its HTTP1Connection and kept, at most `max_idle_per_host` per host, newest reused first;
- any error, a timeout, `Connection: close` or an answer not read to its end closes it;
- an idle stream that the server closes drops out of the pool (its close callback), and
  one idle longer than `idle_timeout` (below the services' 60 s idle_connection_timeout)
  is closed, so we never write to a connection the server is about to drop on purpose;
- a reused stream that turns out dead before a single byte of the answer arrived (the
  server closed it just as we wrote) is retried once on a fresh connection, for idempotent
  methods only.

Failures are reported as `SimpleAsyncHTTPClient` reports them, so that `fetch(...,
raise_error=False)` raises them: `HTTPTimeoutError` (599) for the connect or total timeout,
the `OSError` of a refused or unreachable connect, the `OSError` or `HTTPStreamClosedError`
of a connection lost mid-answer, `HTTPStreamClosedError` for an answer tornado's parser
refused (garbage, a body over `max_body_size`).
"""
from __future__ import annotations

import asyncio
import collections
import time
import urllib.parse
from collections.abc import Callable
from io import BytesIO
from typing import Any

from tornado import httputil
from tornado.http1connection import HTTP1Connection, HTTP1ConnectionParameters
from tornado.httpclient import AsyncHTTPClient, HTTPRequest, HTTPResponse
from tornado.ioloop import IOLoop
from tornado.iostream import IOStream, StreamClosedError
from tornado.locks import Semaphore
from tornado.simple_httpclient import HTTPStreamClosedError, HTTPTimeoutError
from tornado.tcpclient import TCPClient

# Methods a server may receive twice with the effect of once (RFC 9110, 9.2.2): the only ones
# resent after a reused connection turned out dead. A POST or PATCH is not: the server may
# have read and acted on it before the connection died, and we cannot tell.
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
# HTTPRequest options this client does not implement: refused rather than silently ignored.
# (follow_redirects and decompress_response default to true for every request, so they are
# simply not honoured: no redirect is followed, no Accept-Encoding is sent.)
_UNSUPPORTED = ("proxy_host", "auth_username", "body_producer", "streaming_callback",
                "header_callback", "expect_100_continue", "network_interface", "client_cert")

Address = tuple[str, int]


class KeepAliveHTTPClient(AsyncHTTPClient):
    """HTTP/1.1 client on tornado's TCPClient and HTTP1Connection, with a keep-alive pool.

    Construct it as `KeepAliveHTTPClient(...)`: like every AsyncHTTPClient there is one per
    IOLoop (the arguments count only on first construction), unless `force_instance=True`.
    """

    def initialize(  # type: ignore[override]
            self, max_clients: int = 100, max_body_size: int = 100 * 1024 * 1024,
            max_header_size: int = 65536, max_idle_per_host: int = 64,
            idle_timeout: float = 30.0, defaults: dict[str, Any] | None = None) -> None:
        """`max_clients` calls run at once, the rest wait (their wait counts against their
        timeout); `idle_timeout` must stay below the servers' own idle timeout."""
        super().initialize(defaults=defaults)
        self.max_body_size = max_body_size
        self.max_idle_per_host = max_idle_per_host
        self.idle_timeout = idle_timeout
        self._slots = Semaphore(max_clients)
        self._params = HTTP1ConnectionParameters(
            max_header_size=max_header_size, max_body_size=max_body_size)
        self._tcp = TCPClient()
        # Idle streams per (host, port), oldest first, each with the IOLoop time it went idle.
        self._idle: dict[Address, collections.deque[tuple[IOStream, float]]] = {}
        self._sweep: object | None = None

    def close(self) -> None:
        """Close every idle connection; calls in flight close theirs when they end."""
        super().close()
        for idle in self._idle.values():
            for stream, _ in idle:
                stream.close()
        self._idle.clear()
        if self._sweep is not None:
            self.io_loop.remove_timeout(self._sweep)
            self._sweep = None
        self._tcp.close()

    def fetch_impl(self, request: HTTPRequest, callback: Callable[[HTTPResponse], None]
                   ) -> None:
        self.io_loop.add_future(asyncio.ensure_future(self._fetch(request)),
                                lambda done: callback(done.result()))

    def idle_connections(self, address: Address) -> int:
        """How many idle connections to `address` the pool holds (for tests and logs)."""
        return len(self._idle.get(address, ()))

    async def _fetch(self, request: HTTPRequest) -> HTTPResponse:
        """Never raises: every failure becomes a 599 response carrying the error."""
        start, wall = self.io_loop.time(), time.time()
        try:
            address, target = _split_url(request)
            _check_supported(request)
            deadline = start + request.request_timeout if request.request_timeout else None
            try:
                await self._slots.acquire(deadline)
            except TimeoutError:
                raise HTTPTimeoutError("Timeout in request queue") from None
            try:
                answer = await self._send(request, address, target, deadline)
            finally:
                self._slots.release()
        except StreamClosedError as error:
            return _failed(request, error.real_error or HTTPStreamClosedError("Stream closed"),
                           start, wall, self.io_loop)
        except Exception as error:
            return _failed(request, error, start, wall, self.io_loop)
        assert answer.start_line is not None
        return HTTPResponse(request, answer.start_line.code, reason=answer.start_line.reason,
                            headers=answer.headers, buffer=BytesIO(b"".join(answer.chunks)),
                            effective_url=request.url, request_time=self.io_loop.time() - start,
                            start_time=wall)

    async def _send(self, request: HTTPRequest, address: Address, target: str,
                    deadline: float | None) -> _Answer:
        headers = request.headers
        if "Host" not in headers:
            headers["Host"] = urllib.parse.urlsplit(request.url).netloc
        if request.body is not None:
            headers["Content-Length"] = str(len(request.body))
        head = httputil.RequestStartLine(request.method, target, "HTTP/1.1")
        stream = self._take_idle(address)
        if stream is not None:
            try:
                return await self._exchange(stream, address, head, request, deadline)
            except _Stale as stale:
                if request.method not in IDEMPOTENT:
                    raise stale.error from None
        stream = await self._connect(address, request, deadline)
        try:
            return await self._exchange(stream, address, head, request, deadline)
        except _Stale as stale:  # a fresh connection is never retried
            raise stale.error from None

    async def _connect(self, address: Address, request: HTTPRequest, deadline: float | None
                       ) -> IOStream:
        # The connect timeout, from now (a retry's connect gets its full time), capped by the
        # total one as in SimpleAsyncHTTPClient.
        now = self.io_loop.time()
        ends = [end for end in (request.connect_timeout and now + request.connect_timeout,
                                deadline) if end]
        timeout = max(min(ends) - now, 0) if ends else None
        try:
            stream = await self._tcp.connect(*address, timeout=timeout)
        except TimeoutError as error:
            raise HTTPTimeoutError(str(error) or "Timeout while connecting") from None
        stream.set_nodelay(True)
        return stream

    async def _exchange(self, stream: IOStream, address: Address,
                        head: httputil.RequestStartLine, request: HTTPRequest,
                        deadline: float | None) -> _Answer:
        """One request and its answer on `stream`, which goes back to the pool or is closed.

        Raises `_Stale` when the stream died before any byte of the answer arrived.
        """
        connection = HTTP1Connection(stream, True, self._params)
        answer = _Answer()
        timer = None
        if deadline is not None:
            timer = self.io_loop.call_at(deadline, answer.time_out, stream)
        try:
            # Headers and body in one write: one segment, no Nagle delay on the body.
            connection.write_headers(head, request.headers, request.body or None)
            connection.finish()
            still_open = await connection.read_response(answer)
        except StreamClosedError as error:
            stream.close()
            if answer.timed_out:
                raise HTTPTimeoutError("Timeout during request") from None
            if answer.start_line is None and not _bytes_buffered(stream):
                raise _Stale(error.real_error or HTTPStreamClosedError("Stream closed"))
            raise
        except BaseException:
            stream.close()
            raise
        finally:
            if timer is not None:
                self.io_loop.remove_timeout(timer)
        if answer.timed_out:
            stream.close()
            raise HTTPTimeoutError("Timeout during request")
        if not (still_open and answer.complete):
            # tornado's parser refused the answer (garbage, over max_body_size) and logged
            # why at INFO on tornado.general; it has closed the stream.
            stream.close()
            raise HTTPStreamClosedError("Connection closed: the answer could not be read")
        if answer.keeps_alive() and not stream.closed():
            self._keep(address, connection.detach())
        else:
            stream.close()
        return answer

    def _take_idle(self, address: Address) -> IOStream | None:
        """The most recently used idle stream to `address` that is still open, if any."""
        idle = self._idle.get(address)
        oldest_allowed = self.io_loop.time() - self.idle_timeout
        while idle:
            stream, since = idle.pop()
            stream.set_close_callback(None)
            # Bytes from the server while idle (none are due) would be read as the next answer.
            if not stream.closed() and since >= oldest_allowed and not _bytes_buffered(stream):
                return stream
            stream.close()
        return None

    def _keep(self, address: Address, stream: IOStream) -> None:
        idle = self._idle.setdefault(address, collections.deque())
        if self._closed or len(idle) >= self.max_idle_per_host:
            stream.close()
            return
        idle.append((stream, self.io_loop.time()))
        # IOStream watches an idle stream with a close callback and calls it if the server
        # closes the connection (its idle timeout, a restart): the stream leaves the pool.
        stream.set_close_callback(lambda: self._forget(address, stream))
        if self._sweep is None:
            self._sweep = self.io_loop.call_later(self.idle_timeout, self._close_expired)

    def _forget(self, address: Address, stream: IOStream) -> None:
        idle = self._idle.get(address, ())
        for entry in idle:
            if entry[0] is stream:
                idle.remove(entry)  # type: ignore[union-attr]
                break

    def _close_expired(self) -> None:
        """Close the connections idle longer than `idle_timeout`; runs while any are idle."""
        self._sweep = None
        oldest_allowed = self.io_loop.time() - self.idle_timeout
        for idle in self._idle.values():
            while idle and idle[0][1] < oldest_allowed:
                stream, _ = idle.popleft()
                stream.set_close_callback(None)
                stream.close()
        if any(self._idle.values()):
            self._sweep = self.io_loop.call_later(self.idle_timeout / 2, self._close_expired)


class _Answer(httputil.HTTPMessageDelegate):
    """What HTTP1Connection parsed: the status line, headers and body of one answer."""

    def __init__(self) -> None:
        self.start_line: httputil.ResponseStartLine | None = None
        self.headers = httputil.HTTPHeaders()
        self.chunks: list[bytes] = []
        self.complete = False
        self.timed_out = False

    def headers_received(self, start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
                         headers: httputil.HTTPHeaders) -> None:
        assert isinstance(start_line, httputil.ResponseStartLine)
        self.start_line, self.headers = start_line, headers

    def data_received(self, chunk: bytes) -> None:
        self.chunks.append(chunk)

    def finish(self) -> None:
        self.complete = True

    def on_connection_close(self) -> None:
        pass  # read_response's result (or its StreamClosedError) says so too

    def time_out(self, stream: IOStream) -> None:
        self.timed_out = True
        stream.close()  # the pending read fails with StreamClosedError: _exchange ends

    def keeps_alive(self) -> bool:
        """May the connection carry another request after this answer?"""
        assert self.start_line is not None
        tokens = self.headers.get("Connection", "").lower().replace(" ", "").split(",")
        return self.start_line.version == "HTTP/1.1" and "close" not in tokens


class _Stale(Exception):
    """The stream died before any byte of the answer: the request may be resent (once)."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def _bytes_buffered(stream: IOStream) -> bool:
    # Part of an answer (a status line cut short) may sit unparsed in the stream's buffer
    # when it closed: then the server did answer, and nothing may be resent. IOStream has no
    # public accessor; if the attribute ever goes, assume bytes arrived (never resend).
    return getattr(stream, "_read_buffer_size", 1) > 0


def _split_url(request: HTTPRequest) -> tuple[Address, str]:
    """(host, port) to connect to and the request target, from an http:// URL."""
    url = urllib.parse.urlsplit(request.url)
    if url.scheme != "http":
        raise ValueError(f"KeepAliveHTTPClient calls plain http:// only, not {request.url!r}")
    if url.hostname is None:
        raise ValueError(f"no host in {request.url!r}")
    if url.username is not None:
        raise ValueError("KeepAliveHTTPClient does not send credentials from the URL")
    target = (url.path or "/") + ("?" + url.query if url.query else "")
    return (url.hostname, url.port or 80), target


def _check_supported(request: HTTPRequest) -> None:
    for option in _UNSUPPORTED:
        if getattr(request, option, None):
            raise ValueError(f"KeepAliveHTTPClient does not support {option}")


def _failed(request: HTTPRequest, error: BaseException, start: float, wall: float,
            io_loop: IOLoop) -> HTTPResponse:
    return HTTPResponse(request, 599, error=error, request_time=io_loop.time() - start,
                        start_time=wall)
