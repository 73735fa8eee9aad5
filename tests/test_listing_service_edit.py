"""The listing service's one-listing endpoints: GET, PATCH and DELETE /listings/{id}."""
from __future__ import annotations

import pytest

from common.validation import MAX_INT64
from tests.support.apps import Served
from tests.support.data import create_listing
from tests.support.http import call

KEYS = ["id", "user_id", "listing_type", "price", "created_at", "updated_at"]


@pytest.mark.gen_test
async def test_get_answers_the_listing_in_the_contract_shape(listing_svc: Served) -> None:
    created = await create_listing(listing_svc, 3, "sale", 250000)
    reply = await call("GET", f"{listing_svc.url}/listings/{created['id']}")
    assert reply.status == 200
    assert list(reply.body) == ["result", "listing"]
    assert reply.body["result"] is True
    assert list(reply.body["listing"]) == KEYS
    assert reply.body["listing"] == created
    assert reply.body["listing"]["user_id"] == 3 and reply.body["listing"]["price"] == 250000


@pytest.mark.gen_test
async def test_get_unknown_or_malformed_id(listing_svc: Served) -> None:
    missing = await call("GET", f"{listing_svc.url}/listings/999")
    assert (missing.status, missing.body) == (
        404, {"result": False, "errors": ["listing 999 does not exist"]})
    for bad in ("abc", "0", "-1", "1.5", "99999999999999999999"):
        reply = await call("GET", f"{listing_svc.url}/listings/{bad}")
        assert reply.status == 400, bad
        assert reply.body["errors"][0].startswith("id: "), reply.body


@pytest.mark.gen_test
async def test_ping_route_is_not_taken_for_an_id(listing_svc: Served) -> None:
    reply = await call("GET", f"{listing_svc.url}/listings/ping")
    assert (reply.status, reply.body) == (200, {"result": True})


@pytest.mark.gen_test
async def test_patch_changes_the_fields_given_and_bumps_updated_at(listing_svc: Served) -> None:
    created = await create_listing(listing_svc)
    url = f"{listing_svc.url}/listings/{created['id']}"

    price_only = await call("PATCH", url, form={"price": "7000"})
    assert price_only.status == 200, price_only.body
    assert list(price_only.body) == ["result", "listing"]
    listing = price_only.body["listing"]
    assert list(listing) == KEYS
    assert (listing["price"], listing["listing_type"], listing["user_id"]) == (7000, "rent", 1)
    assert listing["created_at"] == created["created_at"]
    assert listing["updated_at"] > created["updated_at"]

    both_fields = await call("PATCH", url, form={"listing_type": "sale", "price": "8000"})
    both = both_fields.body["listing"]
    assert (both["listing_type"], both["price"]) == ("sale", 8000)
    assert both["updated_at"] > listing["updated_at"]
    assert both["created_at"] == created["created_at"]
    assert (await call("GET", url)).body["listing"] == both


@pytest.mark.gen_test
async def test_patch_is_validated_like_a_create(listing_svc: Served) -> None:
    created = await create_listing(listing_svc)
    url = f"{listing_svc.url}/listings/{created['id']}"
    cases = {
        (): ["body: must change at least one of listing_type, price"],
        (("price", "0"),): [f"price: must be an integer from 1 to {MAX_INT64}"],
        (("price", "-5"),): [f"price: must be an integer from 1 to {MAX_INT64}"],
        (("price", "12.5"),): [f"price: must be an integer from 1 to {MAX_INT64}"],
        (("listing_type", "lease"),): ["listing_type: must be 'rent' or 'sale'"],
        (("user_id", "2"),): ["user_id: is not a known field"],
        (("price", "10"), ("colour", "red")): ["colour: is not a known field"],
    }
    for fields, errors in cases.items():
        reply = await call("PATCH", url, form=dict(fields))
        assert (reply.status, reply.body) == (400, {"result": False, "errors": errors}), fields
    assert (await call("GET", url)).body["listing"] == created  # nothing was changed


@pytest.mark.gen_test
async def test_patch_unknown_id_is_404_and_needs_a_form(listing_svc: Served) -> None:
    missing = await call("PATCH", f"{listing_svc.url}/listings/4242", form={"price": "10"})
    assert (missing.status, missing.body["errors"]) == (404, ["listing 4242 does not exist"])
    as_json = await call("PATCH", f"{listing_svc.url}/listings/1", json_body={"price": 10})
    assert as_json.status == 415


@pytest.mark.gen_test
async def test_delete_answers_204_and_the_listing_is_gone(listing_svc: Served) -> None:
    kept = await create_listing(listing_svc, price=100)
    doomed = await create_listing(listing_svc, price=200)
    url = f"{listing_svc.url}/listings/{doomed['id']}"

    reply = await call("DELETE", url)
    assert reply.status == 204
    assert "Content-Type" not in reply.headers
    assert (await call("GET", url)).status == 404
    listed = (await call("GET", f"{listing_svc.url}/listings")).body["listings"]
    assert [listing["id"] for listing in listed] == [kept["id"]]

    again = await call("DELETE", url)
    assert (again.status, again.body["errors"]) == (404, [f"listing {doomed['id']} does not exist"])
    bad = await call("DELETE", f"{listing_svc.url}/listings/x")
    assert bad.status == 400 and bad.body["errors"][0].startswith("id: ")


@pytest.mark.gen_test
async def test_methods_not_allowed_on_one_listing(listing_svc: Served) -> None:
    reply = await call("POST", f"{listing_svc.url}/listings/1", form={"price": "1"})
    assert reply.status == 405
    assert reply.headers["Allow"] == "GET, HEAD, DELETE, PATCH"
