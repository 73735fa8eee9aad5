"""Who may do what on the public API (issue #13), through the real apps in this process."""
from __future__ import annotations

import time
from collections.abc import Iterator

import jwt
import pytest
from tornado.ioloop import IOLoop

import public_api
from common.tokens import Tokens
from tests.support.apps import Served, make_public, stop_app
from tests.support.checks import USER_KEYS, assert_error
from tests.support.data import PASSWORD, create_user, log_in
from tests.support.http import Reply, call

SECRET = "accounts-test-secret-" + "z" * 40


def public_app(io_loop: IOLoop, listing_svc: Served, user_svc: Served,
               require_auth: bool = False) -> Served:
    auth = public_api.Auth(Tokens(SECRET, ttl=600), require_auth)
    return make_public(io_loop, listing_svc.url, user_svc.url, auth=auth)


@pytest.fixture
def api(io_loop: IOLoop, listing_svc: Served, user_svc: Served) -> Iterator[Served]:
    served = public_app(io_loop, listing_svc, user_svc)
    yield served
    stop_app(io_loop, served)


@pytest.fixture
def strict(io_loop: IOLoop, listing_svc: Served, user_svc: Served) -> Iterator[Served]:
    """The public API with --require_auth=true."""
    served = public_app(io_loop, listing_svc, user_svc, require_auth=True)
    yield served
    stop_app(io_loop, served)


async def listing_of(api: Served, user_id: int, price: int = 5000) -> dict:
    reply = await call("POST", f"{api.url}/public-api/listings",
                       json_body={"user_id": user_id, "listing_type": "rent", "price": price})
    assert reply.status == 201, reply.body
    return reply.body["listing"]


def bearer(claims: dict, key: str = SECRET, algorithm: str = "HS256") -> dict[str, str]:
    return {"Authorization": f"Bearer {jwt.encode(claims, key, algorithm=algorithm)}"}


async def price_of(api: Served, listing_id: int) -> int:
    reply = await call("GET", f"{api.url}/public-api/listings/{listing_id}")
    return reply.body["listing"]["price"]


def assert_401(reply: Reply, invalid_token: bool) -> None:
    assert_error(reply, 401, "Authorization:")
    challenge = reply.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer ")
    assert ('error="invalid_token"' in challenge) == invalid_token, challenge


# --- the issue's own examples ------------------------------------------------------------

@pytest.mark.gen_test
async def test_anonymous_patch_and_delete_of_a_listing_are_401(api: Served) -> None:
    ann = await create_user(api, "Ann", PASSWORD)
    listing = await listing_of(api, ann["id"])
    url = f"{api.url}/public-api/listings/{listing['id']}"
    assert_401(await call("PATCH", url, json_body={"price": 1}), invalid_token=False)
    assert_401(await call("DELETE", url), invalid_token=False)
    assert await price_of(api, listing["id"]) == 5000


@pytest.mark.gen_test
async def test_bearer_nonsense_is_not_ignored(api: Served) -> None:
    ann = await create_user(api, "Ann", PASSWORD)
    listing = await listing_of(api, ann["id"])
    url = f"{api.url}/public-api/listings/{listing['id']}"
    nonsense = {"Authorization": "Bearer nonsense"}
    assert_401(await call("PATCH", url, json_body={"price": 1}, headers=nonsense), True)
    assert_401(await call("DELETE", url, headers=nonsense), True)
    # Even where a token is optional, a bad one is refused rather than ignored.
    create = await call("POST", f"{api.url}/public-api/listings", headers=nonsense,
                        json_body={"user_id": ann["id"], "listing_type": "rent", "price": 1})
    assert_401(create, True)


@pytest.mark.gen_test
async def test_the_owner_changes_and_deletes_their_listing(api: Served) -> None:
    ann = await create_user(api, "Ann", PASSWORD)
    listing = await listing_of(api, ann["id"])
    url = f"{api.url}/public-api/listings/{listing['id']}"
    auth = await log_in(api, ann["id"])
    changed = await call("PATCH", url, json_body={"price": 6000}, headers=auth)
    assert changed.status == 200 and changed.body["listing"]["price"] == 6000
    assert (await call("DELETE", url, headers=auth)).status == 204
    assert (await call("GET", url)).status == 404


@pytest.mark.gen_test
async def test_another_users_token_is_403(api: Served) -> None:
    ann, bo = await create_user(api, "Ann", PASSWORD), await create_user(api, "Bo", PASSWORD)
    listing = await listing_of(api, ann["id"])
    url = f"{api.url}/public-api/listings/{listing['id']}"
    bos = await log_in(api, bo["id"])
    patched = await call("PATCH", url, json_body={"price": 1}, headers=bos)
    errors = assert_error(patched, 403, "Authorization:")
    assert f"listing {listing['id']}" in errors[0] and "owner" in errors[0]
    assert_error(await call("DELETE", url, headers=bos), 403, "Authorization:")
    assert await price_of(api, listing["id"]) == 5000


