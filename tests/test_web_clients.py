"""What a web client needs (issue #14), one rule at a time: CORS on the public API only,
gzip when asked for and big enough, 308 from a trailing slash, the index at / and /public-api.

The browser itself is in tests/test_browser.py; these talk HTTP and read every header.
"""
from __future__ import annotations

import gzip
import re

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPResponse
from tornado.routing import PathMatches
from tornado.web import RequestHandler

from common.openapi import DOCS_ASSETS
from common.web import cors_origins
from tests.support.apps import Served
from tests.support.data import create_listing, create_user
from tests.support.http import call

ALLOWED = "http://127.0.0.1:18500"  # in conftest's CORS_ORIGINS
OTHER = "http://127.0.0.1:18501"  # not in it: another port is another origin


async def fetch(url: str, method: str = "GET", headers: dict[str, str] | None = None,
                body: bytes | None = None) -> HTTPResponse:
    """The raw answer: no redirect followed, nothing decompressed, no header added."""
    return await AsyncHTTPClient().fetch(
        url, method=method, headers=headers or {}, body=body, raise_error=False,
        follow_redirects=False, decompress_response=False, allow_nonstandard_methods=True)


def cors_headers(response: HTTPResponse) -> dict[str, str]:
    return {name: value for name, value in response.headers.get_all()
            if name.lower().startswith("access-control-")}


def vary(response: HTTPResponse) -> set[str]:
    return {item.strip() for value in response.headers.get_list("Vary")
            for item in value.split(",")}


def public_routes(served: Served) -> list[tuple[str, type]]:
    """Each route of the app as a concrete path (every group filled with 1), and its handler."""
    routes = []
    for rule in served.app.wildcard_router.rules:
        assert isinstance(rule.matcher, PathMatches)
        pattern = rule.matcher.regex.pattern.rstrip("$")
        path = re.sub(r"\([^)]*\)", "1", pattern).replace("\\", "")
        if "swagger" in pattern:
            path = "/public-api/docs/swagger-ui.css"
        routes.append((path, rule.target))
    return routes


def own_methods(handler: type) -> list[str]:
    methods = ["GET", "HEAD", "POST", "DELETE", "PATCH", "PUT"]
    served = [m for m in methods
              if getattr(handler, m.lower()) is not getattr(RequestHandler, m.lower())]
    if "GET" not in served:
        served = [m for m in served if m != "HEAD"]
    return served


# --- CORS ----------------------------------------------------------------------------------

@pytest.mark.gen_test
async def test_a_preflight_on_every_public_route_names_that_routes_methods(
        public_cors: Served) -> None:
    routes = public_routes(public_cors)
    assert len(routes) >= 10
    # With a trailing slash too: the request itself would get a 308, but a browser gives up
    # on a redirected preflight, so the preflight is answered as the route's own.
    slashed = [(path + "/", handler) for path, handler in routes if path != "/"]
    for path, handler in routes + slashed:
        answer = await fetch(public_cors.url + path, "OPTIONS", {
            "Origin": ALLOWED, "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": "authorization, content-type, if-match"})
        assert answer.code == 204, (path, answer.body)
        headers = cors_headers(answer)
        assert headers["Access-Control-Allow-Origin"] == ALLOWED, path
        assert headers["Access-Control-Allow-Methods"].split(", ") == own_methods(handler), path
        allowed = {h.strip().lower() for h in headers["Access-Control-Allow-Headers"].split(",")}
        assert {"authorization", "content-type", "x-request-id", "if-none-match",
                "if-match"} <= allowed, path
        assert int(headers["Access-Control-Max-Age"]) > 0, path
        assert "Origin" in vary(answer), path
        assert answer.headers["Allow"].split(", ") == [*own_methods(handler), "OPTIONS"], path
        assert not answer.body, path


