"""The user service over real HTTP: create, get one, list, the `ids` batch, every bad input,
and PATCH /users/{id}, correcting a name."""
from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import quote, urlencode

import pytest

import user_service
from common.validation import MAX_INT64, MAX_NAME_LENGTH
from tests.support.apps import Served, serve_app, stop_app
from tests.support.checks import USER_KEYS, assert_error, assert_user, listed
from tests.support.data import create_user
from tests.support.http import call
from tests.support.stores import run_sql

TOO_LONG_OR_EMPTY = f"name: must be 1 to {MAX_NAME_LENGTH} characters after trimming"


async def users(svc: Served, query: str = "") -> list[dict]:
    return await listed(f"{svc.url}/users?{query}", "users", assert_user)


async def insert(store: user_service.Store, name: str, created_at: int) -> int:
    """A row with a chosen timestamp, straight into the service's own database."""
    rows = await run_sql(store, "INSERT INTO users (name, created_at, updated_at)"
                                " VALUES (?, ?, ?) RETURNING id", (name, created_at, created_at))
    return rows[0][0]


def ids_of(rows: list[dict]) -> list[int]:
    return [row["id"] for row in rows]


# --- create -------------------------------------------------------------------------------

@pytest.mark.gen_test
async def test_create_answers_201_with_the_user(user_svc):
    before = time.time_ns() // 1000
    reply = await call("POST", user_svc.url + "/users", form={"name": "Suresh Subramaniam"})
    after = time.time_ns() // 1000
    assert reply.status == 201
    assert list(reply.body) == ["result", "user"] and reply.body["result"] is True
    user = reply.body["user"]
    assert list(user) == USER_KEYS
    assert_user(user)
    assert user["name"] == "Suresh Subramaniam"
    assert user["created_at"] == user["updated_at"]
    assert before <= user["created_at"] <= after  # microseconds since the epoch


@pytest.mark.gen_test
async def test_create_trims_the_name(user_svc):
    assert (await create_user(user_svc, " \t Ann Lee \n"))["name"] == "Ann Lee"


@pytest.mark.gen_test
@pytest.mark.parametrize("name", ["Zoë Ó Briain", "山田 太郎", "Łukasz 🏠", "a" * 200, "é" * 200])
async def test_create_keeps_any_unicode_name_up_to_200_characters(user_svc, name):
    user = await create_user(user_svc, name)
    assert user["name"] == name
    fetched = await call("GET", f"{user_svc.url}/users/{user['id']}")
    assert fetched.body["user"]["name"] == name


@pytest.mark.gen_test
@pytest.mark.parametrize("name", ["", "   ", "a" * 201, "é" * 201])
async def test_create_rejects_an_empty_or_too_long_name(user_svc, name):
    reply = await call("POST", user_svc.url + "/users", form={"name": name})
    assert_error(reply, 400, "name:")
    assert await users(user_svc) == []


@pytest.mark.gen_test
async def test_create_requires_a_name(user_svc):
    reply = await call("POST", user_svc.url + "/users", form={})
    assert reply.body["errors"] == ["name: is required"]
    assert_error(reply, 400, "name:")


@pytest.mark.gen_test
async def test_create_rejects_an_unknown_field(user_svc):
    reply = await call("POST", user_svc.url + "/users", form={"name": "Ann", "age": "3"})
    assert_error(reply, 400, "age:")
    assert await users(user_svc) == []


