"""Property-based tests of the three running services against their own OpenAPI documents.

Schemathesis reads each document from the service itself, generates requests (valid ones and
invalid ones) for every operation, and checks each answer: never a 5xx, and always what the
document says it is. The services are real processes, started as `make run` starts them.
"""
from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from common.openapi import load_document
from harness.processes import Trio, http, start_trio

# Every check schemathesis has but one: no 5xx, status codes, Content-Types, headers and bodies
# as documented, invalid input refused. Left out: that every schema-valid request succeeds.
# Some rightly fail on rules a schema cannot state (a user_id of no user, min_price above
# max_price) or that the contract sets stricter (12.0 is an integer to JSON Schema, not to us).
EXCLUDED: list[schemathesis.CheckFunction] = [positive_data_acceptance]
# Per operation; ~20 operations in all keep the whole run well under a minute.
MAX_EXAMPLES = 25


@pytest.fixture(scope="module")
def trio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trio]:
    trio = start_trio(Path(tmp_path_factory.mktemp("schemathesis")))
    # A few rows, so that generated ids sometimes find something to read, change or delete.
    for n in range(1, 4):
        http("POST", f"{trio.public_url}/public-api/users", {"name": f"User {n}"})
        http("POST", f"{trio.public_url}/public-api/listings",
             {"user_id": n, "listing_type": "rent", "price": 1000 * n})
    yield trio
    trio.stop()


# No example database: it would be written into the working tree, outside any temp dir.
BOUNDED = settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

# The documents come from the repository (test_openapi checks the services serve the same);
# pytest-9 breaks schemathesis's fixture-based loader, so the base URL is given per call.
# Copies: schemathesis may rewrite what it is given, and the services' own copy is cached.
listing_schema = schemathesis.openapi.from_dict(copy.deepcopy(load_document("listing")))
user_schema = schemathesis.openapi.from_dict(copy.deepcopy(load_document("user")))
public_schema = schemathesis.openapi.from_dict(copy.deepcopy(load_document("public")))


@listing_schema.parametrize()
@BOUNDED
def test_listing_service(case: schemathesis.Case, trio: Trio) -> None:
    case.call_and_validate(base_url=trio.listing_url, excluded_checks=EXCLUDED)


@user_schema.parametrize()
@BOUNDED
def test_user_service(case: schemathesis.Case, trio: Trio) -> None:
    case.call_and_validate(base_url=trio.user_url, excluded_checks=EXCLUDED)


@public_schema.parametrize()
@BOUNDED
def test_public_api(case: schemathesis.Case, trio: Trio) -> None:
    case.call_and_validate(base_url=trio.public_url, excluded_checks=EXCLUDED)
