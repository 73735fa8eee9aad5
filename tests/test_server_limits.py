"""Bodies too large and clients too slow: refused or cut off, never held in memory or forever.

Real processes with small limits: `--max_body_size=65536`, and one second for an idle
connection (`--idle_connection_timeout`, which also bounds the wait for headers) and for a
body (`--body_timeout`). Requests are written by hand on sockets to hold them part-way.
"""
from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from harness.processes import HeldRequest, Stack, http, start_stack

LIMIT = 65536
FORM = "application/x-www-form-urlencoded"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    started = start_stack(tmp_path_factory.mktemp("limits"), f"--max_body_size={LIMIT}",
                          "--idle_connection_timeout=1", "--body_timeout=1")
    yield started
    started.stop()


@pytest.fixture(autouse=True)
def still_standing(stack: Stack) -> Iterator[None]:
    yield
    for service in stack.services:
        assert http("GET", service.url + "/ping") == (200, {"result": True})
    assert "Traceback" not in stack.output()


def targets(stack: Stack) -> list[tuple[str, str, str]]:
    return [(stack.public.url, "/public-api/users", "application/json"),
            (stack.user.url, "/users", FORM)]


TOO_LARGE = {"result": False, "errors": [f"body: larger than the limit of {LIMIT} bytes"]}


@pytest.mark.parametrize("length", [LIMIT + 1, 10**10], ids=["just over", "10 GB"])
def test_a_declared_oversized_body_is_refused_413_before_it_is_sent(
        stack: Stack, length: int) -> None:
    for url, path, content_type in targets(stack):
        held = HeldRequest(url, "POST", path, {"Content-Type": content_type,
                                                "Content-Length": str(length)})
        answer = held.read_answer()  # not one byte of the body has been sent
        assert (answer.status, answer.json()) == (413, TOO_LARGE), (path, answer.raw)


def test_a_chunked_oversized_body_is_refused_413(stack: Stack) -> None:
    chunk = b"a" * 8192
    for url, path, content_type in targets(stack):
        held = HeldRequest(url, "POST", path, {"Content-Type": content_type,
                                                "Transfer-Encoding": "chunked"})
        for _ in range(2 * LIMIT // len(chunk)):
            held.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        held.send(b"0\r\n\r\n")
        answer = held.read_answer()
        assert (answer.status, answer.json()) == (413, TOO_LARGE), (path, answer.raw)


def test_a_body_just_under_the_limit_is_read(stack: Stack) -> None:
    name = "n" * 150
    body = b'{"name": "' + name.encode() + b'"' + b" " * (LIMIT - 200) + b"}"
    assert len(body) < LIMIT
    held = HeldRequest(stack.public.url, "POST", "/public-api/users",
                       {"Content-Type": "application/json", "Content-Length": str(len(body))})
    held.send(body)
    answer = held.read_answer()
    assert answer.status == 201 and answer.json()["user"]["name"] == name


def closed_within(sock: socket.socket, seconds: float) -> bool:
    """True if the server closes `sock` before `seconds` pass (the read sees end of stream)."""
    sock.settimeout(seconds)
    try:
        return sock.recv(1024) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    finally:
        sock.close()


def test_an_idle_connection_is_cut(stack: Stack) -> None:
    socks = [socket.create_connection(("127.0.0.1", service.port)) for service in stack.services]
    assert [closed_within(sock, 5) for sock in socks] == [True] * 3


def test_headers_that_never_end_are_cut(stack: Stack) -> None:
    socks = [socket.create_connection(("127.0.0.1", service.port)) for service in stack.services]
    for sock in socks:
        sock.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    assert [closed_within(sock, 5) for sock in socks] == [True] * 3


def test_a_body_that_stalls_is_cut(stack: Stack) -> None:
    held = [HeldRequest(url, "POST", path, {"Content-Type": content_type,
                                             "Content-Length": "100"})
            for url, path, content_type in targets(stack)]
    for request in held:
        request.send(b"name=slo")
    assert [closed_within(request.sock, 5) for request in held] == [True] * 2
