"""Assertions the service tests share: the contract's shapes, types and error format."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.support.http import Reply, call

LISTING_KEYS = ["id", "user_id", "listing_type", "price", "created_at", "updated_at"]
PUBLIC_LISTING_KEYS = ["id", "listing_type", "price", "created_at", "updated_at", "user"]
USER_KEYS = ["id", "name", "created_at", "updated_at"]


def is_int(value: Any) -> bool:
    """A JSON integer: not a bool (a Python int subclass), not a string, not a float."""
    return type(value) is int


def assert_user(user: Any) -> None:
    assert list(user) == USER_KEYS, user
    assert is_int(user["id"]) and user["id"] >= 1
    assert isinstance(user["name"], str)
    assert is_int(user["created_at"]) and is_int(user["updated_at"])


def assert_listing(listing: Any) -> None:
    assert list(listing) == LISTING_KEYS, listing
    for key in ("id", "user_id", "price", "created_at", "updated_at"):
        assert is_int(listing[key]), (key, listing)
    assert listing["listing_type"] in ("rent", "sale")


def assert_public_listing(listing: Any) -> None:
    assert list(listing) == PUBLIC_LISTING_KEYS, listing
    for key in ("id", "price", "created_at", "updated_at"):
        assert is_int(listing[key]), (key, listing)
    assert listing["listing_type"] in ("rent", "sale")
    if listing["user"] is not None:
        assert_user(listing["user"])


def assert_error(reply: Reply, status: int, *fields: str) -> list[str]:
    """The contract's error envelope, with a message starting with each of `fields`.

    Field errors read "<field>: <what is wrong>", so pass "price:" to demand the field's own
    message; a message that merely mentions the word elsewhere does not count.
    """
    assert reply.status == status, (reply.status, reply.body)
    assert list(reply.body) == ["result", "errors"], reply.body
    assert reply.body["result"] is False
    errors = reply.body["errors"]
    assert errors and all(isinstance(e, str) and e for e in errors), errors
    for name in fields:
        assert any(e.startswith(name) for e in errors), (name, errors)
    return errors


async def listed(url: str, key: str, check: Callable[[Any], None]) -> list[dict]:
    """GET a list: 200 and exactly {"result": true, key: [...]}, each item passing `check`."""
    reply = await call("GET", url)
    assert reply.status == 200, reply.body
    assert list(reply.body) == ["result", key] and reply.body["result"] is True, reply.body
    for item in reply.body[key]:
        check(item)
    return reply.body[key]
