"""Price points survive the listing service being killed outright (SIGKILL) mid-burst (#16).

Creates and PATCHes run from many threads through the public API; the listing service is
killed while they run, then restarted on the same file. Every create and price change that
was answered 2xx has its point; no point exists without its listing; and each listing's
newest point is its current price, which would break if a change could commit without its
point (or the reverse): they commit in one statement.
"""
from __future__ import annotations

import itertools
import signal
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from harness.processes import Stack, http, start_stack

WORKERS = 16
KILL_AFTER = 150  # acknowledged writes before the kill


class Burst:
    """Workers writing until stopped; every attempt and its answer is kept."""

    def __init__(self, stack: Stack, listing_ids: list[int], user_id: int) -> None:
        self.url = stack.public.url + "/public-api/listings"
        self.listing_ids, self.user_id = listing_ids, user_id
        self.prices = itertools.count(10_000)  # every price sent is new: a point names its PATCH
        self.lock = threading.Lock()
        self.acknowledged = 0
        self.enough = threading.Event()
        self.stopping = threading.Event()
        self.answers: list[tuple[str, int, int, tuple[int, Any]]] = []

    def work(self, worker: int) -> None:
        for n in itertools.count():
            if self.stopping.is_set():
                return
            with self.lock:
                price = next(self.prices)
            if n % 5 == 4:
                kind, target = "create", 0
                answer = http("POST", self.url, {"user_id": self.user_id,
                                                 "listing_type": "rent", "price": price})
            else:
                kind, target = "patch", self.listing_ids[(worker + n) % len(self.listing_ids)]
                answer = http("PATCH", f"{self.url}/{target}", {"price": price})
            with self.lock:
                self.answers.append((kind, target, price, answer))
                if answer[0] < 300:
                    self.acknowledged += 1
                    if self.acknowledged >= KILL_AFTER:
                        self.enough.set()


def test_acknowledged_price_points_survive_sigkill_mid_burst(tmp_path: Path) -> None:
    stack = start_stack(tmp_path)
    try:
        status, body = http("POST", stack.public.url + "/public-api/users", {"name": "Ann"})
        assert status == 201, body
        user_id = body["user"]["id"]
        listing_ids = []
        for n in range(8):
            status, body = http("POST", stack.public.url + "/public-api/listings",
                                {"user_id": user_id, "listing_type": "sale", "price": 1 + n})
            assert status == 201, body
            listing_ids.append(body["listing"]["id"])
        burst = Burst(stack, listing_ids, user_id)
        with ThreadPoolExecutor(WORKERS) as pool:
            running = [pool.submit(burst.work, worker) for worker in range(WORKERS)]
            assert burst.enough.wait(60), "the burst did not get going"
            assert stack.listing.stop(signal.SIGKILL) == -signal.SIGKILL
            # Let the workers see the dead service answer 503 a while, then stop them.
            threading.Event().wait(0.3)
            burst.stopping.set()
            for future in running:
                future.result()
        failed = [a for a in burst.answers if a[3][0] >= 300]
        assert failed, "the kill came after the burst: it proves nothing"
        stack.listing.start()  # same port, same file

        points = history_by_listing(tmp_path / "listings.db")
        current = current_prices(tmp_path / "listings.db")
        assert set(points) == set(current), "a point without its listing, or the reverse"
        for listing_id, price in current.items():
            assert points[listing_id][-1][0] == price, (listing_id, points[listing_id], price)
        sent = {price for _, _, price, _ in burst.answers}
        for kind, _target, price, (status, body) in burst.answers:
            if status >= 300:
                continue
            listing = body["listing"]
            assert (price, listing["updated_at"]) in points[listing["id"]], (kind, body)
            if kind == "create":
                assert points[listing["id"]][0] == (price, listing["created_at"])
        for listing_id, history in points.items():
            later = [price for price, _ in history[1:]]
            assert all(price in sent for price in later), (listing_id, history)
            assert len(set(later)) == len(later), (listing_id, history)  # one point each
        # The restarted service answers the same from its file.
        first = listing_ids[0]
        status, body = http("GET", f"{stack.listing.url}/listings/{first}/prices")
        assert status == 200
        assert [(p["price"], p["changed_at"]) for p in body["prices"]] == points[first]
    finally:
        stack.stop()


def history_by_listing(path: Path) -> dict[int, list[tuple[int, int]]]:
    db = sqlite3.connect(path)
    try:
        rows = db.execute("SELECT listing_id, price, changed_at FROM price_history"
                          " ORDER BY listing_id, changed_at").fetchall()
    finally:
        db.close()
    points: dict[int, list[tuple[int, int]]] = {}
    for listing_id, price, changed_at in rows:
        points.setdefault(listing_id, []).append((price, changed_at))
    return points


def current_prices(path: Path) -> dict[int, int]:
    db = sqlite3.connect(path)
    try:
        return dict(db.execute("SELECT id, price FROM listings").fetchall())
    finally:
        db.close()