@pytest.mark.gen_test
async def test_every_answer_to_an_allowed_origin_carries_cors_errors_included(
        public_cors: Served) -> None:
    user = await create_user(public_cors)
    await create_listing(public_cors, user["id"])
    base = public_cors.url
    for method, path, body, status in (
            ("GET", "/public-api/listings", None, 200),
            ("GET", "/public-api/listings/1", None, 200),
            ("GET", "/public-api/nowhere", None, 404),  # an unknown route
            ("PATCH", "/public-api/listings/1", b'{"price": 5}', 401),  # no token
            ("DELETE", "/public-api/users/1", None, 405),
            ("GET", "/public-api/listings?page_size=0", None, 400),
            ("GET", "/public-api/listings/", None, 308)):
        answer = await fetch(base + path, method, {"Origin": ALLOWED,
                                                   "Content-Type": "application/json"}, body)
        assert answer.code == status, (path, answer.body)
        headers = cors_headers(answer)
        assert headers.get("Access-Control-Allow-Origin") == ALLOWED, (path, headers)
        exposed = {h.strip() for h in headers["Access-Control-Expose-Headers"].split(",")}
        assert {"ETag", "X-Request-ID", "Retry-After", "WWW-Authenticate",
                "Location"} <= exposed, path
        assert "Origin" in vary(answer), path
        assert "Access-Control-Allow-Credentials" not in headers, path  # no cookies: not needed


@pytest.mark.gen_test
async def test_an_origin_not_allowed_gets_no_cors_header_and_no_error_of_its_own(
        public_cors: Served) -> None:
    for origin in (OTHER, "null", "http://127.0.0.1:18500.evil.example", ALLOWED + "/"):
        preflight = await fetch(public_cors.url + "/public-api/listings", "OPTIONS", {
            "Origin": origin, "Access-Control-Request-Method": "POST"})
        assert preflight.code == 204, origin
        assert cors_headers(preflight) == {}, origin
        assert "Origin" in vary(preflight)
        answer = await fetch(public_cors.url + "/public-api/listings", "GET", {"Origin": origin})
        assert answer.code == 200, origin
        assert cors_headers(answer) == {}, origin
        assert "Origin" in vary(answer)  # a cache must not hand it to an allowed origin
    # Without Origin (curl, the mobile app): the same answer, no CORS header.
    plain = await fetch(public_cors.url + "/public-api/listings")
    assert plain.code == 200 and cors_headers(plain) == {}


@pytest.mark.gen_test
async def test_the_internal_services_and_a_public_api_without_the_option_send_no_cors(
        listing_svc: Served, user_svc: Served, public: Served) -> None:
    for url in (listing_svc.url + "/listings", user_svc.url + "/users/1",
                public.url + "/public-api/listings"):
        for method in ("GET", "OPTIONS"):
            answer = await fetch(url, method, {"Origin": ALLOWED,
                                               "Access-Control-Request-Method": "GET"})
            assert cors_headers(answer) == {}, (url, method)
            assert "Origin" not in vary(answer), (url, method)
            if method == "OPTIONS":
                assert answer.code == 405 and "OPTIONS" not in answer.headers["Allow"], url


@pytest.mark.gen_test
async def test_any_origin_is_one_answer_for_all(public_any_origin: Served) -> None:
    url = public_any_origin.url
    for headers in ({"Origin": OTHER}, {}):
        answer = await fetch(url + "/public-api/listings", "GET", headers)
        assert cors_headers(answer)["Access-Control-Allow-Origin"] == "*"
        assert "Origin" not in vary(answer)
        assert "Access-Control-Allow-Credentials" not in cors_headers(answer)
    preflight = await fetch(url + "/public-api/users/1", "OPTIONS", {
        "Origin": OTHER, "Access-Control-Request-Method": "PATCH"})
    assert preflight.code == 204
    assert cors_headers(preflight)["Access-Control-Allow-Methods"] == "GET, HEAD, PATCH"


def test_the_option_takes_origins_or_a_star_and_refuses_what_never_matches() -> None:
    assert cors_origins("") == frozenset()
    assert cors_origins(" http://a.example , https://b.example:8443") == {
        "http://a.example", "https://b.example:8443"}
    assert cors_origins("*") == {"*"}
    for wrong in ("http://a.example/", "a.example", "http://a.example/path", "*,http://a.b"):
        with pytest.raises(ValueError):
            cors_origins(wrong)


# --- compression ---------------------------------------------------------------------------

