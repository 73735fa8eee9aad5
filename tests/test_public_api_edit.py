"""The public API's one-listing and one-user endpoints, end to end through the real services."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from tornado.ioloop import IOLoop

from common.validation import MAX_INT64, MAX_NAME_LENGTH
from tests.support.apps import Served, make_public, stop_app
from tests.support.checks import LISTING_KEYS, PUBLIC_LISTING_KEYS, USER_KEYS
from tests.support.data import PASSWORD, create_listing, create_user, log_in
from tests.support.fake import Answer
from tests.support.http import call


async def user_and_listing(public: Served, name: str = "Ann",
                           price: int = 6000) -> tuple[dict, dict]:
    """A user with a password (changing what is theirs takes their token) and a listing."""
    user = await create_user(public, name, PASSWORD)
    return user, await create_listing(public, user["id"], price=price)


@pytest.mark.gen_test
async def test_get_listing_stitches_its_user(public: Served) -> None:
    user, listing = await user_and_listing(public)
    reply = await call("GET", f"{public.url}/public-api/listings/{listing['id']}")
    assert reply.status == 200
    assert list(reply.body) == ["listing"]
    got = reply.body["listing"]
    assert list(got) == PUBLIC_LISTING_KEYS
    assert got["user"] == user
    assert ({k: got[k] for k in PUBLIC_LISTING_KEYS[:-1]}
            == {k: listing[k] for k in PUBLIC_LISTING_KEYS[:-1]})
    listed = (await call("GET", f"{public.url}/public-api/listings")).body["listings"]
    assert listed == [got]  # the same object as in the list


@pytest.mark.gen_test
async def test_get_listing_of_a_missing_user_has_user_null(listing_svc: Served,
                                                            public: Served) -> None:
    made = await call("POST", f"{listing_svc.url}/listings",
                      form={"user_id": 99, "listing_type": "sale", "price": 5})
    reply = await call("GET", f"{public.url}/public-api/listings/{made.body['listing']['id']}")
    assert reply.status == 200 and reply.body["listing"]["user"] is None


@pytest.mark.gen_test
async def test_get_unknown_listing_and_user_are_404(public: Served) -> None:
    listing = await call("GET", f"{public.url}/public-api/listings/31")
    assert (listing.status, listing.body) == (
        404, {"result": False, "errors": ["listing 31 does not exist"]})
    user = await call("GET", f"{public.url}/public-api/users/32")
    assert (user.status, user.body) == (
        404, {"result": False, "errors": ["user 32 does not exist"]})
    bad = await call("GET", f"{public.url}/public-api/users/zero")
    assert bad.status == 400 and bad.body["errors"][0].startswith("id: ")


@pytest.mark.gen_test
async def test_patch_listing(public: Served) -> None:
    user, listing = await user_and_listing(public)
    url = f"{public.url}/public-api/listings/{listing['id']}"
    reply = await call("PATCH", url, json_body={"listing_type": "sale", "price": 7500},
                       headers=await log_in(public, user["id"]))
    assert reply.status == 200, reply.body
    assert list(reply.body) == ["listing"]
    changed = reply.body["listing"]
    assert list(changed) == LISTING_KEYS
    assert (changed["listing_type"], changed["price"], changed["user_id"]) == (
        "sale", 7500, user["id"])
    assert changed["created_at"] == listing["created_at"]
    assert changed["updated_at"] > listing["updated_at"]
    got = (await call("GET", url)).body["listing"]
    assert (got["price"], got["updated_at"]) == (7500, changed["updated_at"])


@pytest.mark.gen_test
async def test_patch_listing_is_validated_here_as_json(listing_svc: Served, public: Served) -> None:
    user, listing = await user_and_listing(public)
    url = f"{public.url}/public-api/listings/{listing['id']}"
    auth = await log_in(public, user["id"])
    calls_before = len(listing_svc.requests)
    cases = [
        ({}, ["body: must change at least one of listing_type, price"]),
        ({"price": "7000"}, [f"price: must be a JSON integer from 1 to {MAX_INT64}, not a string"]),
        ({"price": True}, [f"price: must be an integer from 1 to {MAX_INT64}"]),
        ({"price": 0}, [f"price: must be an integer from 1 to {MAX_INT64}"]),
        ({"listing_type": "swap"}, ["listing_type: must be 'rent' or 'sale'"]),
        ({"user_id": 2}, ["user_id: is not a known field"]),
        ({"price": 10, "colour": "red"}, ["colour: is not a known field"]),
    ]
    for body, errors in cases:
        reply = await call("PATCH", url, json_body=body, headers=auth)
        assert (reply.status, reply.body) == (400, {"result": False, "errors": errors}), body
    assert len(listing_svc.requests) == calls_before  # refused before any downstream call
    not_object = await call("PATCH", url, json_body=[1], headers=auth)
    assert (not_object.status, not_object.body["errors"]) == (400, ["body: must be a JSON object"])
    as_form = await call("PATCH", url, form={"price": "1"}, headers=auth)
    assert as_form.status == 415


@pytest.mark.gen_test
async def test_patch_unknown_listing_passes_the_404_on(public: Served) -> None:
    user, _ = await user_and_listing(public)
    reply = await call("PATCH", f"{public.url}/public-api/listings/404", json_body={"price": 1},
                       headers=await log_in(public, user["id"]))
    assert (reply.status, reply.body) == (
        404, {"result": False, "errors": ["listing 404 does not exist"]})


@pytest.mark.gen_test
async def test_delete_listing(public: Served) -> None:
    _, kept = await user_and_listing(public, price=1)
    bo, doomed = await user_and_listing(public, "Bo", price=2)
    url = f"{public.url}/public-api/listings/{doomed['id']}"
    auth = await log_in(public, bo["id"])
    reply = await call("DELETE", url, headers=auth)
    assert reply.status == 204
    assert "Content-Type" not in reply.headers
    assert (await call("GET", url)).status == 404
    listed = (await call("GET", f"{public.url}/public-api/listings")).body["listings"]
    assert [row["id"] for row in listed] == [kept["id"]]
    again = await call("DELETE", url, headers=auth)
    assert (again.status, again.body["errors"]) == (404, [f"listing {doomed['id']} does not exist"])


@pytest.mark.gen_test
async def test_get_and_patch_user(public: Served) -> None:
    user, _ = await user_and_listing(public, "Lorel Ipsum")
    url = f"{public.url}/public-api/users/{user['id']}"
    got = await call("GET", url)
    assert (got.status, got.body) == (200, {"user": user})
    assert list(got.body["user"]) == USER_KEYS
    reply = await call("PATCH", url, json_body={"name": "Lorem Ipsum"},
                       headers=await log_in(public, user["id"]))
    assert reply.status == 200 and list(reply.body) == ["user"]
    renamed = reply.body["user"]
    assert (renamed["name"], renamed["created_at"]) == ("Lorem Ipsum", user["created_at"])
    assert renamed["updated_at"] > user["updated_at"]
    stitched = (await call("GET", f"{public.url}/public-api/listings")).body["listings"][0]["user"]
    assert stitched == renamed


@pytest.mark.gen_test
async def test_patch_user_errors(public: Served) -> None:
    user, _ = await user_and_listing(public)
    url = f"{public.url}/public-api/users/{user['id']}"
    auth = await log_in(public, user["id"])
    cases = [
        ({}, ["body: must change at least one of name, password"]),
        ({"name": 5}, ["name: must be a string"]),
        ({"name": ""}, [f"name: must be 1 to {MAX_NAME_LENGTH} characters after trimming"]),
        ({"name": "Ann", "email": "a@b"}, ["email: is not a known field"]),
    ]
    for body, errors in cases:
        reply = await call("PATCH", url, json_body=body, headers=auth)
        assert (reply.status, reply.body) == (400, {"result": False, "errors": errors}), body
    # Only the user themself may change a user: another id is a 403, whether it exists or not.
    missing = await call("PATCH", f"{public.url}/public-api/users/999", json_body={"name": "X"},
                         headers=auth)
    assert missing.status == 403, missing.body


@pytest.fixture
def broken(io_loop: IOLoop, user_svc: Served, make_fake: Any) -> Iterator[tuple[Served, Served]]:
    """Public APIs in front of a broken listing service, and of one that is not there.

    The broken one answers DELETE with 200 and a body, PATCH with 500, and GET with listing 1
    of user 1 (the owner the public API checks first)."""
    listing = {"id": 1, "user_id": 1, "listing_type": "rent", "price": 1, "created_at": 1,
               "updated_at": 1}
    answers = {"GET": Answer(200, {"result": True, "listing": listing}),
               "DELETE": Answer(200, {"result": True})}
    fake = make_fake()
    fake.script(lambda request: answers.get(
        request.method, Answer(500, {"result": False, "errors": ["boom"]})))
    served = (make_public(io_loop, fake.url, user_svc.url),
              make_public(io_loop, make_fake(connects="refused").url, user_svc.url))
    yield served
    for app in served:
        stop_app(io_loop, app)


@pytest.mark.gen_test
async def test_downstream_faults_on_delete_and_patch(broken: tuple[Served, Served]) -> None:
    public, gone = broken
    user = (await call("POST", f"{public.url}/public-api/users",
                       json_body={"name": "Ann", "password": PASSWORD})).body["user"]
    assert user["id"] == 1
    auth, gone_auth = await log_in(public, user["id"]), await log_in(gone, user["id"])
    deleted = await call("DELETE", f"{public.url}/public-api/listings/1", headers=auth)
    assert (deleted.status, deleted.body["errors"]) == (
        502, ["listing service answered 200 where 204 was due"])
    patched = await call("PATCH", f"{public.url}/public-api/listings/1", json_body={"price": 5},
                         headers=auth)
    assert (patched.status, patched.body["errors"]) == (502, ["listing service answered 500"])
    unreachable = await call("DELETE", f"{gone.url}/public-api/listings/1", headers=gone_auth)
    assert (unreachable.status, unreachable.body["errors"]) == (
        503, ["listing service cannot be reached"])
