"""A tornado `AsyncHTTPClient` that keeps HTTP/1.1 connections alive and reuses them.

Why it exists: the public API makes two loopback calls to the services per page. Tornado's
own `SimpleAsyncHTTPClient` opens a new connection for every call (it sends `Connection:
close`; client keep-alive is tornado issue #324), and `CurlAsyncHTTPClient` reuses
connections but spends the public API's CPU in pycurl's callbacks into Python. A first
version of this client on tornado's `HTTP1Connection` cost as much as curl (profiled
under load: that class's header parsing in Python and its per-call machinery). So this one
writes each request as one buffer itself and hands the answer to `httptools` (llhttp, the
parser of Node.js, in C): Content-Length, chunked and close-delimited bodies, 1xx, 204/304
and garbage are llhttp's business, not ours.

Measured: `python -m bench.run --only public_p10 --scale 0 --seconds 6` (16 connections on
GET /public-api/listings?page_size=10), three rounds alternating with main's curl client
on a 2-core machine shared with other work. The public API's CPU per page: 0.855, 0.845,
0.798 ms with this client against 1.262, 1.072, 0.977 ms with curl (medians 0.845 against
1.072); 836, 874, 920 against 678, 771, 885 req/s.

Plain http only, no redirects, no decompression, no proxies: it calls our own services on
loopback. Pool rules:
- after a complete HTTP/1.1 answer that llhttp says may keep the connection (no
  `Connection: close`, a body not delimited by the close), the stream is kept, at most
  `max_idle_per_host` per host, newest reused first;
- any error, a timeout, or an answer not read to its end closes it;
- an idle stream that the server closes drops out of the pool: each connection gets one
  close callback when it is opened, not one per use (IOStream watches an idle stream for
  reads either way); one idle longer than `idle_timeout`, or than 3/4 of the idle timeout
  the server announced in `Keep-Alive: timeout=N`, is closed, so we never write to a
  connection the server is about to drop on purpose;
- at most `max_per_host` calls to one host at once (and `max_clients` in all): the others
  wait in line, within their own timeout, instead of opening more connections than the
  server's listen backlog takes (a dropped SYN is resent only after a second);
- a reused stream that turns out dead before a single byte of the answer arrived (the
  server closed it just as we wrote) is retried once on a fresh connection, for safe
  methods only (GET, HEAD, OPTIONS).

Failures are reported as `SimpleAsyncHTTPClient` reports them, so that `fetch(...,
raise_error=False)` raises them: `HTTPTimeoutError` (599) for the connect or total timeout,
the `OSError` of a refused or unreachable connect, the `OSError` or `HTTPStreamClosedError`
of a connection lost mid-answer, `HTTPStreamClosedError` for an answer llhttp refused
(garbage), a header section over `max_header_size` or a body over `max_body_size`.
A `ValueError` for a request this client will not send (CR or LF in its target or headers,
https, credentials in the URL, options it does not implement).
"""
from __future__ import annotations

import asyncio
import collections
import functools
import time
import urllib.parse
from collections.abc import Callable
from io import BytesIO
from typing import Any

import httptools
from tornado.httpclient import AsyncHTTPClient, HTTPRequest, HTTPResponse
from tornado.httputil import HTTPHeaders
from tornado.iostream import IOStream, StreamClosedError
from tornado.simple_httpclient import HTTPStreamClosedError, HTTPTimeoutError
from tornado.tcpclient import TCPClient

# The only methods resent after a reused connection turned out dead: the safe ones (RFC 9110,
# 9.2.1). The server may have read and acted on the request before the connection died, and
# we cannot tell: a POST would be made twice, and a DELETE, idempotent though it is, would
# be answered 404 the second time for a delete that succeeded.
RESENDABLE = frozenset({"GET", "HEAD", "OPTIONS"})
# A server's `Keep-Alive: timeout=N` is when IT closes an idle connection, timed from before
# our answer arrived: we stop reusing one after this share of N, so that a request is never
# written onto a connection the server is closing.
ANNOUNCED_IDLE_SHARE = 0.75
# HTTPRequest options this client does not implement: refused rather than silently ignored.
# (follow_redirects and decompress_response default to true for every request, so they are
# simply not honoured: no redirect is followed, no Accept-Encoding is sent.)
_UNSUPPORTED = ("proxy_host", "auth_username", "body_producer", "streaming_callback",
                "header_callback", "expect_100_continue", "network_interface", "client_cert")
_BODY_EXPECTED = frozenset({"POST", "PUT", "PATCH"})
_READ_SIZE = 65536