@pytest.mark.gen_test
async def test_a_big_page_is_gzipped_when_asked_and_only_then(public: Served) -> None:
    user = await create_user(public, "A name long enough to make the page pass a kilobyte")
    for _ in range(12):
        await create_listing(public, user["id"])
    url = public.url + "/public-api/listings?page_size=12"
    plain = await fetch(url)
    assert len(plain.body) > 1024 and "Content-Encoding" not in plain.headers
    zipped = await fetch(url, headers={"Accept-Encoding": "gzip, deflate, br"})
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(zipped.body) == plain.body
    assert len(zipped.body) < len(plain.body) / 3
    assert int(zipped.headers["Content-Length"]) == len(zipped.body)
    for answer in (plain, zipped):
        assert "Accept-Encoding" in vary(answer)
    # Its ETag is the same, and If-None-Match still answers 304 over gzip.
    again = await fetch(url, headers={"Accept-Encoding": "gzip",
                                      "If-None-Match": zipped.headers["Etag"]})
    assert again.code == 304 and not again.body


@pytest.mark.gen_test
async def test_a_small_answer_is_not_gzipped(public: Served) -> None:
    await create_user(public)
    for path in ("/ping", "/public-api/users/1", "/public-api/nowhere"):
        answer = await fetch(public.url + path, headers={"Accept-Encoding": "gzip"})
        assert "Content-Encoding" not in answer.headers, path
        assert "Accept-Encoding" in vary(answer), path


@pytest.mark.gen_test
async def test_the_docs_assets_and_the_document_are_gzipped(public: Served) -> None:
    # (The page itself is under 1 KB: not worth it.)
    for path in ("/public-api/openapi.json",
                 *(f"/public-api/docs/{asset}" for asset in DOCS_ASSETS if "png" not in asset)):
        plain = await fetch(public.url + path)
        zipped = await fetch(public.url + path, headers={"Accept-Encoding": "gzip"})
        assert zipped.code == 200 and zipped.headers.get("Content-Encoding") == "gzip", path
        assert gzip.decompress(zipped.body) == plain.body, path
    bundle = await fetch(public.url + "/public-api/docs/swagger-ui-bundle.js",
                         headers={"Accept-Encoding": "gzip"})
    assert len(bundle.body) < 600_000  # 1.5 MB raw


# --- 308 from a trailing slash -------------------------------------------------------------

@pytest.mark.gen_test
async def test_a_trailing_slash_is_a_308_to_the_route_query_kept(
        public: Served, listing_svc: Served, user_svc: Served) -> None:
    for base, path, method in (
            (public.url, "/public-api/listings/?page_num=2&page_size=5", "GET"),
            (public.url, "/public-api/listings//", "POST"),
            (public.url, "/public-api/users/1/", "PATCH"),
            (public.url, "/public-api/", "GET"),
            (public.url, "/public-api/docs/", "HEAD"),
            (listing_svc.url, "/listings/?page_size=1", "GET"),
            (user_svc.url, "/users/7/", "GET")):
        answer = await fetch(base + path, method, body=b"{}" if method in ("POST",
                                                                           "PATCH") else None)
        target = re.sub(r"/+(\?|$)", r"\1", path)
        assert answer.code == 308, (path, answer.code)
        assert answer.headers["Location"] == target, path
        if method != "HEAD":
            assert answer.headers["Content-Type"] == "application/json; charset=UTF-8"
            assert answer.body == b'{"location":"' + target.encode() + b'"}', path


@pytest.mark.gen_test
async def test_a_trailing_slash_on_no_route_is_still_a_404_and_followed_308s_land(
        public: Served) -> None:
    for path in ("/nowhere/", "/public-api/listing/", "/public-api/listings/1/x/"):
        assert (await fetch(public.url + path)).code == 404, path
    followed = await call("GET", public.url + "/public-api/listings/?page_size=3")
    assert followed.status == 200 and followed.body == {"result": True, "listings": []}


# --- the index -----------------------------------------------------------------------------

@pytest.mark.gen_test
async def test_the_index_names_the_api_and_links_to_what_exists(public: Served) -> None:
    for path in ("/", "/public-api"):
        answer = await call("GET", public.url + path)
        assert answer.status == 200, path
        assert answer.body["name"] == "Property portal public API"
        assert re.fullmatch(r"\d+\.\d+\.\d+", answer.body["version"])
        assert set(answer.body["links"]) == {"docs", "openapi", "listings"}
        for link in answer.body["links"].values():
            assert (await fetch(public.url + link)).code == 200, link
