"""Users and listings made over HTTP, on a data service (a form) or the public API (JSON).

`post_*` answer the Reply whatever it is, for tests of failures; `create_*` demand a 201 and
answer the record. The real-process tests have their own blocking calls (harness.processes).
"""
from __future__ import annotations

from tests.support.apps import Served
from tests.support.http import Reply, call

NAME = "Suresh Subramaniam"
PRICE = 6000


async def post_user(served: Served, name: str = NAME) -> Reply:
    if served.public:
        return await call("POST", served.url + "/public-api/users", json_body={"name": name})
    return await call("POST", served.url + "/users", form={"name": name})


async def post_listing(served: Served, user_id: int = 1, listing_type: str = "rent",
                       price: int = PRICE) -> Reply:
    fields = {"user_id": user_id, "listing_type": listing_type, "price": price}
    if served.public:
        return await call("POST", served.url + "/public-api/listings", json_body=fields)
    return await call("POST", served.url + "/listings", form=fields)


async def create_user(served: Served, name: str = NAME) -> dict:
    reply = await post_user(served, name)
    assert reply.status == 201, reply.body
    return reply.body["user"]


async def create_listing(served: Served, user_id: int = 1, listing_type: str = "rent",
                         price: int = PRICE) -> dict:
    reply = await post_listing(served, user_id, listing_type, price)
    assert reply.status == 201, reply.body
    return reply.body["listing"]
