"""The floor of a page on this stack: the same three hops with nothing behind them.

    python bench/floor.py --role=data --port=8801
    python bench/floor.py --role=public --port=8800 --listing_url=... --user_url=...

`make bench` starts two data processes and one public process of this script and loads the
public one like the real page. Each is a Tornado app on uvloop, as the services are; the
public one fetches and stitches the page with the public API's own `Portal`, through the
project's downstream client (keep-alive, llhttp, orjson). What it leaves out is everything
else a real page does: no database (the data processes answer a fixed page), no access log,
no request id, no token, no validation of the query (always a page of ten). Its ratio to the
hello-world ceiling is therefore what this machine allows a page of three Tornado processes
and two calls; the real page's ratio to it is what our own work per page costs.
"""
from __future__ import annotations

import asyncio

import orjson
from tornado.options import OptionParser
from tornado.web import Application, RequestHandler

from common import validation as v
from common.downstream import ServiceClient
from common.server import run
from public_api import Portal

STAMP = 1_700_000_000_000_000
# What the services answer for a page: ten listings of ten owners, and those ten users.
LISTINGS = orjson.dumps({"result": True, "listings": [
    {"id": 100 - n, "user_id": n + 1, "listing_type": "rent", "price": 120_000 + n,
     "created_at": STAMP + n, "updated_at": STAMP + n} for n in range(10)]})
USERS = orjson.dumps({"result": True, "users": [
    {"id": n + 1, "name": f"User number {n + 1}", "created_at": STAMP, "updated_at": STAMP}
    for n in range(10)]})


class FixedAnswer(RequestHandler):
    """A data process: GET /listings... and GET /users... answer the fixed page; /ping too."""

    def initialize(self, answer: bytes) -> None:
        self.answer = answer

    def get(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(self.answer)


class Page(RequestHandler):
    """The public process: one page of ten, fetched and stitched as the public API does."""

    def initialize(self, portal: Portal) -> None:
        self.portal = portal

    async def get(self) -> None:
        page = await self.portal.listings_page(v.Page(size=10))
        self.set_header("Content-Type", "application/json")
        self.finish(orjson.dumps({"result": True, "listings": page}))


def make_app(role: str, listing_url: str = "", user_url: str = "") -> Application:
    ping = (r"/ping", FixedAnswer, {"answer": b'{"result":true}'})
    if role == "data":
        return Application([ping, (r"/listings", FixedAnswer, {"answer": LISTINGS}),
                            (r"/users", FixedAnswer, {"answer": USERS})],
                           log_function=lambda handler: None)
    portal = Portal(ServiceClient("listing", listing_url), ServiceClient("user", user_url))
    return Application([ping, (r"/public-api/listings", Page, {"portal": portal})],
                       log_function=lambda handler: None)


async def main() -> None:
    options = OptionParser()
    options.define("role", default="data", help="'data' or 'public'")
    options.define("port", default=8800, type=int)
    options.define("listing_url", default="")
    options.define("user_url", default="")
    options.parse_command_line()
    make_app(options.role, options.listing_url, options.user_url).listen(
        options.port, "127.0.0.1")
    await asyncio.Event().wait()  # until the bench sends SIGTERM


if __name__ == "__main__":
    run(main())
