"""Passwords in the user service and logins through the public API, as real processes
(issue #13): the lockout and its end across restarts, hashing off the event loop, and no
hash or password in any answer or log line."""
from __future__ import annotations

import json
import selectors
import socket
import sqlite3
import time
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest

from harness.processes import PASSWORD, Service, Stack, http, http_raw, start_service

SECRET = "process-test-secret-" + "q" * 40


def stack(tmp: Path, *user_args: str, public_args: tuple[str, ...] = (),
          log_format: str = "text") -> Stack:
    """The three services; `user_args` go to the user service only."""
    fmt = f"--log_format={log_format}"
    listing = start_service("listing_service.py", tmp, f"--db_path={tmp / 'l.db'}", fmt)
    user = start_service("user_service.py", tmp, f"--db_path={tmp / 'u.db'}", fmt, *user_args)
    public = start_service("public_api.py", tmp, f"--listing_service_url={listing.url}",
                           f"--user_service_url={user.url}", f"--auth_secret={SECRET}", fmt,
                           *public_args)
    return Stack(listing, user, public)


def login(public: Service, user_id: int, password: str) -> tuple[int, dict, str | None]:
    answer = http_raw("POST", f"{public.url}/public-api/tokens",
                      json.dumps({"user_id": user_id, "password": password}).encode(),
                      headers={"Content-Type": "application/json"})
    return answer.status, answer.json(), answer.headers.get("Retry-After")


def test_lockout_429_until_the_window_passes_across_restarts(tmp_path: Path) -> None:
    s = stack(tmp_path, "--login_window=4", "--login_limit=3")
    try:
        url = s.public.url + "/public-api"
        ann = http("POST", url + "/users", {"name": "Ann", "password": PASSWORD})[1]["user"]
        for _ in range(3):
            assert login(s.public, ann["id"], "wrong password")[0] == 401
        status, body, retry = login(s.public, ann["id"], PASSWORD)  # even the right one
        assert status == 429, body
        assert body["result"] is False and body["errors"][0].startswith("user_id: ")
        assert retry is not None and 1 <= int(retry) <= 4
        # A restart of either service does not reset the count: it is in the user database.
        s.public.stop()
        s.public.start()
        s.user.stop()
        s.user.start()
        assert login(s.public, ann["id"], PASSWORD)[0] == 429
        # Other users are not locked out.
        bo = http("POST", url + "/users", {"name": "Bo", "password": PASSWORD})[1]["user"]
        assert login(s.public, bo["id"], PASSWORD)[0] == 201
        time.sleep(int(login(s.public, ann["id"], PASSWORD)[2] or 0) + 0.2)
        status, body, _ = login(s.public, ann["id"], PASSWORD)
        assert status == 201, body
    finally:
        s.stop()


def test_unknown_user_ids_are_locked_out_alike(tmp_path: Path) -> None:
    s = stack(tmp_path, "--login_window=60", "--login_limit=2")
    try:
        for _ in range(2):
            assert login(s.public, 4242, PASSWORD)[0] == 401
        assert login(s.public, 4242, PASSWORD)[0] == 429
    finally:
        s.stop()


def _request(url: str, method: str, path: str, body: bytes = b"", kind: str = "") -> socket.socket:
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=30)
    head = [f"{method} {path} HTTP/1.1", f"Host: {parts.hostname}", "Connection: close",
            f"Content-Length: {len(body)}"] + ([f"Content-Type: {kind}"] if kind else [])
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)
    return sock


