"""If-Match: an edit or delete made against a stale copy answers 412 and changes nothing.

Real processes. Every single-record GET hands out the record's entity tag (its version);
PATCH and DELETE with `If-Match` write only at a version the header names, checked and
written in one statement, on the data services and through the public API, which passes
the header on (RFC 9110, 13.1.1).
"""
from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlencode

import pytest

from harness.processes import Answer, Stack, http, http_raw, sign_up, start_stack, token_for

CHANGED = "has changed since that ETag"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    started = start_stack(tmp_path_factory.mktemp("if-match"))
    yield started
    started.stop()


def send(method: str, url: str, body: Any = None, *, form: bool = False,
         if_match: str | None = None, token: str | None = None) -> Answer:
    headers = {} if if_match is None else {"If-Match": if_match}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = None
    if body is not None:
        data = urlencode(body).encode() if form else json.dumps(body).encode()
        headers["Content-Type"] = ("application/x-www-form-urlencoded" if form
                                   else "application/json")
    return http_raw(method, url, data, headers=headers)


def new_user(stack: Stack, name: str = "Ann") -> tuple[dict, str]:
    """A user with a password, signed up through the public API, and their token."""
    user = sign_up(stack.public.url, name)
    return user, token_for(stack.public.url, user["id"])


def new_listing(stack: Stack) -> tuple[int, str, str]:
    """A listing of a new user's; its id, its public URL and its owner's token."""
    user, token = new_user(stack)
    listing = http("POST", stack.public.url + "/public-api/listings",
                   {"user_id": user["id"], "listing_type": "rent", "price": 6000})[1]["listing"]
    return listing["id"], f"{stack.public.url}/public-api/listings/{listing['id']}", token


def assert_412(answer: Answer) -> None:
    assert answer.status == 412, answer.raw
    body = answer.json()
    assert body["result"] is False and body["errors"][0].startswith("If-Match: ")
    assert CHANGED in body["errors"][0]


def test_a_stale_patch_of_a_public_listing_is_412_and_changes_nothing(stack: Stack) -> None:
    _, url, token = new_listing(stack)
    mine = send("GET", url)
    etag = mine.headers["ETag"]
    assert send("PATCH", url, {"price": 5500}, token=token).status == 200  # someone else's edit
    assert_412(send("PATCH", url, {"price": 1}, if_match=etag, token=token))
    assert send("GET", url).json()["listing"]["price"] == 5500
    fresh = send("GET", url).headers["ETag"]
    assert fresh != etag
    edited = send("PATCH", url, {"price": 5400}, if_match=fresh, token=token)
    assert edited.status == 200 and edited.json()["listing"]["price"] == 5400
    # The edit's own answer carries the new tag: the next edit can name it.
    chained = send("PATCH", url, {"price": 5300}, if_match=edited.headers["ETag"], token=token)
    assert chained.status == 200


def test_a_stale_delete_of_a_public_listing_is_412_and_deletes_nothing(stack: Stack) -> None:
    _, url, token = new_listing(stack)
    etag = send("GET", url).headers["ETag"]
    assert send("PATCH", url, {"listing_type": "sale"}, token=token).status == 200
    assert_412(send("DELETE", url, if_match=etag, token=token))
    assert send("GET", url).status == 200
    assert send("DELETE", url, if_match=send("GET", url).headers["ETag"], token=token).status == 204
    assert send("GET", url).status == 404


def test_a_stale_patch_of_a_public_user_is_412_and_changes_nothing(stack: Stack) -> None:
    user, token = new_user(stack, "Bo")
    url = f"{stack.public.url}/public-api/users/{user['id']}"
    etag = send("GET", url).headers["ETag"]
    assert send("PATCH", url, {"name": "Bob"}, token=token).status == 200
    assert_412(send("PATCH", url, {"name": "Robert"}, if_match=etag, token=token))
    assert send("GET", url).json()["user"]["name"] == "Bob"


def test_the_data_services_check_if_match_themselves(stack: Stack) -> None:
    listing_id, _, _ = new_listing(stack)
    url = f"{stack.listing.url}/listings/{listing_id}"
    etag = send("GET", url).headers["ETag"]
    assert send("PATCH", url, {"price": "7000"}, form=True).status == 200
    assert_412(send("PATCH", url, {"price": "1"}, form=True, if_match=etag))
    assert_412(send("DELETE", url, if_match=etag))
    assert send("GET", url).json()["listing"]["price"] == 7000
    user_url = stack.user.url + "/users/1"
    user_etag = send("GET", user_url).headers["ETag"]
    assert send("PATCH", user_url, {"name": "Changed"}, form=True).status == 200
    assert_412(send("PATCH", user_url, {"name": "Lost"}, form=True, if_match=user_etag))


def test_concurrent_edits_from_one_copy_let_exactly_one_through(stack: Stack) -> None:
    _, url, token = new_listing(stack)
    etag = send("GET", url).headers["ETag"]
    with ThreadPoolExecutor(20) as pool:
        statuses = Counter(pool.map(
            lambda price: send("PATCH", url, {"price": price}, if_match=etag, token=token).status,
            range(1, 21)))
    assert statuses == Counter({200: 1, 412: 19})


def test_the_tag_of_a_public_listing_changes_when_its_owner_is_renamed(stack: Stack) -> None:
    _, url, token = new_listing(stack)
    first = send("GET", url)
    assert http_raw("GET", url, headers={"If-None-Match": first.headers["ETag"]}).status == 304
    owner = first.json()["listing"]["user"]["id"]
    renamed_by_owner = send("PATCH", f"{stack.public.url}/public-api/users/{owner}",
                            {"name": "New"}, token=token)
    assert renamed_by_owner.status == 200
    renamed = http_raw("GET", url, headers={"If-None-Match": first.headers["ETag"]})
    assert renamed.status == 200 and renamed.json()["listing"]["user"]["name"] == "New"
    # An edit of the listing is checked against the listing's own version only.
    edited = send("PATCH", url, {"price": 1}, if_match=first.headers["ETag"], token=token)
    assert edited.status == 200


@pytest.mark.parametrize("header, status", [
    ("*", 200), ('W/"1"', 412), ('"not-a-version"', 412), ('"1", "2"', 412)])
def test_if_match_forms(stack: Stack, header: str, status: int) -> None:
    _, url, token = new_listing(stack)
    assert send("PATCH", url, {"price": 2}, if_match=header, token=token).status == status


def test_a_listed_current_tag_among_others_matches(stack: Stack) -> None:
    _, url, token = new_listing(stack)
    etag = send("GET", url).headers["ETag"]
    assert send("PATCH", url, {"price": 3}, if_match=f'"1", {etag}', token=token).status == 200


@pytest.mark.parametrize("header", ["1700000000000000", '"unterminated', "W/", '"a" "b"'])
def test_a_malformed_if_match_is_a_400_naming_it(stack: Stack, header: str) -> None:
    _, url, token = new_listing(stack)
    answer = send("PATCH", url, {"price": 2}, if_match=header, token=token)
    assert answer.status == 400 and answer.json()["errors"][0].startswith("If-Match: ")
    assert send("GET", url).json()["listing"]["price"] == 6000


def test_if_match_on_a_missing_record_is_still_404(stack: Stack) -> None:
    _, _, token = new_listing(stack)
    url = stack.public.url + "/public-api/listings/999999"
    assert send("PATCH", url, {"price": 2}, if_match="*", token=token).status == 404
    assert send("DELETE", url, if_match='"1"', token=token).status == 404