Address = tuple[str, int]


class KeepAliveHTTPClient(AsyncHTTPClient):
    """HTTP/1.1 client with a keep-alive pool: requests written by hand, answers by llhttp.

    Construct it as `KeepAliveHTTPClient(...)`: like every AsyncHTTPClient there is one per
    IOLoop (the arguments count only on first construction), unless `force_instance=True`.
    """

    def initialize(  # type: ignore[override]  # takes our pool options, as SimpleAsyncHTTPClient does
            self, max_clients: int = 100, max_body_size: int = 100 * 1024 * 1024,
            max_header_size: int = 65536, max_idle_per_host: int = 64,
            idle_timeout: float = 30.0, max_per_host: int | None = None,
            defaults: dict[str, Any] | None = None) -> None:
        """`max_clients` calls run at once, at most `max_per_host` to one host (default: no
        limit but max_clients); the rest wait, and their wait counts against their timeout.
        `idle_timeout` caps how long a connection is kept idle when its server announces no
        `Keep-Alive: timeout`."""
        super().initialize(defaults=defaults)
        for option in _UNSUPPORTED:
            if self.defaults.get(option):
                raise ValueError(f"KeepAliveHTTPClient does not support {option}")
        self.max_clients = max_clients
        self.max_per_host = max_per_host or max_clients
        self.max_body_size = max_body_size
        self.max_header_size = max_header_size
        self.max_idle_per_host = max_idle_per_host
        self.idle_timeout = idle_timeout
        self._loop = self.io_loop.asyncio_loop  # type: ignore[attr-defined]  # AsyncIOLoop has it; IOLoop is typed
        self._slots = _Slots(max_clients)
        self._host_slots: dict[Address, _Slots] = {}
        self._tcp = TCPClient()
        # Idle streams per (host, port), oldest first, each with the loop time it went idle.
        self._idle: dict[Address, collections.deque[tuple[IOStream, float]]] = {}
        self._sweep: asyncio.TimerHandle | None = None

    def close(self) -> None:
        """Close every idle connection; calls in flight close theirs when they end."""
        super().close()
        pools, self._idle = self._idle.values(), {}
        for idle in pools:
            for stream, _ in idle:
                stream.close()
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        self._tcp.close()

    def fetch_impl(self, request: HTTPRequest, callback: Callable[[HTTPResponse], None]
                   ) -> None:
        # The task's own done callback, not IOLoop.add_future (one more trip round the loop).
        task = self._loop.create_task(self._fetch(request))
        task.add_done_callback(lambda done: callback(done.result()))

    def idle_connections(self, address: Address) -> int:
        """How many idle connections to `address` the pool holds (for tests and logs)."""
        return len(self._idle.get(address, ()))

    def idle_deadlines(self, address: Address) -> list[float]:
        """The loop times until which the idle connections to `address` may be reused."""
        return [expires for _, expires in self._idle.get(address, ())]

    async def _fetch(self, request: HTTPRequest) -> HTTPResponse:
        """Never raises: every failure becomes a 599 response carrying the error."""
        start, wall = self._loop.time(), time.time()
        call = _Call()
        # fetch() wraps the caller's request in a proxy that looks each attribute up in the
        # client's defaults too, at about 1 us a lookup: only the timeouts have defaults.
        own: HTTPRequest = getattr(request, "request", request)
        try:
            address, data = _request_bytes(own)
            if request.request_timeout:
                call.deadline = start + request.request_timeout
                # One timer for the whole call (queue, connect, answer); cancelled at the end.
                call.timer = self._loop.call_at(call.deadline, call.time_out)
            host_slots = self._host_slots.get(address)
            if host_slots is None:
                host_slots = self._host_slots[address] = _Slots(self.max_per_host)
            try:
                # The host's slot first: a call waiting for its host holds no global slot.
                if not host_slots.take():
                    await host_slots.wait(call)
                try:
                    if not self._slots.take():
                        await self._slots.wait(call)
                    try:
                        answer = await self._send(call, request, own.method, address, data)
                    finally:
                        self._slots.release()
                finally:
                    host_slots.release()
            finally:
                if call.timer is not None:
                    call.timer.cancel()
        except StreamClosedError as error:
            return self._failed(request, error.real_error or HTTPStreamClosedError(
                "Stream closed"), start, wall)
        except Exception as error:
            return self._failed(request, error, start, wall)
        return HTTPResponse(request, answer.status, reason=answer.reason, headers=answer.headers,
                            buffer=BytesIO(b"".join(answer.body)), effective_url=own.url,
                            request_time=self._loop.time() - start, start_time=wall)

    async def _send(self, call: _Call, request: HTTPRequest, method: str, address: Address,
                    data: bytes) -> _Answer:
        head_only = method == "HEAD"
        stream = self._take_idle(address)
        if stream is not None:
            try:
                return await self._exchange(call, stream, address, data, head_only)
            except _Stale as stale:
                if method not in RESENDABLE:
                    raise stale.error from None
        stream = await self._connect(call, address, request)
        try:
            return await self._exchange(call, stream, address, data, head_only)
        except _Stale as stale:  # a fresh connection is never retried
            raise stale.error from None

    async def _connect(self, call: _Call, address: Address, request: HTTPRequest) -> IOStream:
        # The connect timeout, from now (a retry's connect gets its full time), capped by the
        # total one as in SimpleAsyncHTTPClient.
        now = self._loop.time()
        ends = [end for end in (request.connect_timeout and now + request.connect_timeout,
                                call.deadline) if end]
        timeout = max(min(ends) - now, 0) if ends else None
        try:
            stream = await self._tcp.connect(*address, timeout=timeout)
        except TimeoutError as error:
            raise HTTPTimeoutError(str(error) or "Timeout while connecting") from None
        if call.timed_out:
            stream.close()
            raise HTTPTimeoutError("Timeout while connecting")
        stream.set_nodelay(True)
        # Once for the connection's life: it also makes IOStream watch the stream for reads
        # while idle, so that a server's close is seen (and the stream leaves the pool).
        stream.set_close_callback(functools.partial(self._forget, address, stream))
        return stream

    async def _exchange(self, call: _Call, stream: IOStream, address: Address, data: bytes,
                        head_only: bool) -> _Answer:
        """One request and its answer on `stream`, which goes back to the pool or is closed.

        Raises `_Stale` when the stream died before any byte of the answer arrived.
        """
        answer = _Answer(head_only, self.max_body_size)
        answer.parser = parser = httptools.HttpResponseParser(answer)
        received = 0
        call.stream = stream
        try:
            stream.write(data)  # request line, headers and body: one write, one segment
            while not answer.complete:
                # Until the header section is complete, read no further than its limit:
                # a section still incomplete at max_header_size bytes is refused.
                size = _READ_SIZE if answer.headers_done else self.max_header_size - received
                if size <= 0:
                    raise _Refused("header section over max_header_size")
                try:
                    chunk = await stream.read_bytes(size, partial=True)
                except StreamClosedError as error:
                    if call.timed_out:
                        raise HTTPTimeoutError("Timeout during request") from None
                    if received == 0:
                        raise _Stale(error.real_error or HTTPStreamClosedError("Stream closed"))
                    if error.real_error is None and answer.ends_at_close():
                        break  # a body delimited by the server's close: complete
                    raise
                received += len(chunk)
                parser.feed_data(chunk)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade, _Refused) as error:
            stream.close()
            if not answer.complete:
                reason = answer.refusal or str(error) or type(error).__name__
                raise HTTPStreamClosedError(f"the answer could not be read: {reason}") from None
            # Garbage after a complete answer: the answer stands, the connection goes.
        except BaseException:
            stream.close()
            raise
        finally:
            call.stream = answer.parser = None  # no parser <-> answer cycle left for the GC
        if call.timed_out:
            stream.close()
            raise HTTPTimeoutError("Timeout during request")
        if answer.keep_alive and not answer.extra and not stream.closed():
            self._keep(address, stream, self._idle_allowed(answer.headers))
        else:
            stream.close()
        return answer

    def _idle_allowed(self, headers: HTTPHeaders) -> float:
        """How long a connection may stay idle after this answer: our own cap, or less if
        the server announced `Keep-Alive: timeout=N` (RFC 9112 appendix; MDN Keep-Alive)."""
        announced = _announced_timeout(headers.get("Keep-Alive", ""))
        if announced is None:
            return self.idle_timeout
        return min(self.idle_timeout, announced * ANNOUNCED_IDLE_SHARE)

    def _take_idle(self, address: Address) -> IOStream | None:
        """The most recently used idle stream to `address` that is still open, if any."""
        idle = self._idle.get(address)
        now = self._loop.time()
        while idle:
            stream, expires = idle.pop()
            # Bytes from the server while idle (none are due) would be read as the next answer.
            if not stream.closed() and now < expires and not _bytes_buffered(stream):
                return stream
            stream.close()
        return None

    def _keep(self, address: Address, stream: IOStream, allowed: float) -> None:
        idle = self._idle.get(address)
        if idle is None:
            idle = self._idle[address] = collections.deque()
        if self._closed or len(idle) >= self.max_idle_per_host or allowed <= 0:
            stream.close()
            return
        idle.append((stream, self._loop.time() + allowed))
        if self._sweep is None:
            self._sweep = self._loop.call_later(allowed, self._close_expired)

    def _forget(self, address: Address, stream: IOStream) -> None:
        """The close callback of every connection: a closed one leaves the pool."""
        for entry in self._idle.get(address, ()):
            if entry[0] is stream:
                self._idle[address].remove(entry)
                break

    def _close_expired(self) -> None:
        """Close the connections idle past their time; runs while any are idle."""
        self._sweep = None
        now = self._loop.time()
        for idle in self._idle.values():
            for entry in [entry for entry in idle if entry[1] <= now]:
                idle.remove(entry)
                entry[0].close()
        expiries = [expires for idle in self._idle.values() for _, expires in idle]
        if expiries:
            self._sweep = self._loop.call_later(max(min(expiries) - now, 0.05),
                                                self._close_expired)

    def _failed(self, request: HTTPRequest, error: BaseException, start: float, wall: float
                ) -> HTTPResponse:
        return HTTPResponse(request, 599, error=error, request_time=self._loop.time() - start,
                            start_time=wall)


