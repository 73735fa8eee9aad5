"""The user service's PATCH /users/{id}: correcting a name."""
from __future__ import annotations

import pytest

from common.validation import MAX_NAME_LENGTH
from tests.support.apps import Served
from tests.support.data import create_user
from tests.support.http import call

TOO_LONG_OR_EMPTY = f"name: must be 1 to {MAX_NAME_LENGTH} characters after trimming"


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
    assert (missing.status, missing.body) == (404, {"result": False, "errors": ["user 77 does not exist"]})
    bad = await call("PATCH", f"{user_svc.url}/users/seven", form={"name": "Bo"})
    assert bad.status == 400 and bad.body["errors"][0].startswith("id: ")
