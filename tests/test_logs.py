"""Log lines written in batches keep their request id, their order, and arrive in time."""
from __future__ import annotations

import asyncio
import io
import logging
import threading
from collections.abc import Iterator

import pytest

from common.logs import BatchingHandler, _RequestIdFilter, request_id_var


class WriteCounter(io.StringIO):
    """A stream that counts the write() calls it gets: each is a syscall on a real pipe."""

    writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


Batched = tuple[logging.Logger, WriteCounter]  # the logger and what its handler writes into


@pytest.fixture
def batched() -> Iterator[Batched]:
    out = WriteCounter()
    handler = BatchingHandler(out, delay=0.05)
    handler.setFormatter(logging.Formatter("%(request_id)s %(levelname)s %(message)s"))
    handler.addFilter(_RequestIdFilter("test"))
    logger = logging.getLogger("test.batching")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    yield logger, out
    logger.removeHandler(handler)
    handler.close()


@pytest.mark.gen_test
async def test_lines_wait_for_the_delay_and_keep_their_request_ids(batched: Batched) -> None:
    logger, out = batched
    request_id_var.set("r1")
    logger.info("one")
    request_id_var.set("r2")
    logger.info("two")
    assert out.getvalue() == ""  # nothing yielded to the loop yet: still in the batch
    await asyncio.sleep(0.3)
    assert out.getvalue() == "r1 INFO one\nr2 INFO two\n"
    assert out.writes == 1  # the whole batch in one write


@pytest.mark.gen_test
async def test_a_full_batch_is_written_at_once_in_one_write(batched: Batched) -> None:
    logger, out = batched
    for n in range(64):
        logger.info("line %d", n)
    assert out.writes == 1
    assert out.getvalue().splitlines() == [f"- INFO line {n}" for n in range(64)]


@pytest.mark.gen_test
async def test_a_warning_writes_the_batch_at_once(batched: Batched) -> None:
    logger, out = batched
    request_id_var.set("r3")
    logger.info("before")
    logger.warning("trouble")
    assert out.getvalue() == "r3 INFO before\nr3 WARNING trouble\n"


def test_a_line_logged_off_the_event_loop_is_written_at_once(batched: Batched) -> None:
    logger, out = batched
    thread = threading.Thread(target=logger.info, args=("from a thread",))
    thread.start()
    thread.join()
    assert out.getvalue() == "- INFO from a thread\n"


def test_a_batch_left_on_a_closed_loop_is_written_with_the_next_line(batched: Batched) -> None:
    logger, out = batched

    async def log_and_leave() -> None:
        logger.info("left behind")

    asyncio.run(log_and_leave())  # its loop closes before the delay is over
    assert out.getvalue() == ""
    asyncio.run(log_and_leave())
    assert out.getvalue() == "- INFO left behind\n- INFO left behind\n"
