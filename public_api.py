"""Public API: the only face of the system that clients see. It owns no data.

    python public_api.py --port=8000

It calls the listing and user services over HTTP, concurrently where it can, and stitches
each listing's user into it: one page of listings costs one call to each service.

Accounts: it issues bearer tokens (`POST /public-api/tokens`, once the user
service has checked the password) and checks them itself, with no call to another service.
The ownership rules live here, not in the internal services: reads are open; changing or
deleting a listing takes its owner's token, changing a user takes that user's token; a
listing is created without a token unless --require_auth=true, but never with another
user's token. docs/accounts.md tells the whole story.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeGuard

from tornado.web import Application

from common import prices
from common import validation as v
from common.downstream import ServiceClient, http_client
from common.errors import ApiError
from common.openapi import docs_routes, load_document, openapi_route
from common.server import app_settings, parse, run, serve, service_options
from common.tokens import DEFAULT_TTL, REALM, Tokens, random_secret
from common.web import JsonHandler, PingHandler, ReadyHandler, cors_origins, json_application

log = logging.getLogger(__name__)


class Portal:
    """What the public API does with the two services: fetch, check, stitch."""

    def __init__(self, listings: ServiceClient, users: ServiceClient) -> None:
        self.listings = listings
        self.users = users

    async def listings_page(self, page: v.Page, user_id: int | None = None,
                            **filters: Any) -> list[dict]:
        """A page of listings, newest first, each with its user (or None) under "user".

        `filters` (listing_type, min_price, max_price, price_changed_since) pass through to
        the listing service.
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

    async def update_user(self, user_id: int, name: str | None = None,
                          password: str | None = None,
                          if_match: v.IfMatch | None = None) -> dict:
        """Rename a user and/or set their password (the caller checked who may). With
        `if_match`, the first write is conditional (412 and nothing written if the user
        changed); the second then follows it."""
        user: dict = {}
        if password is not None:
            user = await self.users.post_form(f"/users/{user_id}/password",
                                              {"password": password}, key="user",
                                              if_match=if_match)
            if_match = None
        if name is not None:
            user = await self.users.patch_form(f"/users/{user_id}", {"name": name}, key="user",
                                               if_match=if_match)
        return user

    async def login(self, user_id: int, password: str) -> dict:
        """The user service's verdict: {"ok": bool, "retry_after": seconds or None}."""
        login = await self.users.post_form(
            "/logins", {"user_id": user_id, "password": password}, key="login")
        login = _shape(login, dict, "login")
        retry = login.get("retry_after")
        if not isinstance(login.get("ok"), bool) or not (retry is None or _is_id(retry)):
            raise ApiError(502, ["a downstream service answered a malformed 'login'"])
        return login

    async def listing_owner(self, listing_id: int) -> Any:
        """The user_id of a listing as the listing service stores it (404 if none)."""
        return _shape(await self.listings.get(f"/listings/{listing_id}", key="listing"),
                      dict, "listing").get("user_id")

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

    async def create_user(self, name: str, password: str | None = None) -> dict:
        fields = {"name": name} if password is None else {"name": name, "password": password}
        return _user(await self.users.post_form("/users", fields, key="user"))

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
PASSWORD_RULES = {"password": v.password}
EDIT_USER_RULES = {**CREATE_USER_RULES, **PASSWORD_RULES}
LOGIN_RULES = {"user_id": v.json_integer(1), "password": v.password}
# One answer for an unknown user, a user without a password and a wrong password.
LOGIN_FAILED = "user_id, password: no user has this id and password"
CREATE_LISTING_RULES = {
    "user_id": v.json_integer(1),
    "listing_type": v.listing_type,
    "price": v.json_integer(1),
}
# A listing keeps its owner: only its type and price change.
EDIT_LISTING_RULES = {name: CREATE_LISTING_RULES[name] for name in ("listing_type", "price")}


@dataclass(frozen=True)
class Auth:
    """How the public API authenticates: its tokens, and whether every write needs one."""

    tokens: Tokens = field(default_factory=Tokens)
    require_auth: bool = False


