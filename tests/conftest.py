"""Shared fixtures: the real apps, built by their own `make_app`, on loopback ports.

Every service gets a fresh SQLite file under pytest's `tmp_path`; nothing touches the
working tree. All three apps run in the test's one IOLoop (pytest-tornado's `io_loop`), so a
test can hold the listing, user and public API apps at once and talk to them over real HTTP.
"""
from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis.configuration import set_hypothesis_home_dir
from tornado.httpclient import AsyncHTTPClient, HTTPResponse
from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop
from tornado.testing import bind_unused_port
from tornado.web import Application

import listing_service
import public_api
import user_service
from common.downstream import ServiceClient, configure_http_client


_HYPOTHESIS_HOME = pytest.StashKey[str]()


def pytest_configure(config: pytest.Config) -> None:
    # Hypothesis (schemathesis's engine) writes caches to ./.hypothesis, some while tests are
    # collected: send them to a temp dir first, so that no test writes into the working tree.
    config.stash[_HYPOTHESIS_HOME] = tempfile.mkdtemp(prefix="hypothesis-")
    set_hypothesis_home_dir(config.stash[_HYPOTHESIS_HOME])


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(config.stash.get(_HYPOTHESIS_HOME, ""), ignore_errors=True)


@dataclass
class Served:
    """An app listening on a loopback port; `requests` counts what it received, by path."""

    app: Application
    url: str
    server: HTTPServer
    requests: list[str] = field(default_factory=list)


def serve_app(io_loop: IOLoop, app: Application) -> Served:
    """Listen on a free loopback port; every request's path is recorded in `.requests`."""
    async def listen() -> Served:
        sock, port = bind_unused_port()
        server = HTTPServer(app)
        server.add_sockets([sock])
        return Served(app, f"http://127.0.0.1:{port}", server)

    served = io_loop.run_sync(listen)
    log_request = app.settings["log_function"]

    def record(handler: Any) -> None:
        served.requests.append(handler.request.uri)
        log_request(handler)

    app.settings["log_function"] = record
    return served


def stop_app(io_loop: IOLoop, served: Served) -> None:
    served.server.stop()
    io_loop.run_sync(served.server.close_all_connections)


@pytest.fixture(autouse=True, scope="session")
def _http_client_configured() -> None:
    configure_http_client()


@pytest.fixture
def listing_store(io_loop: IOLoop, tmp_path: Any) -> Iterator[listing_service.ListingStore]:
    store = io_loop.run_sync(lambda: listing_service.ListingStore.open(str(tmp_path / "l.db")))
    yield store
    io_loop.run_sync(store.close)


@pytest.fixture
def user_store(io_loop: IOLoop, tmp_path: Any) -> Iterator[user_service.UserStore]:
    store = io_loop.run_sync(lambda: user_service.UserStore.open(str(tmp_path / "u.db")))
    yield store
    io_loop.run_sync(store.close)


@pytest.fixture
def listing_svc(io_loop: IOLoop, listing_store: listing_service.ListingStore) -> Iterator[Served]:
    served = serve_app(io_loop, listing_service.make_app(listing_store))
    yield served
    stop_app(io_loop, served)


@pytest.fixture
def user_svc(io_loop: IOLoop, user_store: user_service.UserStore) -> Iterator[Served]:
    served = serve_app(io_loop, user_service.make_app(user_store))
    yield served
    stop_app(io_loop, served)


def make_public(io_loop: IOLoop, listing_url: str, user_url: str, **client: Any) -> Served:
    """The public API in front of the given service URLs (real ones, or a test's fake)."""
    portal = public_api.Portal(ServiceClient("listing", listing_url, **client),
                               ServiceClient("user", user_url, **client))
    return serve_app(io_loop, public_api.make_app(portal))


@pytest.fixture
def public(io_loop: IOLoop, listing_svc: Served, user_svc: Served) -> Iterator[Served]:
    served = make_public(io_loop, listing_svc.url, user_svc.url)
    yield served
    stop_app(io_loop, served)


@dataclass
class Reply:
    status: int
    body: Any
    headers: Any


async def call(method: str, url: str, *, json_body: Any = None, form: dict | None = None,
               body: bytes | str | None = None, headers: dict | None = None) -> Reply:
    """One real HTTP request; the answer must be JSON (or empty for 204) whatever its status."""
    headers = dict(headers or {})
    if json_body is not None:
        body = json.dumps(json_body)
        headers.setdefault("Content-Type", "application/json")
    elif form is not None:
        body = urlencode(form)
        headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
    if body is None and method in ("POST", "PUT", "PATCH"):
        body = b""
    response: HTTPResponse = await AsyncHTTPClient().fetch(
        url, method=method, body=body, headers=headers, raise_error=False,
        allow_nonstandard_methods=True, request_timeout=20)
    if response.code == 204:
        return Reply(204, None, response.headers)
    assert response.headers.get("Content-Type") == "application/json; charset=UTF-8", response.body
    return Reply(response.code, json.loads(response.body), response.headers)
