"""The public API in front of the real listing and user services, all on loopback in one loop.

Stitching, the null user, the unknown-user create, the one batch call per page, the concurrent
`user_id` path, and every bad input of the two public creates and the public list.
"""
from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import pytest

import listing_service
from common.validation import MAX_INT64
from tests.support.apps import Served, make_public, stop_app
from tests.support.checks import (
    LISTING_KEYS,
    PUBLIC_LISTING_KEYS,
    assert_error,
    assert_listing,
    assert_public_listing,
    assert_user,
    is_int,
    listed,
)
from tests.support.data import create_listing, create_user
from tests.support.fake import Answer, Request
from tests.support.http import Reply, call
from tests.support.stores import run_sql

LISTING = {"user_id": 1, "listing_type": "rent", "price": 6000}


async def public_listings(public: Served, query: str = "") -> list[dict]:
    return await listed(f"{public.url}/public-api/listings?{query}", "listings",
                        assert_public_listing)


async def stored_listings(store: listing_service.ListingStore) -> list[dict]:
    return [json.loads(row) for row in await store.page(listing_service.v.Page(1, 100))]


def stitched(listing: dict, user: dict | None) -> dict:
    """What the public API must make of a listing service row: `user` in place of `user_id`."""
    public = {key: listing[key] for key in LISTING_KEYS if key != "user_id"}
    return {**public, "user": user}


# --- create user ----------------------------------------------------------------------------

@pytest.mark.gen_test
async def test_create_user_answers_201_with_only_the_user(public, user_svc):
    reply = await call("POST", public.url + "/public-api/users",
                       json_body={"name": "  Lorel Ipsum  "})
    assert reply.status == 201
    assert list(reply.body) == ["user"]
    user = reply.body["user"]
    assert_user(user)
    assert user["name"] == "Lorel Ipsum"
    assert user["created_at"] == user["updated_at"]
    stored = await call("GET", f"{user_svc.url}/users/{user['id']}")
    assert stored.body["user"] == user


@pytest.mark.gen_test
@pytest.mark.parametrize("name", ["Zoë Ó Briain", "山田 太郎", "Łukasz 🏠", "a+b&c=d%20e",
                                  "é" * 200])
async def test_create_user_carries_any_unicode_name_through(public, user_svc, name):
    user = await create_user(public, name)
    assert user["name"] == name
    assert (await call("GET", f"{user_svc.url}/users/{user['id']}")).body["user"]["name"] == name


@pytest.mark.gen_test
@pytest.mark.parametrize("body", [
    {}, {"name": ""}, {"name": "   "}, {"name": "a" * 201}, {"name": 5}, {"name": None},
    {"name": True}, {"name": ["Ann"]}, {"name": {"first": "Ann"}},
])
async def test_create_user_rejects_a_bad_name(public, user_svc, body):
    reply = await call("POST", public.url + "/public-api/users", json_body=body)
    assert_error(reply, 400, "name:")
    assert user_svc.requests == []  # refused before anything went downstream


@pytest.mark.gen_test
async def test_create_user_rejects_a_lone_surrogate(public, user_svc):
    reply = await call("POST", public.url + "/public-api/users", body='{"name": "Ann \\ud800"}',
                       headers={"Content-Type": "application/json"})
    assert_error(reply, 400, "name:")
    assert user_svc.requests == []


@pytest.mark.gen_test
async def test_create_user_rejects_an_unknown_field(public, user_svc):
    reply = await call("POST", public.url + "/public-api/users",
                       json_body={"name": "Ann", "email": "ann@example.com"})
    assert_error(reply, 400, "email:")
    assert user_svc.requests == []


# --- create listing -------------------------------------------------------------------------

@pytest.mark.gen_test
async def test_create_listing_answers_201_with_only_the_listing(public, listing_store):
    user = await create_user(public)
    reply = await call("POST", public.url + "/public-api/listings",
                       json_body={"user_id": user["id"], "listing_type": "sale", "price": 450000})
    assert reply.status == 201
    assert list(reply.body) == ["listing"]
    listing = reply.body["listing"]
    assert list(listing) == LISTING_KEYS
    assert_listing(listing)
    assert (listing["user_id"], listing["listing_type"], listing["price"]) == (
        user["id"], "sale", 450000)
    assert listing["created_at"] == listing["updated_at"]
    assert await stored_listings(listing_store) == [listing]


@pytest.mark.gen_test
async def test_create_listing_accepts_the_largest_64_bit_price(public):
    user = await create_user(public)
    listing = await create_listing(public, user["id"], price=MAX_INT64)
    assert listing["price"] == MAX_INT64 and is_int(listing["price"])
    assert (await public_listings(public))[0]["price"] == MAX_INT64


