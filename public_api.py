"""Public API: the only face of the system that clients see. It owns no data.

    python public_api.py --port=8000

It calls the listing and user services over HTTP, concurrently where it can, and stitches
each listing's user into it: one page of listings costs one call to each service.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Sequence
from typing import Any, TypeGuard

from tornado.web import Application

from common import prices
from common import validation as v
from common.downstream import ServiceClient, http_client
from common.errors import ApiError
from common.openapi import docs_routes, openapi_route
from common.server import app_settings, parse, run, serve, service_options
from common.web import JsonHandler, PingHandler, ReadyHandler, json_application

log = logging.getLogger(__name__)


class Portal:
    """What the public API does with the two services: fetch, check, stitch."""

    def __init__(self, listings: ServiceClient, users: ServiceClient) -> None:
        self.listings = listings
        self.users = users

    async def listings_page(self, page: v.Page, user_id: int | None = None,
                            **filters: Any) -> list[dict]:
        """A page of listings, newest first, each with its user (or None) under "user".

        `filters` (listing_type, min_price, max_price) pass through to the listing service.
        """
        query: dict[str, Any] = {**page.as_query(), **filters}
        if user_id is None:
            listings = await self.listings.get("/listings", query, key="listings")
            users = await self.users_by_id(_owner_ids(listings))
        else:
            query["user_id"] = user_id
            listings, user = await _together(
                self.listings.get("/listings", query, key="listings"), self.user_or_none(user_id))
            users = {user_id: user} if user else {}
        return [_public_listing(listing, users) for listing in _shape(listings, list, "listings")]

    async def listing(self, listing_id: int) -> dict:
        """One listing with its user (or None) under "user", as in a page."""
        listing = await self.listings.get(f"/listings/{listing_id}", key="listing")
        owner_ids = _owner_ids([listing])
        user = await self.user_or_none(owner_ids[0]) if owner_ids else None
        return _public_listing(listing, {user["id"]: user} if user else {})

    async def price_history(self, listing_id: int, since: int | None = None,
                            until: int | None = None) -> dict[str, Any]:
        """The listing's price points from `since` to `until` and the trend over them, from
        ONE call: the listing service adds the point in force at `since` (include_prior).

        `since` and `until` are echoed as given, null when not: no bound (the whole history
        before `until`; up to now, so that `last` is the current price).
        """
        query: dict[str, Any] = {}
        if since is not None:
            query.update(since=since, include_prior="true")
        if until is not None:
            query["until"] = until
        points = [_price_point(point) for point in _shape(await self.listings.get(
            f"/listings/{listing_id}/prices", query, key="prices"), list, "prices")]
        prior = None
        if since is not None and points and points[0]["changed_at"] < since:
            prior = points.pop(0)
        return {"listing_id": listing_id, "since": since, "until": until, "prices": points,
                "trend": prices.trend(prior, points)}

    async def update_listing(self, listing_id: int, if_match: v.IfMatch | None = None,
                             **changes: Any) -> dict:
        """Change a listing's listing_type and/or price; answers it as a create does.
        With `if_match`, the listing service writes only at a version it names (else 412)."""
        return await self.listings.patch_form(f"/listings/{listing_id}", changes, key="listing",
                                              if_match=if_match)

    async def delete_listing(self, listing_id: int, if_match: v.IfMatch | None = None) -> None:
        await self.listings.delete(f"/listings/{listing_id}", if_match)

    async def user(self, user_id: int) -> dict:
        return await self.users.get(f"/users/{user_id}", key="user")

    async def update_user(self, user_id: int, name: str,
                          if_match: v.IfMatch | None = None) -> dict:
        return await self.users.patch_form(f"/users/{user_id}", {"name": name}, key="user",
                                           if_match=if_match)

    async def users_by_id(self, ids: list[int]) -> dict[int, dict]:
        """The users among `ids` that exist, fetched in one request."""
        if not ids:
            return {}
        found = await self.users.get("/users", {"ids": ",".join(map(str, ids))}, key="users")
        return {user["id"]: user for user in map(_user, _shape(found, list, "users"))}

    async def user_or_none(self, user_id: int) -> dict | None:
        try:
            return _user(await self.users.get(f"/users/{user_id}", key="user"))
        except ApiError as error:
            if error.status_code == 404:
                return None
            raise

    async def create_user(self, name: str) -> dict:
        return _user(await self.users.post_form("/users", {"name": name}, key="user"))

    async def create_listing(self, user_id: int, listing_type: str, price: int) -> dict:
        """Create a listing for an existing user; 400 naming user_id if there is none."""
        if await self.user_or_none(user_id) is None:
            raise ApiError(400, [f"user_id: user {user_id} does not exist"])
        fields = {"user_id": user_id, "listing_type": listing_type, "price": price}
        listing = await self.listings.post_form("/listings", fields, key="listing")
        return _shape(listing, dict, "listing")

    async def check(self) -> None:
        """Raise unless both services are ready."""
        await _together(self.listings.get("/ready", key="result"),
                        self.users.get("/ready", key="result"))


async def _together(*calls: Awaitable[Any]) -> list[Any]:
    """Run `calls` concurrently; raise the first failure only once all have settled."""
    results = await asyncio.gather(*calls, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results


def _shape(value: Any, kind: type, what: str) -> Any:
    if not isinstance(value, kind):
        raise ApiError(502, [f"a downstream service answered a malformed '{what}'"])
    return value


def _user(value: Any) -> dict:
    """A user object from the user service, checked enough to index and stitch it."""
    user = _shape(value, dict, "user")
    if not _is_id(user.get("id")):
        raise ApiError(502, ["a downstream service answered a malformed 'user'"])
    return user


def _owner_ids(listings: Any) -> list[int]:
    _shape(listings, list, "listings")
    owners = (_shape(listing, dict, "listings").get("user_id") for listing in listings)
    # Only ids the user service accepts go out: its 400 for a malformed one would reach our
    # client as if the client had erred. A listing with no valid owner gets "user": null.
    return list(dict.fromkeys(uid for uid in owners if _is_id(uid)))


def _is_id(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= v.MAX_INT64


def _version(record: Any, what: str) -> int:
    """A record's version (its updated_at), which its entity tag carries."""
    version = record.get("updated_at") if isinstance(record, dict) else None
    if not _is_id(version):
        raise ApiError(502, [f"a downstream service answered a malformed '{what}'"])
    return version


