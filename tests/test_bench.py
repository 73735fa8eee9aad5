"""The bench: its floor page answers what the real page answers, and its instruction count
reads callgrind's totals.

The floor (bench/floor.py) is only a fair reference if it does a page's work: two calls through
the project's downstream client, the users stitched in place of user_id, in the contract's shape.
The instruction-count bench (bench/instructions.py) reads callgrind's totals, whichever line
carries them.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from bench.floor import LISTINGS, USERS
from bench.instructions import callgrind_total
from bench.run import start_floor
from harness.processes import Service, http
from tests.support.checks import assert_public_listing


@pytest.fixture(scope="module")
def floor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Service]]:
    started = start_floor(tmp_path_factory.mktemp("floor"))
    yield started
    for service in started:
        service.stop()


def test_the_floor_page_stitches_each_listing_s_user_in_place_of_user_id(
        floor: list[Service]) -> None:
    status, body = http("GET", floor[-1].url + "/public-api/listings?page_size=10")
    assert status == 200, body
    assert body["result"] is True
    served = orjson.loads(LISTINGS)["listings"]
    users = {user["id"]: user for user in orjson.loads(USERS)["users"]}
    assert len(body["listings"]) == len(served) == 10
    for listing, source in zip(body["listings"], served, strict=True):
        assert_public_listing(listing)
        assert listing["id"] == source["id"]
        assert listing["user"] == users[source["user_id"]]


def test_the_floor_s_data_processes_answer_a_page_of_listings_and_its_users(
        floor: list[Service]) -> None:
    for data in floor[:2]:
        assert http("GET", data.url + "/listings?page_size=10")[1] == orjson.loads(LISTINGS)
        assert http("GET", data.url + "/users?ids=1,2,3")[1] == orjson.loads(USERS)


# --- the instruction count ----------------------------------------------------------------

@pytest.mark.parametrize("line", ["summary: 123456789", "totals: 123456789 42"])
def test_callgrind_total_reads_the_first_count(tmp_path: Path, line: str) -> None:
    dump = tmp_path / "callgrind.out.1"
    dump.write_text("version: 1\ncreator: callgrind-3.19.0\nevents: Ir\n\n"
                    f"fn=(1) main\n5 10\n{line}\n")
    assert callgrind_total(dump) == 123456789


def test_callgrind_total_refuses_a_file_without_totals(tmp_path: Path) -> None:
    dump = tmp_path / "callgrind.out.2"
    dump.write_text("version: 1\nevents: Ir\n")
    with pytest.raises(ValueError):
        callgrind_total(dump)