class PublicHandler(JsonHandler):
    """A public endpoint: the portal behind it and the caller's token, if any."""

    def initialize(self, portal: Portal, auth: Auth) -> None:
        self.portal = portal
        self.auth = auth

    def caller(self) -> int | None:
        """The token's user; None without an Authorization header; 401 for a bad token."""
        return self.auth.tokens.user_of(self.request.headers.get("Authorization"))

    def required_caller(self) -> int:
        """The token's user; 401 without a valid one."""
        return self.auth.tokens.required(self.request.headers.get("Authorization"))


class ListingsHandler(PublicHandler):

    async def get(self) -> None:
        page, filters = v.parse_listing_query(self.query_fields())
        listings = await self.portal.listings_page(page, **filters)
        self.send_json({"result": True, "listings": listings})

    async def post(self) -> None:
        # Without a token it works as the challenge text shows, unless --require_auth=true;
        # with one, only for the token's own user.
        caller = self.required_caller() if self.auth.require_auth else self.caller()
        fields = v.parse_fields(self.json_object(), CREATE_LISTING_RULES)
        if caller is not None and fields["user_id"] != caller:
            raise ApiError(403, [f"user_id: the token is user {caller}'s, who may create"
                                 f" listings only as user_id {caller}"])
        self.send_json({"listing": await self.portal.create_listing(**fields)}, status=201)


class ListingHandler(PublicHandler):
    async def get(self, raw_id: str) -> None:
        listing = await self.portal.listing(v.parse_id(raw_id))
        # The listing's version, then its owner's: a renamed owner changes the answer too.
        owner_version = _version(listing["user"], "user") if listing["user"] else 0
        self.send_json({"listing": listing},
                       etag=v.entity_tag(_version(listing, "listing"), owner_version))

    async def patch(self, raw_id: str) -> None:
        caller = self.required_caller()  # 401 before anything else, a 404 included
        listing_id = v.parse_id(raw_id)
        changes = v.parse_changes(self.json_object(), EDIT_LISTING_RULES)
        await self.check_owner(listing_id, caller)
        listing = await self.portal.update_listing(listing_id, self.if_match(), **changes)
        self.send_json({"listing": listing}, etag=v.entity_tag(_version(listing, "listing")))

    async def delete(self, raw_id: str) -> None:
        caller = self.required_caller()
        listing_id = v.parse_id(raw_id)
        await self.check_owner(listing_id, caller)
        await self.portal.delete_listing(listing_id, self.if_match())
        self.no_content()

    async def check_owner(self, listing_id: int, caller: int) -> None:
        """403 unless `caller` owns the listing (404 if there is none).

        Checking, then writing in another request, is not a race: a listing's owner never
        changes (no route edits user_id: EDIT_LISTING_RULES here, EDIT_RULES in the listing
        service), so the owner read here is still the owner when the write lands. A delete in
        between makes the write a 404, which is what the caller then gets.
        """
        owner = await self.portal.listing_owner(listing_id)
        if owner != caller:
            # Also the answer for a listing of a user without a password: no token is theirs.
            raise ApiError(403, [f"Authorization: listing {listing_id} is not user {caller}'s;"
                                 " only its owner may change or delete it"])


class PriceHistoryHandler(PublicHandler):
    """Open to everyone, as the listings are."""

    async def get(self, raw_id: str) -> None:
        listing_id = v.parse_id(raw_id)
        window = v.parse_price_window(self.query_fields())
        self.send_json(await self.portal.price_history(listing_id, **window))


class UsersHandler(PublicHandler):
    async def post(self) -> None:
        # Sign-up stays open, --require_auth or not; the password is optional.
        fields = v.parse_fields(self.json_object(), CREATE_USER_RULES, PASSWORD_RULES)
        self.send_json({"user": await self.portal.create_user(**fields)}, status=201)


class UserHandler(PublicHandler):
    async def get(self, raw_id: str) -> None:
        user = await self.portal.user(v.parse_id(raw_id))
        self.send_json({"user": user}, etag=v.entity_tag(_version(user, "user")))

    async def patch(self, raw_id: str) -> None:
        caller = self.required_caller()
        user_id = v.parse_id(raw_id)
        changes = v.parse_changes(self.json_object(), EDIT_USER_RULES)
        if caller != user_id:
            raise ApiError(403, [f"Authorization: the token is user {caller}'s; only user"
                                 f" {user_id} may change user {user_id}"])
        # Only a user who logged in holds a token, so only a user with a password gets here:
        # one created without a password cannot get one through the public API.
        user = await self.portal.update_user(user_id, if_match=self.if_match(), **changes)
        self.send_json({"user": user}, etag=v.entity_tag(_version(user, "user")))