def _price_point(value: Any) -> dict[str, int]:
    """A price point from the listing service, checked enough to compute a trend on."""
    point = _shape(value, dict, "prices")
    if not (_is_id(point.get("price")) and _is_id(point.get("changed_at"))):
        raise ApiError(502, ["a downstream service answered a malformed 'prices'"])
    return {"price": point["price"], "changed_at": point["changed_at"]}


def _public_listing(listing: dict, users: dict[int, dict]) -> dict:
    """The challenge's public shape: the user object in place of user_id."""
    try:
        return {
            "id": listing["id"],
            "listing_type": listing["listing_type"],
            "price": listing["price"],
            "created_at": listing["created_at"],
            "updated_at": listing["updated_at"],
            "user": users.get(listing["user_id"]),
        }
    except (KeyError, TypeError):
        raise ApiError(502, ["listing service answered a malformed listing"]) from None


CREATE_USER_RULES = {"name": v.name}
CREATE_LISTING_RULES = {
    "user_id": v.json_integer(1),
    "listing_type": v.listing_type,
    "price": v.json_integer(1),
}
# A listing keeps its owner: only its type and price change.
EDIT_LISTING_RULES = {name: CREATE_LISTING_RULES[name] for name in ("listing_type", "price")}


class ListingsHandler(JsonHandler):
    def initialize(self, portal: Portal) -> None:
        self.portal = portal

    async def get(self) -> None:
        page, filters = v.parse_listing_query(self.query_fields())
        listings = await self.portal.listings_page(page, **filters)
        self.send_json({"result": True, "listings": listings})

    async def post(self) -> None:
        fields = v.parse_fields(self.json_object(), CREATE_LISTING_RULES)
        self.send_json({"listing": await self.portal.create_listing(**fields)}, status=201)


