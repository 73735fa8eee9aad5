"""The bench's floor page (bench/floor.py) answers what the real page answers, in its shape.

The floor is only a fair reference if it does a page's work: two calls through the project's
downstream client, the users stitched in place of user_id, in the contract's shape.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from bench.floor import LISTINGS, USERS
from bench.run import start_floor
from tests.support.checks import assert_public_listing
from harness.processes import Service, http


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
    for listing, source in zip(body["listings"], served):
        assert_public_listing(listing)
        assert listing["id"] == source["id"]
        assert listing["user"] == users[source["user_id"]]


def test_the_floor_s_data_processes_answer_a_page_of_listings_and_its_users(
        floor: list[Service]) -> None:
    for data in floor[:2]:
        assert http("GET", data.url + "/listings?page_size=10")[1] == orjson.loads(LISTINGS)
        assert http("GET", data.url + "/users?ids=1,2,3")[1] == orjson.loads(USERS)
