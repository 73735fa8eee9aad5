"""Graceful shutdown of real processes: SIGTERM or SIGINT while a request is in flight.

A request is held in flight by hand: its headers are sent with `Expect: 100-continue`, and
the `100 Continue` answer proves the handler has it; its body follows only after the signal.
"""
from __future__ import annotations

import json
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest

from harness.processes import HeldRequest, Service, Stack, http, start_service, start_stack

FORM = "application/x-www-form-urlencoded"


def hold(url: str, path: str, body: bytes, content_type: str) -> HeldRequest:
    """A POST whose headers the service has taken in, waiting for its body."""
    held = HeldRequest(url, "POST", path, {"Content-Type": content_type,
                                            "Content-Length": str(len(body)),
                                            "Expect": "100-continue"})
    assert held.read_interim().startswith(b"HTTP/1.1 100")
    return held


def wait_until_refusing(url: str, timeout: float = 10) -> None:
    """Poll until the service no longer accepts connections (a bounded wait, not a timing)."""
    port = int(url.rsplit(":", 1)[1])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except ConnectionRefusedError:
            return
        time.sleep(0.02)
    raise AssertionError(f"{url} still accepts connections")


def send(service: Service, sig: int) -> None:
    """A signal to the running service; the test then watches what it does."""
    assert service.process is not None
    service.process.send(sig)


def exit_code(service: Service, timeout: float = 15) -> int:
    assert service.process is not None
    return service.process.popen.wait(timeout)


@pytest.fixture
def user_service(tmp_path: Path) -> Iterator[Service]:
    service = start_service("user_service.py", tmp_path, f"--db_path={tmp_path / 'users.db'}",
                            "--shutdown_grace=10")
    yield service
    service.stop(signal.SIGKILL)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_data_service_finishes_the_request_in_flight_closes_its_database_and_exits_0(
        user_service: Service, tmp_path: Path, sig: int) -> None:
    body = urlencode({"name": "Late Arrival"}).encode()
    held = hold(user_service.url, "/users", body, FORM)
    assert (tmp_path / "users.db-wal").exists()  # WAL mode: the file lives while the db is open
    send(user_service, sig)
    wait_until_refusing(user_service.url)  # stopped accepting ...
    held.send(body)  # ... yet the request in flight is served
    answer = held.read_answer()
    assert answer.status == 201, answer.raw
    assert answer.json()["user"]["name"] == "Late Arrival"
    assert exit_code(user_service) == 0
    log = user_service.output()
    assert "shutting down: no new connections, 1 request(s) in flight" in log
    assert "stopped" in log and "Traceback" not in log
    # SQLite checkpoints and removes the WAL file only when the last connection closes cleanly.
    assert not (tmp_path / "users.db-wal").exists()


def test_a_request_past_the_grace_period_is_cut_off_and_the_service_still_exits_0(
        tmp_path: Path) -> None:
    service = start_service("listing_service.py", tmp_path,
                            f"--db_path={tmp_path / 'listings.db'}", "--shutdown_grace=0.5")
    try:
        held = hold(service.url, "/listings", b"user_id=1", FORM)  # its body never comes
        send(service, signal.SIGTERM)
        assert exit_code(service) == 0
        assert held.closed_by_server()
        assert "grace period over: 1 request(s) cut off" in service.output()
    finally:
        service.stop(signal.SIGKILL)


def test_a_client_that_gives_up_mid_body_is_not_waited_for(user_service: Service) -> None:
    hold(user_service.url, "/users", b"name=Gone", FORM).close()
    assert http("GET", user_service.url + "/ping")[0] == 200  # the close has been seen
    send(user_service, signal.SIGTERM)
    assert exit_code(user_service, timeout=5) == 0  # not the 10 s grace
    assert "shutting down: no new connections, 0 request(s) in flight" in user_service.output()


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    started = start_stack(tmp_path, "--shutdown_grace=10",
                          public_args=("--downstream_timeout=10",))
    yield started
    started.stop()


def test_the_public_api_finishes_a_request_waiting_on_a_frozen_service_then_exits_0(
        stack: Stack) -> None:
    body = json.dumps({"name": "Patience"}).encode()
    held = hold(stack.public.url, "/public-api/users", body, "application/json")
    stack.user.freeze()
    try:
        held.send(body)  # the public API now waits on the frozen user service
        send(stack.public, signal.SIGTERM)
        wait_until_refusing(stack.public.url)
    finally:
        stack.user.thaw()
    answer = held.read_answer()
    assert answer.status == 201, answer.raw
    user = answer.json()["user"]
    assert user["name"] == "Patience"
    assert exit_code(stack.public) == 0
    log = stack.public.output()
    assert "1 request(s) in flight" in log and "closed the downstream HTTP client" in log
    # The user it created is really there.
    assert http("GET", f"{stack.user.url}/users/{user['id']}")[1]["user"] == user