@pytest.mark.gen_test
async def test_create_rejects_a_repeated_name(user_svc):
    reply = await call("POST", user_svc.url + "/users", body="name=Ann&name=Bob",
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert_error(reply, 400, "name:")


@pytest.mark.gen_test
async def test_create_rejects_a_name_that_is_not_utf8(user_svc):
    reply = await call("POST", user_svc.url + "/users", body="name=%FF%FE",
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert_error(reply, 400, "body:")


@pytest.mark.gen_test
async def test_create_rejects_a_json_body(user_svc):
    reply = await call("POST", user_svc.url + "/users", json_body={"name": "Ann"})
    assert_error(reply, 415, "Content-Type:")


# --- get one ------------------------------------------------------------------------------

@pytest.mark.gen_test
async def test_get_one_user(user_svc):
    created = await create_user(user_svc, "Ann")
    await create_user(user_svc, "Bob")
    reply = await call("GET", f"{user_svc.url}/users/{created['id']}")
    assert reply.status == 200
    assert list(reply.body) == ["result", "user"] and reply.body["result"] is True
    assert reply.body["user"] == created


@pytest.mark.gen_test
async def test_get_an_unknown_user_is_a_404(user_svc):
    await create_user(user_svc)
    errors = assert_error(await call("GET", f"{user_svc.url}/users/999"), 404, "user 999")
    assert errors == ["user 999 does not exist"]


@pytest.mark.gen_test
@pytest.mark.parametrize("raw", ["0", "-1", "abc", "1.5", quote(" 1"), str(MAX_INT64 + 1)])
async def test_get_with_a_bad_id_is_a_400(user_svc, raw):
    assert_error(await call("GET", f"{user_svc.url}/users/{raw}"), 400, "id:")


@pytest.mark.gen_test
async def test_paths_below_a_user_are_unknown_routes(user_svc):
    assert_error(await call("GET", f"{user_svc.url}/users/1/listings"), 404, "path:")


# --- list ---------------------------------------------------------------------------------

@pytest.mark.gen_test
async def test_list_of_an_empty_store(user_svc):
    reply = await call("GET", user_svc.url + "/users")
    assert (reply.status, reply.body) == (200, {"result": True, "users": []})


@pytest.mark.gen_test
async def test_list_defaults_to_the_newest_10(user_svc, user_store):
    ids = [await insert(user_store, f"u{i}", 1_000 + i) for i in range(12)]
    assert ids_of(await users(user_svc)) == ids[::-1][:10]


@pytest.mark.gen_test
async def test_list_orders_by_created_at_then_id_descending(user_svc, user_store):
    old = await insert(user_store, "old", 1_000)
    tied = [await insert(user_store, "tied", 5_000) for _ in range(3)]
    new = await insert(user_store, "new", 9_000)
    assert ids_of(await users(user_svc)) == [new, *tied[::-1], old]


@pytest.mark.gen_test
async def test_page_2_continues_page_1_without_overlap(user_svc, user_store):
    ids = [await insert(user_store, "u", 1_000 * (i // 3)) for i in range(7)]
    pages = [ids_of(await users(user_svc, f"page_num={n}&page_size=3")) for n in (1, 2, 3, 4)]
    assert [len(page) for page in pages] == [3, 3, 1, 0]
    assert pages[0] + pages[1] + pages[2] == sorted(ids, reverse=True)


@pytest.mark.gen_test
async def test_page_size_100_is_allowed(user_svc, user_store):
    for i in range(101):
        await insert(user_store, "u", i)
    assert len(await users(user_svc, "page_size=100")) == 100
    assert len(await users(user_svc, "page_size=100&page_num=2")) == 1


@pytest.mark.gen_test
@pytest.mark.parametrize("query, field", [
    ("page_num=0", "page_num"), ("page_num=x", "page_num"), ("page_size=0", "page_size"),
    ("page_size=101", "page_size"), ("page_size=-5", "page_size"), ("page_size=", "page_size"),
])
async def test_list_rejects_a_bad_page(user_svc, query, field):
    assert_error(await call("GET", f"{user_svc.url}/users?{query}"), 400, f"{field}:")


@pytest.mark.gen_test
async def test_list_rejects_a_repeated_query_parameter(user_svc):
    reply = await call("GET", user_svc.url + "/users?page_size=1&page_size=2")
    assert_error(reply, 400, "page_size:")


# --- the ids batch ------------------------------------------------------------------------

@pytest.mark.gen_test
async def test_ids_batch_answers_in_the_order_asked(user_svc):
    a, b, c = [await create_user(user_svc, name) for name in ("Ann", "Bob", "Cy")]
    found = await users(user_svc, f"ids={c['id']},{a['id']},{b['id']}")
    assert found == [c, a, b]


@pytest.mark.gen_test
async def test_ids_batch_omits_missing_ids_and_repeats(user_svc):
    a, b = await create_user(user_svc, "Ann"), await create_user(user_svc, "Bob")
    found = await users(user_svc, f"ids=999,{b['id']},{a['id']},{b['id']},12345")
    assert found == [b, a]
    assert await users(user_svc, "ids=999") == []


@pytest.mark.gen_test
async def test_ids_batch_is_not_paged(user_svc, user_store):
    ids = [await insert(user_store, "u", i) for i in range(15)]
    query = urlencode({"ids": ",".join(map(str, ids)), "page_size": "2", "page_num": "3"})
    assert ids_of(await users(user_svc, query)) == ids


# Lists are written by SQLite's json_object, single users by orjson: both must give back
# exactly the name stored, whatever it holds.
AWKWARD_NAMES = ['say "hi" \\ back', "tab\there\nnew line", "ctl \x01 and \x1f\x7f",
                 "Zoë 東京 🏠", "line\u2028separator\u2029", "</script><b>", "%s {0} ' OR 1=1"]


@pytest.mark.gen_test
async def test_lists_give_back_awkward_names_exactly(user_svc):
    made = [await create_user(user_svc, name) for name in AWKWARD_NAMES]
    assert [user["name"] for user in made] == [name.strip() for name in AWKWARD_NAMES]
    assert await users(user_svc, "ids=" + ",".join(str(user["id"]) for user in made)) == made
    assert await users(user_svc, "page_size=100") == made[::-1]


@pytest.mark.gen_test
async def test_a_name_with_nul_is_refused_on_both_backends(user_svc):
    """U+0000 cannot be stored in PostgreSQL's text: 400, whichever backend serves."""
    reply = await call("POST", user_svc.url + "/users", form={"name": "nul \x00 inside"})
    assert reply.body["errors"] == ["name: must not contain U+0000 (NUL)"]
    assert_error(reply, 400, "name:")


@pytest.mark.gen_test
async def test_ids_batch_takes_100_ids(user_svc, user_store):
    ids = [await insert(user_store, "u", i) for i in range(100)]
    assert ids_of(await users(user_svc, "ids=" + ",".join(map(str, ids)))) == ids


@pytest.mark.gen_test
async def test_ids_batch_refuses_more_than_100_ids(user_svc):
    reply = await call("GET", user_svc.url + "/users?ids=" + ",".join(map(str, range(1, 102))))
    assert_error(reply, 400, "ids:")


@pytest.mark.gen_test
@pytest.mark.parametrize("raw", ["", "a", "1,,2", "1,", "0", "-1", "1;2", quote("1, 2"),
                                 str(MAX_INT64 + 1)])
async def test_ids_batch_refuses_junk(user_svc, raw):
    assert_error(await call("GET", f"{user_svc.url}/users?ids={raw}"), 400, "ids:")


# --- routes, methods, health ----------------------------------------------------------------

@pytest.mark.gen_test
async def test_unknown_route_is_a_json_404(user_svc):
    assert_error(await call("POST", user_svc.url + "/people", form={"name": "x"}), 404, "path:")


@pytest.mark.gen_test
async def test_wrong_methods_are_a_json_405_with_allow(user_svc):
    on_list = await call("DELETE", user_svc.url + "/users")
    assert_error(on_list, 405, "method:")
    assert on_list.headers["Allow"] == "GET, HEAD, POST"
    on_one = await call("POST", user_svc.url + "/users/1", form={"name": "x"})
    assert_error(on_one, 405, "method:")
    assert on_one.headers["Allow"] == "GET, HEAD, PATCH"


@pytest.mark.gen_test
async def test_ping_and_ready(user_svc):
    for path in ("/ping", "/ready"):
        reply = await call("GET", user_svc.url + path)
        assert (reply.status, reply.body) == (200, {"result": True}), path


@pytest.fixture
def guarded_user_svc(io_loop, user_store) -> Iterator[Served]:
    served = serve_app(io_loop, user_service.make_app(user_store, internal_token="s3cret"))
    yield served
    stop_app(io_loop, served)


@pytest.mark.gen_test
async def test_internal_token_guards_users(guarded_user_svc):
    url = guarded_user_svc.url
    assert_error(await call("POST", url + "/users", form={"name": "x"}), 401, "X-Internal-Token:")
    assert_error(await call("GET", url + "/users/1"), 401, "X-Internal-Token:")
    ok = await call("POST", url + "/users", form={"name": "x"},
                    headers={"X-Internal-Token": "s3cret"})
    assert ok.status == 201 and ok.body["user"]["name"] == "x"
    assert (await call("GET", url + "/ping")).status == 200


# --- PATCH: correcting a name -----------------------------------------------------------------

@pytest.mark.gen_test
async def test_patch_renames_and_bumps_updated_at(user_svc: Served) -> None:
    created = await create_user(user_svc, "Suresh Subramaniam")
    url = f"{user_svc.url}/users/{created['id']}"
    reply = await call("PATCH", url, form={"name": "  Suresh Subramanian  "})
    assert reply.status == 200, reply.body
    assert list(reply.body) == ["result", "user"] and reply.body["result"] is True
    user = reply.body["user"]
    assert list(user) == ["id", "name", "created_at", "updated_at"]
    assert (user["id"], user["name"]) == (created["id"], "Suresh Subramanian")
    assert user["created_at"] == created["created_at"]
    assert user["updated_at"] > created["updated_at"]
    assert (await call("GET", url)).body["user"] == user


@pytest.mark.gen_test
async def test_patch_validates_the_name(user_svc: Served) -> None:
    created = await create_user(user_svc, "Ann")
    url = f"{user_svc.url}/users/{created['id']}"
    cases = {
        (): ["body: must change at least one of name"],
        (("name", "   "),): [TOO_LONG_OR_EMPTY],
        (("name", "x" * (MAX_NAME_LENGTH + 1)),): [TOO_LONG_OR_EMPTY],
        (("nick", "Annie"),): ["nick: is not a known field"],
        (("name", "Annie"), ("id", "9")): ["id: is not a known field"],
    }
    for fields, errors in cases.items():
        reply = await call("PATCH", url, form=dict(fields))
        assert (reply.status, reply.body) == (400, {"result": False, "errors": errors}), fields
    assert (await call("GET", url)).body["user"] == created


@pytest.mark.gen_test
async def test_patch_unknown_or_malformed_id(user_svc: Served) -> None:
    missing = await call("PATCH", f"{user_svc.url}/users/77", form={"name": "Bo"})
    assert (missing.status, missing.body) == (
        404, {"result": False, "errors": ["user 77 does not exist"]})
    bad = await call("PATCH", f"{user_svc.url}/users/seven", form={"name": "Bo"})
    assert bad.status == 400 and bad.body["errors"][0].startswith("id: ")
