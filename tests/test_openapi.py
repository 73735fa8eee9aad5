"""The OpenAPI documents: valid, served, in step with each app's routing table both ways,
with schemas, error responses and examples that hold; and the docs page works offline."""
from __future__ import annotations

import json
import re
from typing import Any

import jsonschema_rs
import pytest
from schemathesis.specs.openapi.definitions import OPENAPI_31
from tornado.httpclient import AsyncHTTPClient
from tornado.routing import PathMatches
from tornado.web import Application, RequestHandler

import listing_service
import public_api
import user_service
from common.openapi import DOCS_ASSETS, DOCUMENTS, DocsAssetHandler, load_document
from common.web import JsonHandler
from tests.support.apps import Served
from tests.support.http import call

HTTP_METHODS = ("get", "head", "post", "delete", "patch", "put", "options")
# The data endpoints, whose operations must document their errors; not health or docs.
DATA_PATHS = re.compile(r"^/(public-api/)?(listings|users)(/\{id\})?$")


def app_of(name: str) -> Application:
    """Each app built by its own factory; the routing table needs no running dependency."""
    if name == "listing":
        store = listing_service.ListingStore(None)  # type: ignore[arg-type]  # routes only, no db
        return listing_service.make_app(store)
    if name == "user":
        users = user_service.UserStore(None)  # type: ignore[arg-type]  # routes only, no db
        return user_service.make_app(users)
    portal = public_api.Portal(None, None)  # type: ignore[arg-type]  # routes only, no services
    return public_api.make_app(portal)


def routed_operations(app: Application) -> set[tuple[str, str]]:
    """(path template, method) for every route of `app`; each regex group becomes {}.
    The docs page's own files (Swagger UI's script, style sheet and icon) are not API
    operations: the document leaves them out."""
    operations = set()
    for rule in app.wildcard_router.rules:
        assert isinstance(rule.matcher, PathMatches), rule  # every route is a path pattern
        path = re.sub(r"\([^)]*\)", "{}", rule.matcher.regex.pattern.rstrip("$"))
        handler = rule.target
        if handler is DocsAssetHandler:
            continue
        for method in HTTP_METHODS:
            if getattr(handler, method) is not getattr(RequestHandler, method):
                operations.add((path, method))
        # JsonHandler's own head() is GET without the body where GET is served (the GET
        # documents both) and a 405 elsewhere: no operation of its own.
        if handler.head is JsonHandler.head:
            operations.discard((path, "head"))
        # OPTIONS is CORS's preflight (and a 405 with CORS off) on every route alike: the
        # document says so once, in its description, not as an operation per route.
        if handler.options is JsonHandler.options:
            operations.discard((path, "options"))
    return operations


def documented_operations(document: dict) -> set[tuple[str, str]]:
    return {(re.sub(r"\{[^}]+\}", "{}", path), method)
            for path, item in document["paths"].items()
            for method in item if method in HTTP_METHODS}


def operations(document: dict) -> list[tuple[str, str, dict]]:
    return [(path, method, op) for path, item in document["paths"].items()
            for method, op in item.items() if method in HTTP_METHODS]


def resolve(document: dict, node: dict) -> dict:
    while "$ref" in node:
        kind, name = node["$ref"].split("/")[-2:]
        node = document["components"][kind][name]
    return node


def check_example(document: dict, schema: dict, example: Any, where: str) -> None:
    """`example` must satisfy `schema`, whose $refs resolve inside `document`."""
    validator = jsonschema_rs.Draft202012Validator({**schema, "components": document["components"]})
    errors = [error.message for error in validator.iter_errors(example)]
    assert not errors, (where, errors)


NAMES = ["listing", "user", "public"]


@pytest.mark.parametrize("name", NAMES)
def test_document_is_valid_openapi_3_1(name: str) -> None:
    document = load_document(name)
    assert document["openapi"] == "3.1.0"
    validator = jsonschema_rs.validator_for(OPENAPI_31)
    errors = [error.message for error in validator.iter_errors(document)]
    assert not errors


@pytest.mark.parametrize("name", NAMES)
def test_every_route_is_documented_and_every_documented_route_exists(name: str) -> None:
    routed, documented = routed_operations(app_of(name)), documented_operations(load_document(name))
    assert routed - documented == set(), "routes missing from the document"
    assert documented - routed == set(), "documented routes the app does not have"
    assert ("/openapi.json" if name != "public" else "/public-api/openapi.json", "get") in routed
    assert ("/ping", "get") in routed


