"""The real apps, built by their own `make_app`, listening on loopback ports in the test's loop."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop
from tornado.testing import bind_unused_port
from tornado.web import Application

import public_api
from common.downstream import ServiceClient


@dataclass
class Served:
    """An app listening on a loopback port; `requests` counts what it received, by path.

    `public` marks the public API, whose creates take JSON under /public-api (tests.support.data).
    """

    app: Application
    url: str
    server: HTTPServer
    requests: list[str] = field(default_factory=list)
    public: bool = False


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


def make_public(io_loop: IOLoop, listing_url: str, user_url: str, cors: str = "",
                auth: public_api.Auth | None = None, **client: Any) -> Served:
    """The public API in front of the given service URLs (real ones, or a test's fake);
    `cors`: its --cors_origins (none by default); `auth`: its token settings (a random
    secret by default)."""
    portal = public_api.Portal(ServiceClient("listing", listing_url, **client),
                               ServiceClient("user", user_url, **client))
    served = serve_app(io_loop, public_api.make_app(portal, auth, cors=cors))
    served.public = True
    return served
