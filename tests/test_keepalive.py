"""KeepAliveHTTPClient: which connections it keeps, reuses, retries on, and closes.

The tests talk to the fake service (tests/support/fake.py), which speaks HTTP/1.1 by hand, so
that it can count connections and requests and misbehave exactly as a test needs (close a
kept-alive connection as it is reused, stop mid-answer, close idle connections).
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from tornado.httpclient import HTTPRequest
from tornado.ioloop import IOLoop
from tornado.simple_httpclient import HTTPStreamClosedError, HTTPTimeoutError

from common.downstream import ServiceClient, http_client
from common.errors import ApiError
from common.keepalive import KeepAliveHTTPClient
from tests.support.fake import Answer, FakeService, cut, http_answer

MakeClient = Callable[..., KeepAliveHTTPClient]
# What a test's fake answers to the n-th request (from 0) on a connection, given its method:
# bytes as they are, None to close the connection without answering, `cut(...)` to close it
# after writing.
Script = Callable[[int, str], "bytes | Answer | None"]


@pytest.fixture
def scripted(make_fake: Any) -> Callable[[Script], tuple[FakeService, str]]:
    """A fake that speaks HTTP/1.1 by hand, as the test's script says; and its URL."""
    def start(script: Script) -> tuple[FakeService, str]:
        fake = make_fake()
        fake.script(lambda request: script(request.served, request.method))
        return fake, fake.url
    return start


@pytest.fixture
def make_client(io_loop: IOLoop) -> Iterator[MakeClient]:
    """Clients of the test's own, with the settings it gives, closed when it ends."""
    clients: list[KeepAliveHTTPClient] = []

    def make(**settings: Any) -> KeepAliveHTTPClient:
        clients.append(KeepAliveHTTPClient(force_instance=True, **settings))
        return clients[-1]

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def client(make_client: MakeClient) -> KeepAliveHTTPClient:
    return make_client()


def address(url: str) -> tuple[str, int]:
    return "127.0.0.1", int(url.rsplit(":", 1)[1])


async def eventually(condition: Callable[[], bool]) -> None:
    """Wait (up to 5 s) for something the other end of a socket does."""
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("never happened")


def always(reply: bytes | Answer) -> Script:
    return lambda served, method: reply


# --- reuse ------------------------------------------------------------------------------------

@pytest.mark.gen_test
async def test_sequential_calls_share_one_connection(scripted: Any, client: KeepAliveHTTPClient
                                                     ) -> None:
    server, url = scripted(always(http_answer()))
    bodies = [(await client.fetch(url + f"/users/{n}")).body for n in range(5)]
    assert bodies == [b'{"user": "Ann"}'] * 5
    assert server.connections == 1
    assert server.calls == [(1, "GET")] * 5
    assert client.idle_connections(address(url)) == 1


@pytest.mark.gen_test
async def test_concurrent_calls_open_as_many_connections_then_reuse_them(
        scripted: Any, client: KeepAliveHTTPClient) -> None:
    server, url = scripted(always(http_answer()))
    for _ in range(3):
        replies = await asyncio.gather(*(client.fetch(url + "/users") for _ in range(4)))
        assert [reply.code for reply in replies] == [200] * 4
        assert client.idle_connections(address(url)) == 4
    assert server.connections == 4
    assert len(server.calls) == 12


@pytest.mark.gen_test
async def test_idle_connections_beyond_the_cap_are_closed(
        scripted: Any, make_client: MakeClient) -> None:
    server, url = scripted(always(http_answer()))
    client = make_client(max_idle_per_host=2)
    await asyncio.gather(*(client.fetch(url + "/users") for _ in range(5)))
    assert client.idle_connections(address(url)) == 2
    await eventually(lambda: server.ended == 3)


@pytest.mark.gen_test
async def test_a_post_with_a_body_then_a_get_on_the_same_connection(
        scripted: Any, client: KeepAliveHTTPClient) -> None:
    server, url = scripted(lambda served, method: http_answer(method.encode()))
    posted = await client.fetch(url + "/users", method="POST", body="name=Ann",
                                headers={"Content-Type": "application/x-www-form-urlencoded"})
    got = await client.fetch(HTTPRequest(url + "/users/1"))
    assert (posted.body, got.body) == (b"POST", b"GET")
    assert server.calls == [(1, "POST"), (1, "GET")]


# --- the server closes a kept connection ------------------------------------------------------