class _Slots:
    """At most `limit` calls at once; the others wait in line, first come first served."""

    __slots__ = ("active", "limit", "waiters")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active = 0
        self.waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    def take(self) -> bool:
        """Take a slot if one is free and nobody waits (no coroutine on this hot path)."""
        if self.active < self.limit and not self.waiters:
            self.active += 1
            return True
        return False

    async def wait(self, call: _Call) -> None:
        """Wait in line for a slot; `call.time_out` fails the wait."""
        call.waiter = waiter = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        try:
            await waiter  # release() hands its slot over
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self.release()  # a slot was handed over that this call will not use
            raise
        finally:
            call.waiter = None

    def release(self) -> None:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():  # not timed out: it takes this slot over
                waiter.set_result(None)
                return
        self.active -= 1


class _Call:
    """One fetch: its deadline and the one timer that enforces it."""

    __slots__ = ("deadline", "stream", "timed_out", "timer", "waiter")

    def __init__(self) -> None:
        self.deadline: float | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.timed_out = False
        self.stream: IOStream | None = None  # while an exchange is under way
        self.waiter: asyncio.Future[None] | None = None  # while queued for a slot

    def time_out(self) -> None:
        self.timed_out = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(HTTPTimeoutError("Timeout in request queue"))
        if self.stream is not None:
            self.stream.close()  # the pending read fails with StreamClosedError