def test_ping_is_answered_while_20_logins_are_verified(tmp_path: Path) -> None:
    user = start_service("user_service.py", tmp_path, f"--db_path={tmp_path / 'u.db'}")
    try:
        status, _ = http("POST", user.url + "/users", {"name": "Ann", "password": PASSWORD},
                         form=True)
        assert status == 201
        form = urlencode({"user_id": 1, "password": PASSWORD}).encode()
        assert user.process is not None
        pid = user.process.popen.pid
        idle = _cpu_ticks(pid)
        logins = [_request(user.url, "POST", "/logins", form,
                           "application/x-www-form-urlencoded") for _ in range(20)]
        # The ping goes once the service has spent 3 clock ticks of CPU (30 ms at 100 Hz:
        # a request's own work is well under a tick): verifying has begun, and had it begun
        # on the event loop, that verification would end, and its login be answered, before
        # the loop could even read the ping.
        while _cpu_ticks(pid) < idle + 3:
            time.sleep(0.0005)
        ping = _request(user.url, "GET", "/ping")
        selector = selectors.DefaultSelector()
        for sock in [*logins, ping]:
            selector.register(sock, selectors.EVENT_READ)
        order: list[str] = []
        while len(order) < 21:
            for key, _ in selector.select(timeout=30):
                order.append("ping" if key.fileobj is ping else "login")
                selector.unregister(key.fileobj)
        answers = []
        for sock in [*logins, ping]:
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
            sock.close()
            answers.append(data)
        assert all(a.startswith(b"HTTP/1.1 200") for a in answers), answers
        assert all(b'"ok":true' in a for a in answers[:20])
        # Answered while all 20 were still being verified.
        assert order[0] == "ping", order
    finally:
        user.stop()


def _cpu_ticks(pid: int) -> int:
    """utime + stime of a process (all its threads), in clock ticks."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def _hash_of(db: Path, user_id: int) -> str:
    with sqlite3.connect(db) as connection:
        row = connection.execute("SELECT password_hash FROM users WHERE id = ?", (user_id,))
        value = row.fetchone()[0]
    connection.close()
    assert isinstance(value, str)
    return value


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_no_hash_nor_password_in_any_answer_or_log(tmp_path: Path, log_format: str) -> None:
    secret, newer = "Sëcret pässword 1", "Sëcret pässword 2"
    s = stack(tmp_path, log_format=log_format)
    answers: list[str] = []

    def record(reply: tuple[int, object]) -> tuple[int, object]:
        answers.append(json.dumps(reply[1], ensure_ascii=False))
        answers.append(json.dumps(reply[1]))
        return reply

    try:
        url = s.public.url + "/public-api"
        user = record(http("POST", url + "/users", {"name": "Ann", "password": secret}))[1]
        assert isinstance(user, dict)
        user_id = user["user"]["id"]
        first_hash = _hash_of(tmp_path / "u.db", user_id)
        assert first_hash.startswith("$argon2id$")
        record(http("POST", url + "/tokens", {"user_id": user_id, "password": "wrong " + secret}))
        token = record(http("POST", url + "/tokens", {"user_id": user_id, "password": secret}))[1]
        assert isinstance(token, dict)
        auth = {"Authorization": f"Bearer {token['token']}"}
        record(http("PATCH", f"{url}/users/{user_id}", {"password": newer}, headers=auth))
        record(http("PATCH", f"{url}/users/{user_id}", {"password": "short"}, headers=auth))
        record(http("POST", url + "/users", {"name": "Bo", "password": secret, "x": 1}))
        record(http("GET", f"{url}/users/{user_id}"))
        record(http("GET", url + "/listings"))
        record(http("GET", url + "/openapi.json"))
        for service in s.services:
            record(http("GET", service.url + "/openapi.json"))
            record(http("GET", f"{service.url}/users/{user_id}"))
        second_hash = _hash_of(tmp_path / "u.db", user_id)
        assert second_hash != first_hash
    finally:
        s.stop()
    logs = s.output()
    assert "POST /public-api/tokens" in logs and "POST /logins" in logs  # the logs are there
    everything = logs + "\n".join(answers)
    for needle in (secret, newer, first_hash, second_hash, first_hash.split("$")[-1],
                   second_hash.split("$")[-1], json.dumps(secret)[1:-1]):
        assert needle not in everything, needle