def drops_the_second_request(served: int, method: str) -> bytes | None:
    """Answers once per connection, then closes as the next request arrives: the race of a
    server closing an idle connection just as the client reuses it."""
    return http_answer(b'{"user": "Ann"}') if served == 0 else None


@pytest.mark.gen_test
async def test_a_get_on_a_connection_closed_as_it_was_reused_is_retried_once(
        scripted: Any, client: KeepAliveHTTPClient) -> None:
    server, url = scripted(drops_the_second_request)
    await client.fetch(url + "/users/1")
    reply = await client.fetch(url + "/users/1")
    assert reply.body == b'{"user": "Ann"}'
    assert server.calls == [(1, "GET"), (1, "GET"), (2, "GET")]


@pytest.mark.gen_test
async def test_a_get_is_retried_only_once(scripted: Any, client: KeepAliveHTTPClient) -> None:
    # The fresh connection of the retry is dropped too: that is the caller's error.
    server: FakeService  # declared first: the script below reads it
    server, url = scripted(lambda served, method: None if server.connections > 1 else
                           drops_the_second_request(served, method))
    await client.fetch(url + "/users/1")
    with pytest.raises(HTTPStreamClosedError):
        await client.fetch(url + "/users/1", raise_error=False)
    assert server.calls == [(1, "GET"), (1, "GET"), (2, "GET")]


@pytest.mark.gen_test
async def test_a_post_on_a_connection_closed_as_it_was_reused_is_not_sent_again(
        scripted: Any) -> None:
    server, url = scripted(drops_the_second_request)
    users = ServiceClient("user", url)
    assert await users.post_form("/users", {"name": "Ann"}, key="user") == "Ann"
    with pytest.raises(ApiError) as failure:
        await users.post_form("/users", {"name": "Bob"}, key="user")
    assert (failure.value.status_code, failure.value.errors) == (
        502, ["user service gave an answer that could not be read"])
    assert server.calls == [(1, "POST"), (1, "POST")]  # the server may have acted: once
    assert http_client().idle_connections(address(url)) == 0


@pytest.mark.gen_test
async def test_a_delete_on_a_connection_closed_as_it_was_reused_is_not_sent_again(
        scripted: Any, client: KeepAliveHTTPClient) -> None:
    # Idempotent, yet not resent: the server may have deleted before the connection died,
    # and the second DELETE would answer 404 for a delete that succeeded.
    server, url = scripted(drops_the_second_request)
    await client.fetch(url + "/listings/1", method="DELETE")
    with pytest.raises(HTTPStreamClosedError):
        await client.fetch(url + "/listings/1", method="DELETE", raise_error=False)
    assert server.calls == [(1, "DELETE"), (1, "DELETE")]


@pytest.mark.gen_test
@pytest.mark.parametrize("announced, kept", [("timeout=1", 0.75), ("timeout=1, max=100", 0.75),
                                             ("max=5", 30.0), ("timeout=x", 30.0),
                                             ("timeout=0", 0.0)])
async def test_a_connection_is_kept_for_three_quarters_of_the_announced_idle_timeout(
        scripted: Any, client: KeepAliveHTTPClient, announced: str, kept: float) -> None:
    _server, url = scripted(always(http_answer(b"{}", f"Keep-Alive: {announced}")))
    started = asyncio.get_running_loop().time()
    await client.fetch(url + "/users")
    if kept == 0:
        assert client.idle_connections(address(url)) == 0  # not worth keeping
        return
    (expires,) = client.idle_deadlines(address(url))
    assert started + kept - 0.05 <= expires <= started + kept + 0.5


@pytest.mark.gen_test
async def test_a_connection_past_the_announced_timeout_is_not_reused(
        scripted: Any, client: KeepAliveHTTPClient) -> None:
    server, url = scripted(always(http_answer(b"{}", "Keep-Alive: timeout=1")))
    await client.fetch(url + "/users")
    await asyncio.sleep(0.8)  # past 3/4 of the server's 1 s, before the server closes it
    await client.fetch(url + "/users")
    assert server.connections == 2


@pytest.fixture
def quick_to_close(make_fake: Any) -> str:
    """A fake closing connections idle for 0.1 s (the services use 60 s); it answers with the
    client's port."""
    fake = make_fake(idle_timeout=0.1)
    fake.script(lambda request: Answer(body={"user": request.peer_port}))
    return fake.url