class _Answer:
    """llhttp's callbacks (httptools calls them by name): one answer's status, headers, body.

    A 1xx interim answer is dropped and the final one collected. An answer to HEAD is
    complete at the end of its header section: llhttp cannot be told it has no body.
    """

    def __init__(self, head_only: bool, max_body_size: int) -> None:
        self.parser: httptools.HttpResponseParser | None = None  # set while it is fed
        self.head_only = head_only
        self.max_body_size = max_body_size
        self._new_message()
        self.complete = False
        self.keep_alive = False  # HTTP/1.1, and llhttp's should_keep_alive() at the end
        self.extra = False  # bytes after the answer: the connection cannot be reused
        self.refusal = ""  # why a callback refused the answer

    def _new_message(self) -> None:
        self.status = 0
        self.reason = ""
        self.headers = HTTPHeaders()
        self.headers_done = False
        self.body: list[bytes] = []
        self.body_size = 0

    def on_message_begin(self) -> None:
        if self.complete:
            self.extra = True

    def on_status(self, reason: bytes) -> None:
        self.reason += reason.decode("latin-1")

    def on_header(self, name: bytes, value: bytes) -> None:
        # llhttp has checked both against RFC 9110's grammar: no second check by HTTPHeaders.
        # It drops the whitespace before a value, not after.
        name_text, value_text = name.decode("latin-1"), value.decode("latin-1").rstrip(" \t")
        if name_text in self.headers:
            self.headers.add(name_text, value_text)
        else:
            self.headers[name_text] = value_text

    def on_headers_complete(self) -> None:
        assert self.parser is not None
        self.status = self.parser.get_status_code()
        self.headers_done = True
        if self.head_only:  # its Content-Length is that of a body it does not carry
            if not self.status_is_interim():
                self._completed()
            return
        length = self.headers.get("Content-Length")
        if length is not None and length.isdigit() and int(length) > self.max_body_size:
            self.refuse("Content-Length over max_body_size")

    def on_body(self, chunk: bytes) -> None:
        if self.complete:  # bytes after an answer to HEAD
            self.extra = True
            return
        self.body_size += len(chunk)
        if self.body_size > self.max_body_size:
            self.refuse("body over max_body_size")
        self.body.append(chunk)

    def on_message_complete(self) -> None:
        if self.status_is_interim():
            self._new_message()  # a 100 Continue or 103 Early Hints: the answer comes next
        elif not self.complete:
            self._completed()

    def _completed(self) -> None:
        # llhttp forgets a message's flags once it is complete: ask now.
        assert self.parser is not None
        self.complete = True
        self.keep_alive = (self.parser.should_keep_alive()
                           and self.parser.get_http_version() == "1.1")

    def refuse(self, why: str) -> None:
        self.refusal = why
        raise _Refused(why)  # llhttp stops; feed_data raises HttpParserCallbackError

    def status_is_interim(self) -> bool:
        return 100 <= self.status < 200

    def ends_at_close(self) -> bool:
        """Is the body delimited by the connection's close (neither a length nor chunks)?"""
        if not self.headers_done:
            return False
        coding = self.headers.get("Transfer-Encoding")
        if coding is not None:
            return coding.rsplit(",", 1)[-1].strip().lower() != "chunked"
        return "Content-Length" not in self.headers