def test_the_docs_assets_are_served_but_not_documented_as_operations() -> None:
    app, document = app_of("public"), load_document("public")
    assets = [rule for rule in app.wildcard_router.rules if rule.target is DocsAssetHandler]
    assert len(assets) == 1 and isinstance(assets[0].matcher, PathMatches)
    assert all(re.escape(asset) in assets[0].matcher.regex.pattern for asset in DOCS_ASSETS)
    assert not [path for path in document["paths"] if path.startswith("/public-api/docs/")]


def test_try_it_out_prefills_no_optional_parameter() -> None:
    """Swagger UI fills "Try it out" with each parameter's `example`: an optional filter
    with one would be sent by every try, unless the user cleared it."""
    document = load_document("public")
    for path, _, op in operations(document):
        for param in op.get("parameters", []) + document["paths"][path].get("parameters", []):
            param = resolve(document, param)
            if not param.get("required"):
                assert "example" not in param and "examples" not in param, (path, param["name"])


@pytest.mark.parametrize("name", NAMES)
def test_operations_have_schemas_errors_and_examples_that_hold(name: str) -> None:
    document = load_document(name)
    for path, method, op in operations(document):
        where = f"{method.upper()} {path}"
        assert op.get("summary") and op.get("operationId"), where
        if "requestBody" in op:
            for media in op["requestBody"]["content"].values():
                assert "schema" in media and "example" in media, where
                check_example(document, media["schema"], media["example"], where + " request")
        responses = op["responses"]
        assert any(code.startswith("2") for code in responses), where
        if DATA_PATHS.match(path):
            errors = [code for code in responses if code.startswith("4")]
            assert "400" in errors, where
            if "{id}" in path:
                assert "404" in errors, where
        for code, response in responses.items():
            for media_type, media in resolve(document, response).get("content", {}).items():
                assert "schema" in media, (where, code)
                if media_type == "application/json":
                    assert "example" in media, (where, code)
                    check_example(document, media["schema"], media["example"], f"{where} {code}")
                if code.startswith(("4", "5")):
                    assert media["schema"] == {"$ref": "#/components/schemas/Error"}, (where, code)


@pytest.mark.parametrize("name", NAMES)
def test_schema_examples_hold(name: str) -> None:
    document = load_document(name)
    for schema_name, schema in document["components"]["schemas"].items():
        if "example" in schema:
            check_example(document, schema, schema["example"], schema_name)


@pytest.mark.gen_test
async def test_each_service_serves_its_document(listing_svc: Served, user_svc: Served,
                                                public: Served) -> None:
    for served, url, name in ((listing_svc, "/openapi.json", "listing"),
                              (user_svc, "/openapi.json", "user"),
                              (public, "/public-api/openapi.json", "public")):
        reply = await call("GET", served.url + url)
        on_disk = json.loads((DOCUMENTS / f"{name}.json").read_text(encoding="utf-8"))
        assert (reply.status, reply.body) == (200, on_disk)
    assert (await call("GET", public.url + "/openapi.json")).status == 404


@pytest.mark.gen_test
async def test_docs_page_and_its_assets_come_from_the_app(public: Served) -> None:
    client = AsyncHTTPClient()
    page = await client.fetch(public.url + "/public-api/docs", raise_error=False)
    assert page.code == 200
    assert page.headers["Content-Type"] == "text/html; charset=UTF-8"
    html = page.body.decode()
    assert "http://" not in html and "https://" not in html
    assert 'url: "/public-api/openapi.json"' in html
    assert "validatorUrl: null" in html
    # Every file the page loads comes from this app (none protocol-relative, none elsewhere).
    referenced = re.findall(r'(?:src|href|url)[=:] *"([^"]+)"', html)
    assert referenced and all(url.startswith("/public-api/") for url in referenced), referenced
    referenced.remove("/public-api/openapi.json")
    assert sorted(referenced) == sorted(f"/public-api/docs/{asset}" for asset in DOCS_ASSETS)
    for url in referenced:
        asset = await client.fetch(public.url + url, raise_error=False)
        assert asset.code == 200, url
        assert asset.headers["Content-Type"] == DOCS_ASSETS[url.rsplit("/", 1)[1]]
        assert len(asset.body) > 1000, url
    bundle = await client.fetch(public.url + "/public-api/docs/swagger-ui-bundle.js")
    assert b"SwaggerUIBundle" in bundle.body


@pytest.mark.gen_test
async def test_docs_errors_stay_json(public: Served) -> None:
    for method, path in (("POST", "/public-api/docs"), ("POST", "/public-api/docs/swagger-ui.css"),
                         ("GET", "/public-api/docs/swagger-editor.js"),
                         ("GET", "/public-api/docs/../openapi.json")):
        reply = await call(method, public.url + path, body=b"" if method == "POST" else None)
        assert reply.status in (404, 405), (method, path)
        assert reply.body["result"] is False and reply.body["errors"], (method, path)