@pytest.mark.gen_test
@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_a_connection_the_server_closed_while_idle_leaves_the_pool(
        quick_to_close: str, client: KeepAliveHTTPClient, method: str) -> None:
    body = "name=Ann" if method == "POST" else None
    first = await client.fetch(quick_to_close + "/users", method=method, body=body)
    assert client.idle_connections(address(quick_to_close)) == 1
    await eventually(lambda: client.idle_connections(address(quick_to_close)) == 0)
    second = await client.fetch(quick_to_close + "/users", method=method, body=body)
    assert second.code == 200
    assert first.body != second.body  # answered on another connection (another client port)


@pytest.mark.gen_test
async def test_connections_idle_longer_than_the_limit_are_closed(
        scripted: Any, make_client: MakeClient) -> None:
    server, url = scripted(always(http_answer()))
    client = make_client(idle_timeout=0.1)
    await client.fetch(url + "/users")
    await eventually(lambda: server.ended == 1)
    assert client.idle_connections(address(url)) == 0
    await client.fetch(url + "/users")
    assert server.connections == 2


# --- answers that end the connection ----------------------------------------------------------

@pytest.mark.gen_test
async def test_a_connection_close_answer_is_not_reused(scripted: Any,
                                                        client: KeepAliveHTTPClient) -> None:
    # The server keeps its end open: only the header tells the client not to reuse it.
    server, url = scripted(always(http_answer(b"{}", "Connection: close")))
    for _ in range(2):
        assert (await client.fetch(url + "/users")).body == b"{}"
    assert client.idle_connections(address(url)) == 0
    assert server.connections == 2
    await eventually(lambda: server.ended == 2)


@pytest.mark.gen_test
async def test_chunked_and_204_answers_keep_the_connection(
        scripted: Any, client: KeepAliveHTTPClient) -> None:
    chunked = http_answer(b"5\r\n{\"a\":\r\n3\r\n 1}\r\n0\r\n\r\n", "Transfer-Encoding: chunked")
    no_content = http_answer(b"", status="204 No Content")
    server, url = scripted(lambda served, method: no_content if method == "DELETE" else chunked)
    assert (await client.fetch(url + "/listings")).body == b'{"a": 1}'
    deleted = await client.fetch(url + "/listings/1", method="DELETE")
    assert (deleted.code, deleted.body) == (204, b"")
    assert (await client.fetch(url + "/listings")).body == b'{"a": 1}'
    assert server.calls == [(1, "GET"), (1, "DELETE"), (1, "GET")]


@pytest.mark.gen_test
@pytest.mark.parametrize("framing", ["Content-Length", "chunked"])
async def test_a_body_over_max_body_size_fails_and_closes_the_connection(
        scripted: Any, framing: str, make_client: MakeClient) -> None:
    big = b"x" * 101
    reply = (http_answer(big) if framing == "Content-Length" else
             http_answer(b"65\r\n" + big + b"\r\n0\r\n\r\n", "Transfer-Encoding: chunked"))
    server, url = scripted(lambda served, method: reply if method == "GET" else http_answer(b"{}"))
    client = make_client(max_body_size=100)
    with pytest.raises(HTTPStreamClosedError):
        await client.fetch(url + "/huge", raise_error=False)
    assert client.idle_connections(address(url)) == 0
    await eventually(lambda: server.ended == 1)
    assert (await client.fetch(url + "/small", method="DELETE")).body == b"{}"
    assert server.connections == 2


@pytest.mark.gen_test
async def test_a_timeout_mid_answer_closes_that_connection(scripted: Any,
                                                           client: KeepAliveHTTPClient) -> None:
    cut_short = http_answer(b"x" * 100)[:-90]  # the headers promise 100 bytes; 10 come
    server, url = scripted(lambda served, method: cut_short if method == "GET" else http_answer())
    with pytest.raises(HTTPTimeoutError) as failure:
        await client.fetch(url + "/slow", request_timeout=0.2, raise_error=False)
    assert failure.value.code == 599
    assert client.idle_connections(address(url)) == 0
    await eventually(lambda: server.ended == 1)
    assert (await client.fetch(url + "/users/1", method="DELETE")).code == 200
    assert server.connections == 2


