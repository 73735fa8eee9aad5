"""Users and listings made over HTTP, on a data service (a form) or the public API (JSON).

`post_*` answer the Reply whatever it is, for tests of failures; `create_*` demand a 201 and
answer the record; `log_in` demands a token. The real-process tests have the same as blocking
calls in harness.processes (`sign_up`, `token_for`).
"""
from __future__ import annotations

from tests.support.apps import Served
from tests.support.http import Reply, call

NAME = "Suresh Subramaniam"
PRICE = 6000
PASSWORD = "correct horse battery"


async def post_user(served: Served, name: str = NAME, password: str | None = None) -> Reply:
    fields = {"name": name} if password is None else {"name": name, "password": password}
    if served.public:
        return await call("POST", served.url + "/public-api/users", json_body=fields)
    return await call("POST", served.url + "/users", form=fields)


async def post_listing(served: Served, user_id: int = 1, listing_type: str = "rent",
                       price: int = PRICE) -> Reply:
    fields = {"user_id": user_id, "listing_type": listing_type, "price": price}
    if served.public:
        return await call("POST", served.url + "/public-api/listings", json_body=fields)
    return await call("POST", served.url + "/listings", form=fields)


async def create_user(served: Served, name: str = NAME, password: str | None = None) -> dict:
    reply = await post_user(served, name, password)
    assert reply.status == 201, reply.body
    return reply.body["user"]


async def create_listing(served: Served, user_id: int = 1, listing_type: str = "rent",
                         price: int = PRICE) -> dict:
    reply = await post_listing(served, user_id, listing_type, price)
    assert reply.status == 201, reply.body
    return reply.body["listing"]


async def log_in(served: Served, user_id: int, password: str = PASSWORD) -> dict[str, str]:
    """The Authorization header of a user logged in through the public API `served`."""
    reply = await call("POST", f"{served.url}/public-api/tokens",
                       json_body={"user_id": user_id, "password": password})
    assert reply.status == 201, reply.body
    assert list(reply.body) == ["token", "expires_at"]
    return {"Authorization": f"Bearer {reply.body['token']}"}
