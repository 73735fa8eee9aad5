"""Password hashes: argon2id through argon2-cffi, computed off the event loop.

A hash costs tens of milliseconds of CPU and ~19 MiB of memory, so it never runs on the
event loop: every hash and verification goes to a thread pool of its own (argon2-cffi
releases the GIL while it works), sized to the CPUs so that a burst of logins queues there
instead of taking `workers x memory_cost` of memory, and never takes the threads other work
uses. The hash is stored and compared, and never leaves the user service: no answer, error
or log line carries it (tests/test_accounts_user_service.py greps for it).
"""
from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# OWASP's first argon2id configuration (m=19 MiB, t=2, p=1): its Password Storage Cheat
# Sheet's minimum, ~20-40 ms per hash on a server core.
HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


class Passwords:
    """Hashes and verifies passwords in `workers` threads; one per service process."""

    def __init__(self, hasher: PasswordHasher = HASHER, workers: int | None = None) -> None:
        self.hasher = hasher
        self.pool = ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 4,
                                       thread_name_prefix="argon2")
        self._dummy: str | None = None

    async def hash(self, password: str) -> str:
        return await asyncio.get_running_loop().run_in_executor(
            self.pool, self.hasher.hash, password)

    async def verify(self, stored: str | None, password: str) -> bool:
        """Whether `password` matches `stored`. With no hash stored (no such user, or one
        without a password) a dummy hash is verified instead, so the answer takes as long
        and says nothing about which users exist or have a password."""
        if stored is None:
            if self._dummy is None:
                self._dummy = await self.hash(os.urandom(16).hex())
            await asyncio.get_running_loop().run_in_executor(
                self.pool, self._matches, self._dummy, password)
            return False
        return await asyncio.get_running_loop().run_in_executor(
            self.pool, self._matches, stored, password)

    def _matches(self, stored: str, password: str) -> bool:
        try:
            return self.hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