@pytest.mark.gen_test
async def test_create_listing_for_an_unknown_user_stores_nothing(public, listing_svc,
                                                                 listing_store):
    await create_user(public)
    reply = await call("POST", public.url + "/public-api/listings",
                       json_body={**LISTING, "user_id": 999})
    assert reply.body["errors"] == ["user_id: user 999 does not exist"]
    assert_error(reply, 400, "user_id:")
    assert listing_svc.requests == []
    assert await stored_listings(listing_store) == []


@pytest.mark.gen_test
@pytest.mark.parametrize("field, value", [
    ("user_id", True), ("user_id", "1"), ("user_id", 1.0), ("user_id", 0), ("user_id", -1),
    ("user_id", None), ("user_id", MAX_INT64 + 1), ("user_id", [1]),
    ("price", 0), ("price", -1), ("price", MAX_INT64 + 1), ("price", "6000"), ("price", 6000.0),
    ("price", 6000.5), ("price", False), ("price", None), ("price", {"amount": 6000}),
    ("listing_type", "lease"), ("listing_type", "RENT"), ("listing_type", 1),
    ("listing_type", None), ("listing_type", ["rent"]),
])
async def test_create_listing_rejects_a_bad_value(public, user_svc, listing_svc, field, value):
    reply = await call("POST", public.url + "/public-api/listings",
                       json_body={**LISTING, field: value})
    assert_error(reply, 400, f"{field}:")
    assert user_svc.requests == [] and listing_svc.requests == []


@pytest.mark.gen_test
async def test_create_listing_lists_every_problem(public):
    reply = await call("POST", public.url + "/public-api/listings",
                       json_body={"price": "x", "rooms": 3})
    errors = assert_error(reply, 400, "user_id:", "listing_type:", "price:", "rooms:")
    assert len(errors) == 4


@pytest.mark.gen_test
async def test_create_listing_rejects_nan_and_infinity(public):
    for constant in ("NaN", "Infinity", "-Infinity"):
        reply = await call("POST", public.url + "/public-api/listings",
                           body=f'{{"user_id": 1, "listing_type": "rent", "price": {constant}}}',
                           headers={"Content-Type": "application/json"})
        assert_error(reply, 400, "body:")


@pytest.mark.gen_test
async def test_create_listing_takes_a_charset_parameter(public):
    user = await create_user(public)
    reply = await call("POST", public.url + "/public-api/listings",
                       body=json.dumps({**LISTING, "user_id": user["id"]}),
                       headers={"Content-Type": "application/json; charset=utf-8"})
    assert reply.status == 201, reply.body


# --- bodies any public POST may get wrong -----------------------------------------------------

PUBLIC_POSTS = ["/public-api/users", "/public-api/listings"]


async def post_raw(public: Served, path: str, body: str | bytes) -> Reply:
    return await call("POST", public.url + path, body=body,
                      headers={"Content-Type": "application/json"})


@pytest.mark.gen_test
@pytest.mark.parametrize("path", PUBLIC_POSTS)
@pytest.mark.parametrize("body", ["{", "{'name': 'Ann'}", "", '{"name": "Ann"} x', "\x00"])
async def test_bad_json_is_a_400(public, path, body):
    reply = await post_raw(public, path, body)
    assert reply.body["errors"] == ["body: is not valid JSON"]
    assert_error(reply, 400, "body:")


@pytest.mark.gen_test
@pytest.mark.parametrize("path", PUBLIC_POSTS)
@pytest.mark.parametrize("body", ["[]", '["name"]', '"Ann"', "42", "null", "true"])
async def test_json_that_is_not_an_object_is_a_400(public, path, body):
    reply = await post_raw(public, path, body)
    assert reply.body["errors"] == ["body: must be a JSON object"]
    assert_error(reply, 400, "body:")


@pytest.mark.gen_test
@pytest.mark.parametrize("path", PUBLIC_POSTS)
async def test_a_body_that_is_not_utf8_is_a_400(public, path):
    reply = await post_raw(public, path, b'{"name": "\xff"}')
    assert_error(reply, 400, "body:")


@pytest.mark.gen_test
@pytest.mark.parametrize("path", PUBLIC_POSTS)
@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "text/plain",
                                          "application/jsonx", None])