@pytest.mark.gen_test
async def test_tampered_signature_over_http_is_401(api: Served) -> None:
    ann, bo = await create_user(api, "Ann", PASSWORD), await create_user(api, "Bo", PASSWORD)
    listing = await listing_of(api, ann["id"])
    head, _, signature = (await log_in(api, bo["id"]))["Authorization"][7:].split(".")
    now = int(time.time())
    as_ann = jwt.encode({"sub": str(ann["id"]), "iat": now, "exp": now + 60}, "x" * 40)
    forged_body = as_ann.split(".")[1]
    reply = await call("PATCH", f"{api.url}/public-api/listings/{listing['id']}",
                       json_body={"price": 1},
                       headers={"Authorization": f"Bearer {head}.{forged_body}.{signature}"})
    assert_401(reply, invalid_token=True)
    assert await price_of(api, listing["id"]) == 5000


@pytest.mark.gen_test
async def test_alg_none_over_http_is_401(api: Served) -> None:
    ann = await create_user(api, "Ann", PASSWORD)
    listing = await listing_of(api, ann["id"])
    now = int(time.time())
    headers = bearer({"sub": str(ann["id"]), "iat": now, "exp": now + 60}, "", "none")
    reply = await call("DELETE", f"{api.url}/public-api/listings/{listing['id']}", headers=headers)
    assert_401(reply, invalid_token=True)
    assert await price_of(api, listing["id"]) == 5000


@pytest.mark.gen_test
async def test_expired_token_over_http_is_401(api: Served) -> None:
    ann = await create_user(api, "Ann", PASSWORD)
    listing = await listing_of(api, ann["id"])
    past = int(time.time()) - 3600
    headers = bearer({"sub": str(ann["id"]), "iat": past, "exp": past + 60})
    reply = await call("PATCH", f"{api.url}/public-api/listings/{listing['id']}",
                       json_body={"price": 1}, headers=headers)
    assert_401(reply, invalid_token=True)
    assert reply.body["errors"] == ["Authorization: the token has expired"]


@pytest.mark.gen_test
async def test_a_missing_listing_is_404_only_for_an_authenticated_caller(api: Served) -> None:
    ann = await create_user(api, "Ann", PASSWORD)
    url = f"{api.url}/public-api/listings/777"
    assert_401(await call("PATCH", url, json_body={"price": 1}), invalid_token=False)
    assert_401(await call("DELETE", url), invalid_token=False)
    auth = await log_in(api, ann["id"])
    assert_error(await call("PATCH", url, json_body={"price": 1}, headers=auth), 404)
    assert_error(await call("DELETE", url, headers=auth), 404)


@pytest.mark.gen_test
async def test_listings_of_a_user_without_password_nobody_changes(api: Served) -> None:
    old = await create_user(api, "Challenge User")
    listing = await listing_of(api, old["id"])
    other = await create_user(api, "Ann", PASSWORD)
    auth = await log_in(api, other["id"])
    url = f"{api.url}/public-api/listings/{listing['id']}"
    assert_error(await call("PATCH", url, json_body={"price": 1}, headers=auth), 403)
    assert_error(await call("DELETE", url, headers=auth), 403)
    # And no token can be had for the user without a password.
    reply = await call("POST", f"{api.url}/public-api/tokens",
                       json_body={"user_id": old["id"], "password": PASSWORD})
    assert reply.status == 401


@pytest.mark.gen_test
async def test_only_the_user_themself_patches_a_user(api: Served) -> None:
    ann, bo = await create_user(api, "Ann", PASSWORD), await create_user(api, "Bo", PASSWORD)
    url = f"{api.url}/public-api/users/{ann['id']}"
    assert_401(await call("PATCH", url, json_body={"name": "hijacked"}), invalid_token=False)
    bos = await log_in(api, bo["id"])
    assert_error(await call("PATCH", url, json_body={"name": "hijacked"}, headers=bos), 403,
                 "Authorization:")
    assert (await call("GET", url)).body["user"]["name"] == "Ann"
    own = await call("PATCH", url, json_body={"name": "Anne"}, headers=await log_in(api, ann["id"]))
    assert own.status == 200 and own.body["user"]["name"] == "Anne"


@pytest.mark.gen_test
async def test_create_listing_with_a_token_only_for_its_user(api: Served) -> None:
    ann, bo = await create_user(api, "Ann", PASSWORD), await create_user(api, "Bo", PASSWORD)
    auth = await log_in(api, ann["id"])
    url = f"{api.url}/public-api/listings"
    for_bo = await call("POST", url, headers=auth,
                        json_body={"user_id": bo["id"], "listing_type": "rent", "price": 1})
    assert_error(for_bo, 403, "user_id:")
    for_ann = await call("POST", url, headers=auth,
                         json_body={"user_id": ann["id"], "listing_type": "rent", "price": 1})
    assert for_ann.status == 201 and for_ann.body["listing"]["user_id"] == ann["id"]
    # Without a token: as the challenge text shows.
    anonymous = await call("POST", url, json_body={"user_id": bo["id"], "listing_type": "sale",
                                                   "price": 2})
    assert anonymous.status == 201 and list(anonymous.body) == ["listing"]


