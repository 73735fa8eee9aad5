"""A data service stopped or frozen: the public API answers 503/504 in time and recovers alone.

Real processes: the public API runs with short downstream timeouts, and the test stops
(SIGKILL, then a fresh start on the same port) or freezes (SIGSTOP, then SIGCONT) one service.
"""
from __future__ import annotations

import signal
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from harness.processes import Service, Stack, http, start_stack

DOWNSTREAM_TIMEOUT = 1.0
# The public API must answer within its downstream timeout; this only bounds the wait.
CLIENT_TIMEOUT = DOWNSTREAM_TIMEOUT + 4


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    started = start_stack(
        tmp_path_factory.mktemp("neighbours"),
        public_args=(f"--downstream_timeout={DOWNSTREAM_TIMEOUT}",
                     "--downstream_connect_timeout=0.5"))
    try:
        status, body = http("POST", started.public.url + "/public-api/users", {"name": "Ada"})
        assert status == 201, body
        user_id = body["user"]["id"]
        status, body = http("POST", started.public.url + "/public-api/listings",
                            {"user_id": user_id, "listing_type": "rent", "price": 100})
        assert status == 201, body
        yield started
    finally:
        started.stop()


def endpoints(stack: Stack) -> dict[str, tuple[str, str, Any]]:
    """Every public endpoint, with input that reaches the services."""
    base = stack.public.url
    return {
        "list": ("GET", base + "/public-api/listings", None),
        "list by user": ("GET", base + "/public-api/listings?user_id=1", None),
        "create user": ("POST", base + "/public-api/users", {"name": "Bob"}),
        "create listing": ("POST", base + "/public-api/listings",
                           {"user_id": 1, "listing_type": "sale", "price": 5}),
        "ready": ("GET", base + "/ready", None),
        "ping": ("GET", base + "/ping", None),
    }


def call_all(stack: Stack) -> dict[str, tuple[int, Any]]:
    """Call every endpoint at once; each must answer before CLIENT_TIMEOUT."""
    calls = endpoints(stack)
    with ThreadPoolExecutor(len(calls)) as pool:
        futures = {name: pool.submit(http, method, url, body, timeout=CLIENT_TIMEOUT)
                   for name, (method, url, body) in calls.items()}
        return {name: future.result() for name, future in futures.items()}


# Which endpoints need which service (ready needs both; ping needs none).
USES = {
    "user": {"list", "list by user", "create user", "create listing"},
    "listing": {"list", "list by user", "create listing"},
}
HEALTHY = {"list": 200, "list by user": 200, "create user": 201, "create listing": 201,
           "ready": 200, "ping": 200}


def assert_answers(answers: dict[str, tuple[int, Any]], name: str, failed: int) -> None:
    """Endpoints using service `name` fail with `failed` naming it; the others still work."""
    for endpoint, (status, body) in answers.items():
        if endpoint in USES[name]:
            assert (status, body["result"]) == (failed, False), (endpoint, body)
            assert any(error.startswith(f"{name} service") for error in body["errors"]), body
        elif endpoint == "ready":
            assert status == 503 and body["errors"], (endpoint, body)
        else:
            assert status == HEALTHY[endpoint], (endpoint, body)


def assert_healthy(answers: dict[str, tuple[int, Any]]) -> None:
    assert {endpoint: status for endpoint, (status, _) in answers.items()} == HEALTHY, answers
    listings = answers["list"][1]["listings"]
    assert listings and all(listing["user"] is not None for listing in listings), listings


def service_named(stack: Stack, name: str) -> Service:
    return stack.user if name == "user" else stack.listing


@pytest.mark.parametrize("name", ["user", "listing"])
def test_a_stopped_service_gives_503_and_the_api_recovers_when_it_is_back(
        stack: Stack, name: str) -> None:
    assert_healthy(call_all(stack))
    service = service_named(stack, name)
    service.stop(signal.SIGKILL)
    try:
        answers = call_all(stack)
        assert_answers(answers, name, 503)
        some_endpoint = next(iter(USES[name]))
        assert answers[some_endpoint][1]["errors"] == [f"{name} service cannot be reached"]
    finally:
        service.start()  # same port, same database
    assert_healthy(call_all(stack))


@pytest.mark.parametrize("name", ["user", "listing"])
def test_a_frozen_service_gives_504_in_time_and_the_api_recovers_when_it_thaws(
        stack: Stack, name: str) -> None:
    service = service_named(stack, name)
    service.freeze()
    try:
        answers = call_all(stack)
    finally:
        service.thaw()
    assert_answers(answers, name, 504)
    some_endpoint = next(iter(USES[name]))
    assert answers[some_endpoint][1]["errors"] == [f"{name} service did not answer in time"]
    assert_healthy(call_all(stack))