async def test_a_post_that_is_not_json_is_a_415(public, path, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    reply = await call("POST", public.url + path, body='{"name": "Ann"}', headers=headers)
    assert_error(reply, 415, "Content-Type:")


@pytest.mark.gen_test
@pytest.mark.parametrize("path", PUBLIC_POSTS)
async def test_an_oversized_body_is_a_413(public, user_svc, listing_svc, path):
    body = json.dumps({"name": "a" * (1024 * 1024)})
    reply = await call("POST", public.url + path, body=body,
                       headers={"Content-Type": "application/json"})
    assert_error(reply, 413, "body:")
    assert user_svc.requests == [] and listing_svc.requests == []


# --- list: stitching ----------------------------------------------------------------------------

@pytest.mark.gen_test
async def test_list_stitches_each_listing_its_user(public, listing_svc):
    ann, bob = await create_user(public, "Ann"), await create_user(public, "Bob")
    made = [await create_listing(public, ann["id"], "rent", 1000),
            await create_listing(public, bob["id"], "sale", 2000),
            await create_listing(public, ann["id"], "sale", 3000)]
    page = await public_listings(public)
    owners = {ann["id"]: ann, bob["id"]: bob}
    assert page == [stitched(listing, owners[listing["user_id"]]) for listing in made[::-1]]
    assert all(list(listing) == PUBLIC_LISTING_KEYS for listing in page)
    assert all("user_id" not in listing for listing in page)


@pytest.mark.gen_test
async def test_list_of_an_empty_system(public, user_svc):
    reply = await call("GET", public.url + "/public-api/listings")
    assert (reply.status, reply.body) == (200, {"result": True, "listings": []})
    assert user_svc.requests == []  # no owners, nothing to ask


@pytest.mark.gen_test
async def test_a_listing_without_its_user_has_a_null_user(public, listing_store):
    ann = await create_user(public, "Ann")
    kept = await create_listing(public, ann["id"])
    rows = await run_sql(
        listing_store,
        "INSERT INTO listings (user_id, listing_type, price, created_at, updated_at)"
        " VALUES (999, 'sale', 5, ?, ?) RETURNING id, user_id, listing_type, price,"
        " created_at, updated_at", (kept["created_at"] + 1, kept["created_at"] + 1))
    orphan = dict(rows[0])
    assert await public_listings(public) == [stitched(orphan, None), stitched(kept, ann)]
    assert await public_listings(public, "user_id=999") == [stitched(orphan, None)]


@pytest.mark.gen_test
async def test_list_defaults_pages_and_filters_like_the_listing_service(public, listing_store):
    ann, bob = await create_user(public, "Ann"), await create_user(public, "Bob")
    made = [await create_listing(public, (ann, bob)[i % 2]["id"], price=i + 1) for i in range(13)]
    newest_first = [listing["id"] for listing in made[::-1]]

    assert [x["id"] for x in await public_listings(public)] == newest_first[:10]
    pages = [[x["id"] for x in await public_listings(public, f"page_num={n}&page_size=5")]
             for n in (1, 2, 3, 4)]
    assert pages == [newest_first[:5], newest_first[5:10], newest_first[10:], []]

    bobs = await public_listings(public, f"user_id={bob['id']}&page_size=100")
    assert [x["id"] for x in bobs] == [x["id"] for x in made[::-1] if x["user_id"] == bob["id"]]
    assert all(x["user"] == bob for x in bobs)
    assert await public_listings(public, "user_id=12345") == []


@pytest.mark.gen_test
async def test_list_asks_the_user_service_once_for_a_page_of_10_owners(
        public, listing_svc, user_svc):
    owners = [await create_user(public, f"Owner {i}") for i in range(10)]
    for owner in owners:
        await create_listing(public, owner["id"])
    listing_svc.requests.clear()
    user_svc.requests.clear()

    page = await public_listings(public)

    assert [x["user"] for x in page] == owners[::-1]
    assert listing_svc.requests == ["/listings?page_num=1&page_size=10"]
    assert len(user_svc.requests) == 1, user_svc.requests
    asked = urlsplit(user_svc.requests[0])
    assert asked.path == "/users"
    assert parse_qs(asked.query)["ids"][0].split(",") == [str(o["id"]) for o in owners[::-1]]


@pytest.mark.gen_test
async def test_list_asks_once_per_owner_even_with_many_listings(public, user_svc):
    ann = await create_user(public, "Ann")
    for _ in range(5):
        await create_listing(public, ann["id"])
    user_svc.requests.clear()
    assert len(await public_listings(public)) == 5
    assert user_svc.requests == [f"/users?ids={ann['id']}"]


@pytest.mark.gen_test
async def test_list_for_one_user_asks_for_that_user_only(public, listing_svc, user_svc):
    ann = await create_user(public, "Ann")
    await create_listing(public, ann["id"])
    listing_svc.requests.clear()
    user_svc.requests.clear()
    page = await public_listings(public, f"user_id={ann['id']}&page_size=3")
    assert [x["user"] for x in page] == [ann]
    assert listing_svc.requests == [f"/listings?page_num=1&page_size=3&user_id={ann['id']}"]
    assert user_svc.requests == [f"/users/{ann['id']}"]


@pytest.mark.gen_test
@pytest.mark.parametrize("query, field", [
    ("page_num=0", "page_num"), ("page_num=a", "page_num"), ("page_size=0", "page_size"),
    ("page_size=101", "page_size"), ("user_id=0", "user_id"), ("user_id=abc", "user_id"),
    ("user_id=", "user_id"), ("page_num=1&page_num=2", "page_num"),
    ("user_id=1&user_id=2", "user_id"),
])
async def test_list_rejects_bad_parameters_before_going_downstream(
        public, listing_svc, user_svc, query, field):
    reply = await call("GET", f"{public.url}/public-api/listings?{query}")
    assert_error(reply, 400, f"{field}:")
    assert listing_svc.requests == [] and user_svc.requests == []


@pytest.mark.gen_test
async def test_list_accepts_page_size_100(public, listing_svc):
    assert await public_listings(public, "page_size=100") == []
    assert listing_svc.requests == ["/listings?page_num=1&page_size=100"]


# --- routes, methods, health --------------------------------------------------------------------

@pytest.mark.gen_test
async def test_unknown_public_route_is_a_json_404(public):
    for path in ("/public-api/listing", "/listings", "/public-api/users/1/listings",
                 "/nowhere/"):  # "/" is the index now; a trailing slash on no route: 404
        assert_error(await call("GET", public.url + path), 404, "path:")


@pytest.mark.gen_test
async def test_wrong_public_methods_are_a_json_405_with_allow(public):
    users = await call("GET", public.url + "/public-api/users")
    assert_error(users, 405, "method:")
    assert users.headers["Allow"] == "POST"
    listings = await call("DELETE", public.url + "/public-api/listings")
    assert_error(listings, 405, "method:")
    assert listings.headers["Allow"] == "GET, HEAD, POST"


@pytest.mark.gen_test
async def test_public_ping_and_ready(public, listing_svc, user_svc):
    for path in ("/ping", "/ready"):
        reply = await call("GET", public.url + path)
        assert (reply.status, reply.body) == (200, {"result": True}), path
    assert listing_svc.requests == ["/ready"] and user_svc.requests == ["/ready"]


# --- the user_id path calls both services at once -------------------------------------------

@dataclass
class Rendezvous:
    """Each fake service holds its request until the other one's has arrived too.

    Called one after the other, the first call would wait in vain and fail the page, so a
    200 proves the two requests were in flight together.
    """

    arrived: list[str] = field(default_factory=list)
    both: asyncio.Event = field(default_factory=asyncio.Event)

    async def arrive(self, who: str) -> None:
        self.arrived.append(who)
        if len(self.arrived) == 2:
            self.both.set()
        await asyncio.wait_for(self.both.wait(), timeout=2)


@pytest.fixture
def meeting_public(io_loop, make_fake) -> Iterator[tuple[Served, Rendezvous]]:
    """The public API in front of two fakes that each wait for the other's request."""
    meeting = Rendezvous()

    async def listing_rows(request: Request) -> Answer:
        await meeting.arrive("listings")
        return Answer(body={"result": True, "listings": [
            {"id": 1, "user_id": 3, "listing_type": "rent", "price": 10,
             "created_at": 5, "updated_at": 5}]})

    async def one_user(request: Request) -> Answer:
        await meeting.arrive("user")
        user_id = int(request.path.split("?")[0].rsplit("/", 1)[1])
        return Answer(body={"result": True, "user": {"id": user_id, "name": "Cy",
                                                     "created_at": 1, "updated_at": 1}})

    listings, users = make_fake(), make_fake()
    listings.script(listing_rows)
    users.script(one_user)
    public = make_public(io_loop, listings.url, users.url, request_timeout=4)
    yield public, meeting
    stop_app(io_loop, public)


@pytest.mark.gen_test(timeout=10)
async def test_user_id_path_fetches_listings_and_user_concurrently(meeting_public):
    public, meeting = meeting_public
    reply = await call("GET", public.url + "/public-api/listings?user_id=3")
    assert reply.status == 200, reply.body
    assert sorted(meeting.arrived) == ["listings", "user"]
    assert reply.body["listings"] == [
        {"id": 1, "listing_type": "rent", "price": 10, "created_at": 5, "updated_at": 5,
         "user": {"id": 3, "name": "Cy", "created_at": 1, "updated_at": 1}}]
