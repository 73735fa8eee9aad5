"""Bursts through the public API wait for a busy or briefly paused service instead of failing.

Real processes. A burst of any size the public API accepts must be answered once the
service is back, within the downstream timeout: no 504 because SYNs overflowed a listen
backlog, no 502 because a POST was written onto a connection the service was closing.
"""
from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from harness.processes import Stack, http, start_stack


def burst(count: int, request: Callable[[int], int]) -> Counter[int]:
    """`count` requests at once, each from its own thread; the statuses they got."""
    with ThreadPoolExecutor(count) as pool:
        return Counter(pool.map(request, range(count)))


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    started = start_stack(tmp_path, "--log_batch_delay=0")
    yield started
    started.stop()


@pytest.mark.parametrize("what", ["users", "listings"])
def test_a_burst_of_200_creates_waits_for_a_service_paused_half_a_second(
        stack: Stack, what: str) -> None:
    user_id = http("POST", stack.public.url + "/public-api/users", {"name": "Owner"})[1][
        "user"]["id"]
    bodies = {"users": {"name": "Burst"},
              "listings": {"user_id": user_id, "listing_type": "rent", "price": 100}}
    paused = stack.user if what == "users" else stack.listing
    paused.freeze()
    threading.Timer(0.5, paused.thaw).start()
    statuses = burst(200, lambda _: http("POST", f"{stack.public.url}/public-api/{what}",
                                         bodies[what], timeout=30)[0])
    assert statuses == Counter({201: 200}), (statuses, stack.public.output()[-2000:])


def test_a_burst_of_500_deep_page_reads_is_answered_in_full(stack: Stack) -> None:
    statuses = burst(500, lambda i: http(
        "GET", f"{stack.public.url}/public-api/listings?page_num={10**6 + i}&page_size=100",
        timeout=30)[0])
    assert statuses == Counter({200: 500}), (statuses, stack.public.output()[-2000:])


def test_posts_sent_just_before_the_services_idle_deadline_are_never_lost(
        tmp_path: Path) -> None:
    # The services drop a connection idle for 1 s; the public API must stop using one before
    # then, as the services announce (Keep-Alive: timeout=1), for a POST is never resent.
    stack = start_stack(tmp_path, "--log_batch_delay=0", "--idle_connection_timeout=1")
    try:
        statuses: Counter[int] = Counter()
        waits = [0.96 + 0.005 * step for step in range(17)]  # across the 1 s deadline
        for wait in waits:
            # Warm the pool with many connections, then leave them idle for `wait` seconds.
            statuses += burst(60, lambda _: http("POST", stack.public.url + "/public-api/users",
                                                 {"name": "Warm"})[0])
            time.sleep(wait)
            statuses += burst(60, lambda _: http("POST", stack.public.url + "/public-api/users",
                                                 {"name": "Late"})[0])
        assert statuses == Counter({201: 120 * len(waits)}), (
            statuses, stack.public.output()[-2000:])
    finally:
        stack.stop()
