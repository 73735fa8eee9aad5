"""The HTTP edges tornado's own HTTP/1 server answers its own way, answered by nginx in front.

Tornado drops the connection on an oversized header or request line, answers a bare 400 (no
JSON) to a chunk extension, both Content-Length and Transfer-Encoding, a NUL byte or a missing
Host, and keeps an HTTP/1.0 connection with a chunked body open, with no supported way for
our code to change that (docs/operations.md). The production set-up (`make cluster`: nginx
from deploy/nginx.conf in front) answers each as RFC 9110/9112 say, in the JSON envelope.
Real processes: one of each service behind a real nginx.
"""
from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest

from harness.cluster import Cluster, start_cluster

CLOSED = b"<closed>"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    started = start_cluster(tmp_path_factory.mktemp("edges"), processes=1)
    yield started
    started.stop()


def exchange(cluster: Cluster, data: bytes) -> tuple[int, dict[str, str], bytes, bool]:
    """Write `data` on a fresh connection; the status, headers, body, and whether the server
    closed the connection after its answer."""
    port = int(cluster.public_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(data)
        received, closed = b"", False
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    closed = True
                    break
                received += chunk
                head, _, body = received.partition(b"\r\n\r\n")
                length = [line.split(b":", 1)[1] for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:")]
                if length and len(body) >= int(length[0]):
                    sock.settimeout(0.5)  # the whole answer is in: is the connection closed?
        except TimeoutError:
            pass
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip()
               for name, _, value in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body, closed


def assert_json_error(answer: tuple[int, dict[str, str], bytes, bool], status: int,
                      field: str) -> None:
    assert answer[0] == status, answer
    assert answer[1]["content-type"] == "application/json; charset=UTF-8"
    body = json.loads(answer[2])
    assert body["result"] is False and body["errors"][0].startswith(field), body


def test_a_64_kib_header_field_is_a_431(cluster: Cluster) -> None:
    answer = exchange(cluster, b"GET /ping HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 65536
                      + b"\r\n\r\n")
    assert_json_error(answer, 431, "headers:")


def test_a_100_kb_request_line_is_a_414(cluster: Cluster) -> None:
    answer = exchange(cluster, b"GET /ping?" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert_json_error(answer, 414, "request:")


def test_chunk_extensions_are_ignored_and_trailers_parsed(cluster: Cluster) -> None:
    answer = exchange(cluster, b"POST /public-api/users HTTP/1.1\r\nHost: x\r\n"
                      b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                      b'10;x=1\r\n{"name": "Chunk"\r\n1;y="z"\r\n}\r\n0\r\nX-Trailer: 1\r\n\r\n')
    assert answer[0] == 201, answer
    assert json.loads(answer[2])["user"]["name"] == "Chunk"


def test_a_chunked_http_1_0_request_is_refused_and_its_connection_closed(
        cluster: Cluster) -> None:
    answer = exchange(cluster, b"POST /public-api/users HTTP/1.0\r\nHost: x\r\n"
                      b"Connection: keep-alive\r\nContent-Type: application/json\r\n"
                      b'Transfer-Encoding: chunked\r\n\r\n10\r\n{"name": "Chunk"\r\n1\r\n}\r\n'
                      b"0\r\n\r\n")
    assert_json_error(answer, 400, "request:")
    assert answer[3], "the connection stayed open after a chunked HTTP/1.0 request"


@pytest.mark.parametrize("request_bytes", [
    b"POST /public-api/users HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"GET /ping HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
    b"GET /ping HTTP/1.1\r\n\r\n",
], ids=["content-length-and-transfer-encoding", "nul-byte", "no-host"])
def test_a_request_that_cannot_be_parsed_is_a_json_400(cluster: Cluster,
                                                       request_bytes: bytes) -> None:
    assert_json_error(exchange(cluster, request_bytes), 400, "request:")


def test_everything_else_passes_through_as_the_services_answer_it(cluster: Cluster) -> None:
    answer = exchange(cluster, b"FOO /ping HTTP/1.1\r\nHost: x\r\n\r\n")
    assert_json_error(answer, 405, "method:")
    assert answer[1]["allow"] == "GET, HEAD" and len(answer[1]["x-request-id"]) == 32
    ok = exchange(cluster, b"GET /public-api/listings HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (ok[0], json.loads(ok[2])) == (200, {"result": True, "listings": []})