class ListingHandler(JsonHandler):
    def initialize(self, portal: Portal) -> None:
        self.portal = portal

    async def get(self, raw_id: str) -> None:
        listing = await self.portal.listing(v.parse_id(raw_id))
        # The listing's version, then its owner's: a renamed owner changes the answer too.
        owner_version = _version(listing["user"], "user") if listing["user"] else 0
        self.send_json({"listing": listing},
                       etag=v.entity_tag(_version(listing, "listing"), owner_version))

    async def patch(self, raw_id: str) -> None:
        listing_id = v.parse_id(raw_id)
        changes = v.parse_changes(self.json_object(), EDIT_LISTING_RULES)
        listing = await self.portal.update_listing(listing_id, self.if_match(), **changes)
        self.send_json({"listing": listing}, etag=v.entity_tag(_version(listing, "listing")))

    async def delete(self, raw_id: str) -> None:
        await self.portal.delete_listing(v.parse_id(raw_id), self.if_match())
        self.no_content()


class PriceHistoryHandler(JsonHandler):
    """Open to everyone, as the listings are."""

    def initialize(self, portal: Portal) -> None:
        self.portal = portal

    async def get(self, raw_id: str) -> None:
        listing_id = v.parse_id(raw_id)
        window = v.parse_price_window(self.query_fields())
        self.send_json(await self.portal.price_history(listing_id, **window))


class UsersHandler(JsonHandler):
    def initialize(self, portal: Portal) -> None:
        self.portal = portal

    async def post(self) -> None:
        fields = v.parse_fields(self.json_object(), CREATE_USER_RULES)
        self.send_json({"user": await self.portal.create_user(**fields)}, status=201)


class UserHandler(JsonHandler):
    def initialize(self, portal: Portal) -> None:
        self.portal = portal

    async def get(self, raw_id: str) -> None:
        user = await self.portal.user(v.parse_id(raw_id))
        self.send_json({"user": user}, etag=v.entity_tag(_version(user, "user")))

    async def patch(self, raw_id: str) -> None:
        user_id = v.parse_id(raw_id)
        changes = v.parse_changes(self.json_object(), CREATE_USER_RULES)
        user = await self.portal.update_user(user_id, if_match=self.if_match(), **changes)
        self.send_json({"user": user}, etag=v.entity_tag(_version(user, "user")))


def make_app(portal: Portal, **settings: Any) -> Application:
    """The routing table; `settings` are those of `json_application` (debug, limits)."""
    deps = {"portal": portal}
    return json_application([
        (r"/public-api/listings", ListingsHandler, deps),
        (r"/public-api/listings/([^/]+)", ListingHandler, deps),
        (r"/public-api/listings/([^/]+)/price-history", PriceHistoryHandler, deps),
        (r"/public-api/users", UsersHandler, deps),
        (r"/public-api/users/([^/]+)", UserHandler, deps),
        (r"/ping", PingHandler),
        (r"/ready", ReadyHandler, {"check": portal.check}),
        openapi_route("/public-api/openapi.json", "public"),
        *docs_routes("/public-api/docs", "/public-api/openapi.json"),
    ], **settings)


def make_portal(options: Any) -> Portal:
    def client(name: str, url: str) -> ServiceClient:
        return ServiceClient(name, url, options.downstream_connect_timeout,
                             options.downstream_timeout, options.downstream_token)
    return Portal(client("listing", options.listing_service_url),
                  client("user", options.user_service_url))


async def main(argv: Sequence[str] | None = None) -> None:
    options = service_options(port=8000, address="")
    options.define("listing_service_url", default="",
                   help="base URL of the listing service"
                        " (default: $LISTING_SERVICE_URL, else http://127.0.0.1:6000)")
    options.define("user_service_url", default="",
                   help="base URL of the user service"
                        " (default: $USER_SERVICE_URL, else http://127.0.0.1:7000)")
    options.define("downstream_token", default="",
                   help="token sent to the services in X-Internal-Token"
                        " (default: $INTERNAL_TOKEN; empty: none)")
    # 2.5 s outlives one SYN retransmission (sent after 1 s) with room to spare.
    options.define("downstream_connect_timeout", default=2.5, type=float,
                   help="seconds to connect to a service before answering 504")
    options.define("downstream_timeout", default=5.0, type=float,
                   help="seconds a whole call to a service may take before answering 504")
    parse(options, argv, "public")
    try:
        await serve(make_app(make_portal(options), **app_settings(options)), options)
    finally:
        http_client().close()
        log.info("closed the downstream HTTP client")


if __name__ == "__main__":
    run(main())
