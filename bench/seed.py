"""Seeding the two databases in bulk, through each service's own store, before it starts.

The data is shaped like a portal's: users joined over the year before the first listing,
listings created over the last year in time order (ids grow with `created_at`, as they do
when created through the API), owners drawn at random, rent and sale mixed, varied prices.
"""
from __future__ import annotations

import asyncio
import random
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from listing_service import ListingStore
from user_service import UserStore

YEAR_US = 365 * 24 * 3600 * 1_000_000
CHUNK = 50_000
FIRST_NAMES = ("Suresh", "Mei", "Ana", "Tomasz", "Amara", "Lars", "Priya", "Kwame", "Yuki", "Zoë")
LAST_NAMES = ("Subramaniam", "Tan", "García", "Nowak", "Okafor", "Berg", "Iyer", "Mensah")


class Progress:
    """A one-line progress bar on stderr."""

    def __init__(self, what: str, total: int) -> None:
        self.what, self.total, self.start = what, total, time.monotonic()

    def show(self, done: int) -> None:
        filled = round(30 * done / self.total)
        sys.stderr.write(f"\r  {self.what:<9} [{'#' * filled}{'.' * (30 - filled)}] "
                         f"{done:>9,}/{self.total:,}  {time.monotonic() - self.start:5.1f}s")
        if done >= self.total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def _listing_rows(count: int, users: int, now_us: int, rng: random.Random
                  ) -> Iterator[tuple[int, str, int, int]]:
    step = YEAR_US // max(count, 1)
    stamp = now_us - YEAR_US
    for _ in range(count):
        stamp += rng.randint(1, 2 * step)  # increasing, with uneven gaps
        yield rng.randint(1, users), "rent" if rng.random() < 0.6 else "sale", \
            rng.randint(300, 20_000) * 100, stamp


async def seed_users(path: Path, count: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    start = time.time_ns() // 1000 - 2 * YEAR_US
    rows = [(f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}", start + i * (YEAR_US // count))
            for i in range(count)]
    store = await UserStore.open(str(path))
    try:
        progress = Progress("users", count)
        await store.bulk_create(rows)
        progress.show(count)
    finally:
        await store.close()


async def seed_listings(path: Path, count: int, users: int, seed: int = 2) -> None:
    rng = random.Random(seed)
    rows = _listing_rows(count, users, time.time_ns() // 1000 - 60_000_000, rng)
    store = await ListingStore.open(str(path))
    try:
        progress = Progress("listings", count)
        done = 0
        while done < count:
            size = min(CHUNK, count - done)
            await store.bulk_create(next(rows) for _ in range(size))
            done += size
            progress.show(done)
    finally:
        await store.close()


def seed(folder: Path, users: int, listings: int) -> None:
    """Create `users.db` and `listings.db` in `folder`, as the Procfile's services expect them."""
    asyncio.run(seed_users(folder / "users.db", users))
    asyncio.run(seed_listings(folder / "listings.db", listings, users))


async def _count(path: Path) -> int:
    store = await ListingStore.open(str(path))
    try:
        return await store.count()
    finally:
        await store.close()


def count_listings(path: Path) -> int:
    """The rows in a (possibly live) listings database, for the lost-create check."""
    return asyncio.run(_count(path))