@pytest.mark.gen_test
async def test_require_auth_makes_every_public_write_need_a_token(strict: Served) -> None:
    ann = await create_user(strict, "Ann", PASSWORD)  # sign-up stays open
    auth = await log_in(strict, ann["id"])  # so does login
    url = f"{strict.url}/public-api/listings"
    body = {"user_id": ann["id"], "listing_type": "rent", "price": 1}
    assert_401(await call("POST", url, json_body=body), invalid_token=False)
    made = await call("POST", url, json_body=body, headers=auth)
    assert made.status == 201
    one = f"{url}/{made.body['listing']['id']}"
    assert_401(await call("PATCH", one, json_body={"price": 2}), invalid_token=False)
    assert (await call("PATCH", one, json_body={"price": 2}, headers=auth)).status == 200
    assert (await call("GET", url)).status == 200  # reads stay open
    assert (await call("DELETE", one, headers=auth)).status == 204


@pytest.mark.gen_test
async def test_the_same_401_for_unknown_user_wrong_password_and_no_password(api: Served) -> None:
    ann = await create_user(api, "Ann", PASSWORD)
    old = await create_user(api, "Old")
    answers = []
    for user_id, password in ((ann["id"], "wrong password"), (9999, PASSWORD),
                              (old["id"], PASSWORD)):
        reply = await call("POST", f"{api.url}/public-api/tokens",
                           json_body={"user_id": user_id, "password": password})
        answers.append((reply.status, reply.body, reply.headers.get("WWW-Authenticate")))
    assert answers[0][0] == 401
    assert answers[0] == answers[1] == answers[2], answers


@pytest.mark.gen_test
async def test_sign_up_with_a_password_answers_the_challenge_shape(api: Served) -> None:
    for password in ("12345678", "ünïcødé✓", "p" * 128, "  spaces  "):
        reply = await call("POST", f"{api.url}/public-api/users",
                           json_body={"name": "Ann", "password": password})
        assert reply.status == 201 and list(reply.body) == ["user"], reply.body
        assert list(reply.body["user"]) == USER_KEYS
        await log_in(api, reply.body["user"]["id"], password)  # kept exactly, not trimmed
    for bad in ("1234567", "p" * 129, 12345678, None):
        reply = await call("POST", f"{api.url}/public-api/users",
                           json_body={"name": "Ann", "password": bad})
        assert_error(reply, 400, "password:")


@pytest.mark.gen_test
async def test_a_token_stays_valid_after_a_password_change(api: Served) -> None:
    """The decision (common/tokens.py): tokens are stateless, valid until they expire."""
    ann = await create_user(api, "Ann", PASSWORD)
    listing = await listing_of(api, ann["id"])
    before = await log_in(api, ann["id"])
    changed = await call("PATCH", f"{api.url}/public-api/users/{ann['id']}",
                         json_body={"password": "a new password"}, headers=before)
    assert changed.status == 200 and list(changed.body["user"]) == USER_KEYS
    old = await call("POST", f"{api.url}/public-api/tokens",
                     json_body={"user_id": ann["id"], "password": PASSWORD})
    assert old.status == 401
    await log_in(api, ann["id"], "a new password")
    still = await call("PATCH", f"{api.url}/public-api/listings/{listing['id']}",
                       json_body={"price": 1}, headers=before)
    assert still.status == 200


@pytest.mark.gen_test
async def test_a_user_without_password_cannot_get_one(api: Served) -> None:
    old = await create_user(api, "Old")
    url = f"{api.url}/public-api/users/{old['id']}"
    assert_401(await call("PATCH", url, json_body={"password": PASSWORD}), invalid_token=False)
    ann = await create_user(api, "Ann", PASSWORD)
    other = await call("PATCH", url, json_body={"password": PASSWORD},
                       headers=await log_in(api, ann["id"]))
    assert other.status == 403
    login = await call("POST", f"{api.url}/public-api/tokens",
                       json_body={"user_id": old["id"], "password": PASSWORD})
    assert login.status == 401


@pytest.mark.gen_test
async def test_checking_a_token_calls_no_other_service(api: Served, user_svc: Served,
                                                       listing_svc: Served) -> None:
    ann = await create_user(api, "Ann", PASSWORD)
    listing = await listing_of(api, ann["id"])
    auth = await log_in(api, ann["id"])
    seen = len(user_svc.requests)
    url = f"{api.url}/public-api/listings/{listing['id']}"
    assert (await call("PATCH", url, json_body={"price": 2}, headers=auth)).status == 200
    assert len(user_svc.requests) == seen  # the listing service only, for the owner and write
    seen_listing = len(listing_svc.requests)
    assert (await call("PATCH", url, json_body={"price": 2},
                       headers={"Authorization": "Bearer x.y.z"})).status == 401
    assert len(listing_svc.requests) == seen_listing and len(user_svc.requests) == seen