@pytest.mark.gen_test
async def test_a_timeout_while_reading_a_body_up_to_close_is_a_timeout(
        scripted: Any, client: KeepAliveHTTPClient) -> None:
    # No Content-Length: the body ends when the connection does, and our timeout closing it
    # must not pass for that end.
    _server, url = scripted(always(b"HTTP/1.1 200 OK\r\n\r\n{\"user\": "))
    with pytest.raises(HTTPTimeoutError):
        await client.fetch(url + "/slow", request_timeout=0.2, raise_error=False)
    assert client.idle_connections(address(url)) == 0


@pytest.mark.gen_test
async def test_a_get_is_not_resent_once_part_of_an_answer_came(
        scripted: Any, client: KeepAliveHTTPClient) -> None:
    server, url = scripted(lambda served, method: cut(b"HTTP/1.1 2") if served else http_answer())
    await client.fetch(url + "/users/1")
    with pytest.raises(HTTPStreamClosedError):
        await client.fetch(url + "/users/1", raise_error=False)
    assert server.calls == [(1, "GET"), (1, "GET")]


@pytest.mark.gen_test
async def test_garbage_fails_and_is_never_resent(scripted: Any,
                                                 client: KeepAliveHTTPClient) -> None:
    server, url = scripted(always(b"HTTP/1.1 abc\r\n\r\n"))
    with pytest.raises(HTTPStreamClosedError):
        await client.fetch(url + "/users", raise_error=False)
    assert server.calls == [(1, "GET")]
    assert client.idle_connections(address(url)) == 0


# --- what it refuses, and close() -------------------------------------------------------------

@pytest.mark.gen_test
async def test_a_refused_connect_raises_the_os_error(make_fake: Any,
                                                     client: KeepAliveHTTPClient) -> None:
    with pytest.raises(ConnectionRefusedError):
        await client.fetch(make_fake(connects="refused").url + "/users", raise_error=False)


@pytest.mark.gen_test
@pytest.mark.parametrize("url, options, refusal", [
    ("https://127.0.0.1:1/", {}, "plain http:// only"),
    ("http://127.0.0.1:1/", {"proxy_host": "proxy"}, "does not support proxy_host"),
    ("http://ann:pw@127.0.0.1:1/", {}, "credentials"),
])
async def test_what_it_does_not_do_it_refuses(client: KeepAliveHTTPClient, url: str,
                                              options: dict, refusal: str) -> None:
    with pytest.raises(ValueError, match=refusal):
        await client.fetch(url, raise_error=False, **options)


@pytest.mark.gen_test
async def test_close_closes_the_pooled_connections(scripted: Any) -> None:
    server, url = scripted(always(http_answer()))
    client = KeepAliveHTTPClient(force_instance=True)
    await asyncio.gather(*(client.fetch(url + "/users") for _ in range(3)))
    assert (client.idle_connections(address(url)), server.ended) == (3, 0)
    client.close()
    await eventually(lambda: server.ended == 3)
    assert client.idle_connections(address(url)) == 0


@pytest.mark.gen_test
async def test_one_shared_client_per_io_loop() -> None:
    assert http_client() is http_client()
    assert isinstance(http_client(), KeepAliveHTTPClient)
    own = KeepAliveHTTPClient(force_instance=True)
    assert own is not http_client()
    own.close()


# --- the request as written -------------------------------------------------------------------

@pytest.mark.gen_test
@pytest.mark.parametrize("request_options", [
    {"headers": {"X-Request-ID": "abc\r\nX-Admin: yes"}},
    {"headers": {"X-Request-ID": "abc\nX-Admin: yes"}},
    {"headers": {"X-Admin: yes\r\nX-Request-ID": "abc"}},
    {"method": "GET /admin HTTP/1.1\r\nX:", "allow_nonstandard_methods": True},
], ids=["CRLF-in-a-value", "LF-in-a-value", "CRLF-in-a-name", "CRLF-in-the-request-line"])
async def test_cr_or_lf_in_the_request_line_or_a_header_is_refused_unsent(
        scripted: Any, client: KeepAliveHTTPClient, request_options: dict) -> None:
    server, url = scripted(always(http_answer()))
    with pytest.raises(ValueError, match="CR or LF"):
        await client.fetch(HTTPRequest(url + "/users", **request_options), raise_error=False)
    assert (server.connections, server.calls) == (0, [])