class _Refused(Exception):
    """An answer refused for its size, not its syntax."""


class _Stale(Exception):
    """The stream died before any byte of the answer: the request may be resent (once)."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def _announced_timeout(value: str) -> float | None:
    """N of a `Keep-Alive: timeout=N, max=M` header, or None if it names no valid timeout."""
    for parameter in value.split(","):
        name, _, number = parameter.partition("=")
        if name.strip().lower() == "timeout" and number.strip().isdigit():
            return float(number.strip())
    return None


def _bytes_buffered(stream: IOStream) -> bool:
    # IOStream has no public accessor for its read buffer; if the attribute ever goes,
    # assume bytes arrived (the connection is then never reused).
    return getattr(stream, "_read_buffer_size", 1) > 0


def _request_bytes(request: HTTPRequest) -> tuple[Address, bytes]:
    """(host, port) to connect to, and the request as the bytes to write.

    `request` is the caller's own, not fetch()'s proxy: initialize() refused the unsupported
    options in the client's defaults, and url, method, headers and body have none.
    """
    for option in _UNSUPPORTED:
        if getattr(request, option, None):
            raise ValueError(f"KeepAliveHTTPClient does not support {option}")
    url = urllib.parse.urlsplit(request.url)
    if url.scheme != "http":
        raise ValueError(f"KeepAliveHTTPClient calls plain http:// only, not {request.url!r}")
    address = _address(url.netloc)
    target = (url.path or "/") + ("?" + url.query if url.query else "")
    method, headers, body = request.method, request.headers, request.body
    if body is None and method in _BODY_EXPECTED:
        body = b""
    lines = [f"{method} {target} HTTP/1.1"]
    if "Host" not in headers:
        lines.append("Host: " + url.netloc)
    for name, value in headers.get_all():
        if body is None or name != "Content-Length":
            lines.append(f"{name}: {value}")
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    head = "\r\n".join(lines)
    # Every CR and LF in the head must be one of the separators just put there: one in the
    # target, a name or a value would split the request (and let its author write another).
    if head.count("\r") != len(lines) - 1 or head.count("\n") != len(lines) - 1:
        bad = next(line for line in lines if "\r" in line or "\n" in line)
        raise ValueError(f"CR or LF in the request line or a header: {bad!r}")
    request_line, _, header_lines = head.partition("\r\n")
    data = request_line.encode() + b"\r\n" + header_lines.encode("latin-1") + b"\r\n\r\n"
    return address, data + body if body else data


@functools.lru_cache(maxsize=64)
def _address(netloc: str) -> Address:
    """(host, port) of a URL's netloc, parsed once per netloc: our calls go to two."""
    url = urllib.parse.urlsplit("//" + netloc)
    if url.hostname is None:
        raise ValueError(f"no host in {netloc!r}")
    if url.username is not None:
        raise ValueError("KeepAliveHTTPClient does not send credentials from the URL")
    return url.hostname, url.port or 80