class TokensHandler(PublicHandler):
    """`POST /public-api/tokens` {"user_id", "password"}: a bearer token for that user."""

    async def post(self) -> None:
        fields = v.parse_fields(self.json_object(), LOGIN_RULES)
        login = await self.portal.login(fields["user_id"], fields["password"])
        if login["retry_after"]:
            seconds = login["retry_after"]
            raise ApiError(429, [f"user_id: too many failed logins; try again in {seconds} s"],
                           {"Retry-After": str(seconds)})
        if not login["ok"]:
            raise ApiError(401, [LOGIN_FAILED], {"WWW-Authenticate": REALM})
        token, expires_at = self.auth.tokens.issue(fields["user_id"])
        self.send_json({"token": token, "expires_at": expires_at}, status=201)


class IndexHandler(JsonHandler):
    """`GET /` and `GET /public-api`: where to start, for a person or a client that
    guesses the root (both were 404s with no pointer to the docs)."""

    def get(self) -> None:
        info = load_document("public")["info"]
        self.send_json({"name": info["title"], "version": info["version"], "links": {
            "docs": "/public-api/docs", "openapi": "/public-api/openapi.json",
            "listings": "/public-api/listings"}})


def make_app(portal: Portal, auth: Auth | None = None, cors: str | Iterable[str] = (),
             **settings: Any) -> Application:
    """The routing table; `settings` are those of `json_application` (debug, limits).
    Without `auth`, tokens are signed with a random secret of this app's own. `cors`: the
    origins whose web pages may call it (`--cors_origins`); none by default."""
    deps = {"portal": portal, "auth": auth or Auth()}
    return json_application([
        (r"/", IndexHandler),
        (r"/public-api", IndexHandler),
        (r"/public-api/tokens", TokensHandler, deps),
        (r"/public-api/listings", ListingsHandler, deps),
        (r"/public-api/listings/([^/]+)", ListingHandler, deps),
        (r"/public-api/listings/([^/]+)/price-history", PriceHistoryHandler, deps),
        (r"/public-api/users", UsersHandler, deps),
        (r"/public-api/users/([^/]+)", UserHandler, deps),
        (r"/ping", PingHandler),
        (r"/ready", ReadyHandler, {"check": portal.check}),
        openapi_route("/public-api/openapi.json", "public"),
        *docs_routes("/public-api/docs", "/public-api/openapi.json", "public"),
    ], cors=cors, **settings)


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
    options.define("auth_secret", default="",
                   help="secret (32 bytes or more) signing the bearer tokens; every public API"
                        " process behind one address needs the same (default: $AUTH_SECRET;"
                        " empty: a random one per start, so tokens die with the process)")
    options.define("token_ttl", default=DEFAULT_TTL, type=int,
                   help="seconds a bearer token is valid")
    options.define("require_auth", default=False, type=bool,
                   help="every public write (listing create, PATCH, DELETE) needs a token;"
                        " sign-up and login stay open")
    options.define("cors_origins", default="",
                   help="origins (scheme://host:port, comma-separated) whose web pages may call"
                        " this API from a browser, or '*' for any; empty: CORS off, browsers"
                        " refuse every cross-origin call (the Procfile allows the example"
                        " page's origin)")
    parse(options, argv, "public")
    try:
        cors = cors_origins(options.cors_origins)
    except ValueError as error:
        raise SystemExit(str(error))
    if not options.auth_secret:
        options.auth_secret = random_secret()
        log.warning("no --auth_secret nor $AUTH_SECRET: tokens are signed with a random secret"
                    " and die with this process")
    auth = Auth(Tokens(options.auth_secret, options.token_ttl), options.require_auth)
    try:
        await serve(make_app(make_portal(options), auth, cors, **app_settings(options)), options)
    finally:
        http_client().close()
        log.info("closed the downstream HTTP client")


if __name__ == "__main__":
    run(main())