@pytest.mark.gen_test
async def test_the_request_carries_host_its_headers_and_a_content_length(
        scripted: Any, client: KeepAliveHTTPClient) -> None:
    server, url = scripted(always(cut(http_answer())))
    port = int(url.rsplit(":", 1)[1])
    await client.fetch(f"{url}/users?x=1", method="PATCH", body="name=Ann",
                       headers={"X-Request-ID": "r1", "Content-Length": "999"})
    seen = [request.raw for request in server.requests]
    assert seen == [f"PATCH /users?x=1 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                    "X-Request-Id: r1\r\nContent-Length: 8\r\n\r\nname=Ann".encode()]


# --- answers llhttp frames --------------------------------------------------------------------

@pytest.mark.gen_test
@pytest.mark.parametrize("status_line", [b"HTTP/1.1 2000 OK", b"HTTP/1.1 OK 200",
                                         b"HTTP/9.9 200 OK", b"ICY 200 OK", b"HTTP/1.1200 OK"])
async def test_a_garbage_status_line_fails_and_closes_the_connection(
        scripted: Any, client: KeepAliveHTTPClient, status_line: bytes) -> None:
    server, url = scripted(always(status_line + b"\r\nContent-Length: 2\r\n\r\n{}"))
    with pytest.raises(HTTPStreamClosedError, match="the answer could not be read"):
        await client.fetch(url + "/users", raise_error=False)
    assert client.idle_connections(address(url)) == 0
    await eventually(lambda: server.ended == 1)


def padded(head_size: int) -> bytes:
    """An answer whose header section (status line to the blank line) is `head_size` bytes."""
    bare = http_answer(b"{}", "X-Pad: ")
    pad = head_size - (len(bare) - 2)
    return http_answer(b"{}", "X-Pad: " + "p" * pad)


@pytest.mark.gen_test
async def test_a_header_section_over_the_limit_fails(
        scripted: Any, make_client: MakeClient) -> None:
    server, url = scripted(lambda served, method: padded(300 if method == "GET" else 301))
    client = make_client(max_header_size=300)
    assert (await client.fetch(url + "/users")).body == b"{}"  # exactly at the limit
    with pytest.raises(HTTPStreamClosedError, match="max_header_size"):
        await client.fetch(url + "/users", method="DELETE", raise_error=False)
    assert client.idle_connections(address(url)) == 0
    await eventually(lambda: server.ended == 1)


@pytest.mark.gen_test
async def test_headers_as_tornado_parses_them(scripted: Any, client: KeepAliveHTTPClient) -> None:
    _server, url = scripted(always(http_answer(b"{}", "x-pad:  two words \t", "Set-Cookie: a=1",
                                          "set-cookie: b=2")))
    reply = await client.fetch(url + "/users")
    assert reply.headers["X-Pad"] == "two words"
    assert reply.headers.get_list("Set-Cookie") == ["a=1", "b=2"]
    assert reply.headers["Content-Length"] == "2"


@pytest.mark.gen_test
async def test_a_content_length_over_max_body_size_fails_before_the_body_comes(
        scripted: Any, make_client: MakeClient) -> None:
    # The server sends the head and then nothing: only the header can end the call early.
    _server, url = scripted(always(b"HTTP/1.1 200 OK\r\nContent-Length: 101\r\n\r\n"))
    client = make_client(max_body_size=100)
    with pytest.raises(HTTPStreamClosedError, match="Content-Length over max_body_size"):
        await client.fetch(url + "/huge", request_timeout=30, raise_error=False)


@pytest.mark.gen_test
async def test_a_chunked_answer_with_connection_close_is_read_and_not_reused(
        scripted: Any, client: KeepAliveHTTPClient) -> None:
    # The server keeps its end open after the last chunk: only the header says close.
    reply = http_answer(b"3\r\n{\"a\r\n4\r\n\": 1\r\n1\r\n}\r\n0\r\n\r\n",
                   "Transfer-Encoding: chunked", "Connection: close")
    server, url = scripted(always(reply))
    for _ in range(2):
        assert (await client.fetch(url + "/listings")).body == b'{"a": 1}'
    assert client.idle_connections(address(url)) == 0
    assert server.connections == 2


@pytest.mark.gen_test
async def test_304_and_head_answers_have_no_body_and_keep_the_connection(
        scripted: Any, client: KeepAliveHTTPClient) -> None:
    # Both carry the Content-Length of a body they do not send: waiting for it would hang.
    not_modified = b"HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n"
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n"
    server, url = scripted(lambda served, method: {"GET": not_modified, "HEAD": head}.get(
        method, http_answer(b"{}")))
    unchanged = await client.fetch(url + "/users/1", request_timeout=5, raise_error=False)
    assert (unchanged.code, unchanged.body, unchanged.headers["Content-Length"]) == (
        304, b"", "50")
    headed = await client.fetch(url + "/users/1", method="HEAD", request_timeout=5)
    assert (headed.code, headed.body) == (200, b"")
    assert (await client.fetch(url + "/users/1", method="DELETE")).body == b"{}"
    assert server.calls == [(1, "GET"), (1, "HEAD"), (1, "DELETE")]


@pytest.mark.gen_test
async def test_a_body_ended_by_the_close_is_complete_and_not_reused(
        scripted: Any, client: KeepAliveHTTPClient) -> None:
    server, url = scripted(always(cut(b"HTTP/1.1 200 OK\r\n\r\n{\"user\": \"Ann\"}")))
    for _ in range(2):
        assert (await client.fetch(url + "/users/1")).body == b'{"user": "Ann"}'
    assert server.connections == 2
    assert client.idle_connections(address(url)) == 0


@pytest.mark.gen_test
async def test_an_interim_100_continue_is_skipped(scripted: Any,
                                                  client: KeepAliveHTTPClient) -> None:
    continue_then_created = b"HTTP/1.1 100 Continue\r\n\r\n" + http_answer(status="201 Created")
    server, url = scripted(always(continue_then_created))
    for _ in range(2):
        reply = await client.fetch(url + "/users", method="POST", body="name=Ann")
        assert (reply.code, reply.reason, reply.body) == (201, "Created", b'{"user": "Ann"}')
    assert server.connections == 1


@pytest.mark.gen_test
async def test_bytes_after_a_complete_answer_leave_it_standing_but_end_the_connection(
        scripted: Any, client: KeepAliveHTTPClient) -> None:
    server, url = scripted(lambda served, method: http_answer() + (b"junk" if method == "GET" else
                                                              http_answer(b"{}")))
    for method in ("GET", "DELETE"):
        assert (await client.fetch(url + "/users/1", method=method)).body == b'{"user": "Ann"}'
        assert client.idle_connections(address(url)) == 0
    assert server.connections == 2


# --- max_clients -------------------------------------------------------------------------------

@pytest.mark.gen_test
async def test_calls_beyond_max_clients_wait_for_a_slot(
        scripted: Any, make_client: MakeClient) -> None:
    server, url = scripted(always(http_answer()))
    client = make_client(max_clients=2)
    replies = await asyncio.gather(*(client.fetch(url + "/users") for _ in range(7)))
    assert [reply.body for reply in replies] == [b'{"user": "Ann"}'] * 7
    assert server.connections == 2  # two at a time: the others reused theirs


@pytest.mark.gen_test
async def test_calls_beyond_max_per_host_wait_for_a_slot_of_that_host_only(
        make_fake: Any, make_client: MakeClient) -> None:
    slow, fast = make_fake(), make_fake()
    slow.answers(200, {"slow": True}, delay=0.3)
    fast.answers(200, {"fast": True})
    client = make_client(max_per_host=2)
    slow_calls = [asyncio.ensure_future(client.fetch(slow.url + "/users")) for _ in range(6)]
    await asyncio.sleep(0.05)
    assert (await client.fetch(fast.url + "/users")).code == 200  # another host: no wait
    assert not any(call.done() for call in slow_calls)
    assert [reply.code for reply in await asyncio.gather(*slow_calls)] == [200] * 6
    assert slow.connections == 2  # two at a time; the others waited and reused them


@pytest.mark.gen_test
async def test_a_call_waiting_for_a_slot_times_out_there(
        scripted: Any, make_client: MakeClient, make_fake: Any) -> None:
    server, url = scripted(always(http_answer()))
    client = make_client(max_clients=1)
    silent = make_fake(connects="never_accepted")  # nobody accepts from it: no answer ever
    stuck = client.fetch(silent.url + "/slow", request_timeout=1, raise_error=False)
    with pytest.raises(HTTPTimeoutError, match="Timeout in request queue"):
        await client.fetch(url + "/users", request_timeout=0.2, raise_error=False)
    with pytest.raises(HTTPTimeoutError):
        await stuck
    # The slot came back: a call now goes through.
    assert (await client.fetch(url + "/users", method="DELETE")).code == 200
    assert server.calls == [(1, "DELETE")]
