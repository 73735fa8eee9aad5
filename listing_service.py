"""Listing service: the homes users list to rent or sell, in its own SQLite file.

    python listing_service.py --port=6000 --db_path=listings.db

Internal: it listens on loopback by default and speaks form-encoded bodies, JSON answers.
"""
from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

import aiosqlite
from tornado.web import Application

from common import validation as v
from common.db import insert_many, open_database
from common.server import app_settings, parse, run, serve, service_options
from common.web import JsonHandler, PingHandler, ReadyHandler, json_application

SCHEMA = """
CREATE TABLE IF NOT EXISTS listings (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id      INTEGER NOT NULL,
    listing_type TEXT    NOT NULL CHECK (listing_type IN ('rent', 'sale')),
    price        INTEGER NOT NULL CHECK (price > 0),
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
-- One index per query shape: the whole list, and one user's list, both newest first.
CREATE INDEX IF NOT EXISTS listings_newest ON listings (created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS listings_by_user_newest
    ON listings (user_id, created_at DESC, id DESC);
"""
COLUMNS = "id, user_id, listing_type, price, created_at, updated_at"


def now_us() -> int:
    return time.time_ns() // 1000


class ListingStore:
    """All SQL of the listing service. Rows come back as dicts in the contract's key order."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self.db = db

    @classmethod
    async def open(cls, path: str) -> ListingStore:
        return cls(await open_database(path, SCHEMA))

    async def close(self) -> None:
        await self.db.close()

    async def create(self, user_id: int, listing_type: str, price: int) -> dict[str, Any]:
        stamp = now_us()
        # One trip to the database thread, not three (execute, fetchone, close): the bench's POST.
        rows = await self.db.execute_fetchall(
            f"INSERT INTO listings (user_id, listing_type, price, created_at, updated_at)"
            f" VALUES (?, ?, ?, ?, ?) RETURNING {COLUMNS}",
            (user_id, listing_type, price, stamp, stamp),
        )
        return dict(rows[0])

    async def bulk_create(self, rows: Iterable[tuple[int, str, int, int]]) -> None:
        """Insert (user_id, listing_type, price, created_at) rows at once, for seeding."""
        await insert_many(
            self.db,
            "INSERT INTO listings (user_id, listing_type, price, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?)",
            ((user_id, kind, price, stamp, stamp) for user_id, kind, price, stamp in rows))

    async def page(self, page: v.Page, user_id: int | None = None) -> list[dict[str, Any]]:
        where, params = ("WHERE user_id = ?", [user_id]) if user_id is not None else ("", [])
        rows = await self.db.execute_fetchall(
            f"SELECT {COLUMNS} FROM listings {where}"
            " ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?",
            (*params, page.size, page.offset),
        )
        return [dict(row) for row in rows]

    async def count(self) -> int:
        rows = await self.db.execute_fetchall("SELECT count(*) FROM listings")
        return rows[0][0]

    async def check(self) -> None:
        """Raise unless the table can be read."""
        await self.db.execute_fetchall("SELECT id FROM listings LIMIT 1")


CREATE_RULES = {"user_id": v.integer(1), "listing_type": v.listing_type, "price": v.integer(1)}
LIST_FILTERS = {"user_id": v.integer(1)}


class ListingsHandler(JsonHandler):
    def initialize(self, store: ListingStore) -> None:
        self.store = store

    async def get(self) -> None:
        page, filters = v.parse_page_query(self.query_fields(), LIST_FILTERS)
        listings = await self.store.page(page, filters.get("user_id"))
        self.render({"result": True, "listings": listings})

    async def post(self) -> None:
        fields = v.parse_fields(self.form_fields(), CREATE_RULES)
        listing = await self.store.create(**fields)
        self.render({"result": True, "listing": listing}, status=201)


def make_app(store: ListingStore, **settings: Any) -> Application:
    """The routing table; `settings` are those of `json_application` (debug, limits, token)."""
    deps = {"store": store}
    return json_application([
        (r"/listings", ListingsHandler, deps),
        (r"/ping", PingHandler),
        (r"/listings/ping", PingHandler),
        (r"/ready", ReadyHandler, {"check": store.check}),
    ], **settings)


async def main(argv: Sequence[str] | None = None) -> None:
    options = service_options(port=6000, address="127.0.0.1")
    options.define("db_path", default="listings.db", help="path of the SQLite file")
    parse(options, argv, "listing")
    store = await ListingStore.open(options.db_path)
    try:
        await serve(make_app(store, **app_settings(options)), options)
    finally:
        await store.close()


if __name__ == "__main__":
    run(main())
