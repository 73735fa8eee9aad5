"""Seeing what happened: request ids across the services, one access line per request.

The public API takes `X-Request-ID` from its client (if tame) or makes one, sends it on every
downstream call and returns it; every service puts it in every log line of that request.
`--log_format=json` writes one JSON object per line; readable text is the default.
"""
from __future__ import annotations

import json
import re
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest

from harness.processes import Service, Stack, http_raw, start_stack


@pytest.fixture(scope="module")
def text_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    started = start_stack(tmp_path_factory.mktemp("text-logs"))
    yield started
    started.stop()


@pytest.fixture(scope="module")
def json_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    started = start_stack(tmp_path_factory.mktemp("json-logs"), "--log_format=json")
    yield started
    started.stop()


def post(url: str, body: Any, request_id: str | None = None) -> tuple[int, Any, str]:
    headers = {"Content-Type": "application/json"}
    if request_id is not None:
        headers["X-Request-ID"] = request_id
    answer = http_raw("POST", url, json.dumps(body).encode(), headers=headers)
    return answer.status, answer.json(), answer.headers["X-Request-ID"]


def lines_with(service: Service, request_id: str) -> list[str]:
    """The log lines holding `request_id`, once its access line is written (the answer may
    reach us a moment before the line reaches the log)."""
    deadline = time.monotonic() + 5
    while True:
        lines = [line for line in service.output().splitlines() if request_id in line]
        if any("tornado.access" in line for line in lines) or time.monotonic() > deadline:
            return lines
        time.sleep(0.02)


def create_listing(stack: Stack, request_id: str | None = None) -> str:
    """A user, then a listing with `request_id`; the id the public API answered with."""
    status, body, _ = post(stack.public.url + "/public-api/users", {"name": "Traced"})
    assert status == 201, body
    status, body, answered = post(stack.public.url + "/public-api/listings",
                                  {"user_id": body["user"]["id"], "listing_type": "rent",
                                   "price": 3}, request_id)
    assert status == 201, body
    return answered


def test_the_clients_request_id_is_returned_and_logged_by_every_service(text_stack: Stack) -> None:
    request_id = "client-trace.42:a_b"
    assert create_listing(text_stack, request_id) == request_id
    public, = lines_with(text_stack.public, request_id)
    assert re.search(rf"INFO +public \[{request_id}\] tornado\.access: "
                     r"POST /public-api/listings 201 [0-9.]+ms$", public), public
    user, = lines_with(text_stack.user, request_id)  # the check that the user exists
    assert re.search(r"user \[.*\] tornado\.access: GET /users/\d+ 200 [0-9.]+ms$", user), user
    listing, = lines_with(text_stack.listing, request_id)
    assert re.search(r"listing \[.*\] tornado\.access: POST /listings 201 ", listing), listing


@pytest.mark.parametrize("given", [None, "", "has space", "x" * 129, "semi;colon", "\u00e9t\u00e9"])
def test_without_a_tame_request_id_the_public_api_makes_one_and_passes_it_on(
        text_stack: Stack, given: str | None) -> None:
    headers = {"X-Request-ID": given.encode().decode("latin-1")} if given is not None else {}
    answer = http_raw("GET", text_stack.public.url + "/public-api/listings?page_size=1",
                      headers=headers)
    assert answer.status == 200, answer.raw
    made = answer.headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", made) and made != given
    assert len(lines_with(text_stack.public, made)) == 1
    assert len(lines_with(text_stack.listing, made)) == 1  # GET /listings carried it


def test_a_downstream_failure_is_logged_with_the_request_id(text_stack: Stack) -> None:
    text_stack.user.stop(signal.SIGKILL)
    try:
        status, _body, answered = post(text_stack.public.url + "/public-api/users",
                                       {"name": "Lost"}, "failing-call-1")
    finally:
        text_stack.user.start()
    assert (status, answered) == (503, "failing-call-1")
    warning, access = lines_with(text_stack.public, "failing-call-1")
    assert "WARNING" in warning and "user service cannot be reached" in warning
    assert "POST /public-api/users 503" in access


def test_json_logs_one_object_per_line_and_one_access_line_per_request(json_stack: Stack) -> None:
    request_id = create_listing(json_stack, "json-trace-7")
    http_raw("GET", json_stack.public.url + "/public-api/listings?user_id=1&private=yes",
             headers={"X-Request-ID": "json-trace-8"})
    for service, seen in ((json_stack.public, "json-trace-8"), (json_stack.user, request_id),
                          (json_stack.listing, request_id)):
        assert lines_with(service, seen)  # waits for the line to be written
    for service in json_stack.services:
        records = [json.loads(line) for line in service.output().splitlines()]
        assert records and all(
            {"time", "level", "service", "request_id", "logger", "message"} <= set(record)
            for record in records)
    records = [json.loads(line) for line in json_stack.public.output().splitlines()]
    access = [r for r in records if r["logger"] == "tornado.access"]
    mine, = [r for r in access if r["request_id"] == request_id]
    assert {k: mine[k] for k in ("level", "service", "method", "path", "status")} == {
        "level": "info", "service": "public", "method": "POST", "path": "/public-api/listings",
        "status": 201}
    assert isinstance(mine["duration_ms"], float) and mine["duration_ms"] >= 0
    listed, = [r for r in access if r["request_id"] == "json-trace-8"]
    assert listed["path"] == "/public-api/listings"  # the path only, never the query
    assert "private" not in json_stack.public.output()
    downstream = [json.loads(line) for line in json_stack.user.output().splitlines()]
    assert [(r["method"], r["status"]) for r in downstream
            if r["request_id"] == request_id] == [("GET", 200)]
