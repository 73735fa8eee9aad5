"""Listing service: the homes users list to rent or sell, in its own SQLite file.

    python listing_service.py --port=6000 --db_path=listings.db

Internal: it listens on loopback by default and speaks form-encoded bodies, JSON answers.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from tornado.web import Application

from common import validation as v
from common.db import SqliteStore, insert_many, json_object_sql, now_us
from common.errors import NotFound
from common.openapi import openapi_route
from common.server import app_settings, data_service_options, parse, run, serve
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
-- A listing_type filter reads its rows already in list order, so a page stops at LIMIT.
-- With user_id too, one user's listings (few) come from the index above and are filtered.
CREATE INDEX IF NOT EXISTS listings_by_type_newest
    ON listings (listing_type, created_at DESC, id DESC);
-- A price range (min_price and max_price) is a range of this index, then sorted newest
-- first: the cost follows the number of listings in the range, not the page size. A single
-- bound usually matches most listings, so SQLite rightly walks listings_newest in order and
-- skips the rest, stopping at the page. A (listing_type, price) index would not serve a price
-- range alone. Each index costs every write a little: hence none per combination of filters.
CREATE INDEX IF NOT EXISTS listings_by_price ON listings (price);
"""
# Version 1 (issue #16): every price a listing has had. Run once per file by
# common.db.upgrade, in one transaction with the version number; plain SQL, one statement
# per entry, so the same steps port to PostgreSQL (whose triggers call a function instead).
#
# Why triggers: the service shares ONE autocommit connection between concurrent requests, so
# a BEGIN ... COMMIT around "update the listing, then insert the point" would take in the
# statements other requests run meanwhile (and an asyncio.Lock around every write would
# serialize them for nothing). A trigger runs inside the statement that fired it: the INSERT
# or UPDATE of the listing and its point commit together or not at all, whoever writes the
# row (the API, the bench seeder, a hand-run UPDATE), at no extra round trip.
PRICE_HISTORY = (
    # The primary key is the index every read uses: one listing's points in time order.
    # changed_at is the listing's updated_at at the change, which only grows (see update),
    # so two points of one listing never share it.
    """CREATE TABLE price_history (
        listing_id INTEGER NOT NULL,
        price      INTEGER NOT NULL,
        changed_at INTEGER NOT NULL,
        PRIMARY KEY (listing_id, changed_at)
    )""",
    # When the price last CHANGED: the newest point after the first, NULL if the price is
    # still the one the listing had when created (or when this upgrade ran). It serves the
    # price_changed_since filter from an index holding only the listings that ever moved.
    "ALTER TABLE listings ADD COLUMN price_changed_at INTEGER",
    """CREATE INDEX listings_by_price_change ON listings (price_changed_at)
        WHERE price_changed_at IS NOT NULL""",
    """CREATE TRIGGER price_history_on_create AFTER INSERT ON listings
    BEGIN
        INSERT INTO price_history (listing_id, price, changed_at)
        VALUES (new.id, new.price, new.updated_at);
    END""",
    # UPDATE OF price: only statements that set the price; WHEN: only if it really moved, so
    # a PATCH that leaves the price as it was records nothing.
    """CREATE TRIGGER price_history_on_change AFTER UPDATE OF price ON listings
    WHEN old.price <> new.price
    BEGIN
        INSERT INTO price_history (listing_id, price, changed_at)
        VALUES (new.id, new.price, new.updated_at);
        UPDATE listings SET price_changed_at = new.updated_at WHERE id = new.id;
    END""",
    # In the DELETE's own statement; no foreign key, whose cascade SQLite applies only on
    # connections that turned foreign_keys on (PostgreSQL: REFERENCES ... ON DELETE CASCADE).
    """CREATE TRIGGER price_history_on_delete AFTER DELETE ON listings
    BEGIN
        DELETE FROM price_history WHERE listing_id = old.id;
    END""",
    # Listings made before this version: one point, their current price at their updated_at.
    """INSERT INTO price_history (listing_id, price, changed_at)
        SELECT id, price, updated_at FROM listings""",
)
COLUMNS = "id, user_id, listing_type, price, created_at, updated_at"
ROW_JSON = json_object_sql(COLUMNS)
# How each list filter becomes a condition; the keys are those of validation.LISTING_FILTERS.
FILTER_CONDITIONS = {
    "user_id": "user_id = ?",
    "listing_type": "listing_type = ?",
    "min_price": "price >= ?",
    "max_price": "price <= ?",
    # Changed AFTER the time given. The upper bound is always true: it tells SQLite, which has
    # no statistics, that this is a narrow range ("listings that moved lately" are few), so
    # it reads listings_by_price_change instead of walking the whole list for them.
    "price_changed_since": "price_changed_at > ? AND price_changed_at <= 9223372036854775807",
}
EDITABLE_COLUMNS = ("listing_type", "price")


class ListingStore(SqliteStore):
    """All SQL of the listing service. A listing comes back as a dict, a page as its rows'
    JSON texts; both in the contract's key order."""

    SCHEMA = SCHEMA
    TABLE = "listings"
    UPGRADES = (PRICE_HISTORY,)

    async def create(self, user_id: int, listing_type: str, price: int) -> dict[str, Any]:
        stamp = now_us()
        rows = await self.fetch_all(
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

    async def get(self, listing_id: int) -> dict[str, Any]:
        rows = await self.fetch_all(
            f"SELECT {COLUMNS} FROM listings WHERE id = ?", (listing_id,))
        if not rows:
            raise NotFound("listing", listing_id)
        return dict(rows[0])

    async def update(self, listing_id: int, if_match: v.IfMatch | None = None,
                     **changes: Any) -> dict[str, Any]:
        """Change some of EDITABLE_COLUMNS (only at a version `if_match` names, if given);
        updated_at moves forward, created_at stays."""
        columns = [column for column in EDITABLE_COLUMNS if column in changes]
        if not columns or len(columns) != len(changes):
            raise ValueError(f"update takes some of {EDITABLE_COLUMNS}, not {list(changes)}")
        assignments = "".join(f"{column} = ?, " for column in columns)
        condition, versions = self.version_condition(if_match)
        # max(): updated_at grows even if the clock steps back or two writes share a microsecond.
        rows = await self.fetch_all(
            f"UPDATE listings SET {assignments}updated_at = max(?, updated_at + 1)"
            f" WHERE id = ?{condition} RETURNING {COLUMNS}",
            (*(changes[column] for column in columns), now_us(), listing_id, *versions),
        )
        if not rows:
            raise await self.unwritten("listing", listing_id)
        return dict(rows[0])

    async def delete(self, listing_id: int, if_match: v.IfMatch | None = None) -> None:
        condition, versions = self.version_condition(if_match)
        rows = await self.fetch_all(
            f"DELETE FROM listings WHERE id = ?{condition} RETURNING id", (listing_id, *versions))
        if not rows:
            raise await self.unwritten("listing", listing_id)

    async def prices(self, listing_id: int, since: int = 0, until: int = v.MAX_INT64,
                     include_prior: bool = False) -> list[dict[str, int]]:
        """The listing's price points with since <= changed_at <= until, oldest first; with
        `include_prior`, first the point in force at `since` if it is older than `since`."""
        rows = await self.fetch_all(*self.prices_query(listing_id, since, until, include_prior))
        if not rows:
            raise NotFound("listing", listing_id)
        return [{"price": price, "changed_at": changed_at}
                for price, changed_at in rows if changed_at is not None]

    @staticmethod
    def prices_query(listing_id: int, since: int, until: int,
                     include_prior: bool) -> tuple[str, list[Any]]:
        """One statement: no row for an unknown listing, one row of NULLs for a listing with
        no point in the window (a window before its creation), else the points."""
        start = "?"
        parameters: list[Any] = [until]
        if include_prior:
            # The newest point at or before `since` starts the answer; none: `since` does.
            start = ("coalesce((SELECT max(changed_at) FROM price_history"
                     " WHERE listing_id = ? AND changed_at <= ?), ?)")
            parameters += [listing_id, since]
        parameters += [since, listing_id]
        return ("SELECT h.price, h.changed_at FROM listings l"
                " LEFT JOIN price_history h ON h.listing_id = l.id"
                f" AND h.changed_at <= ? AND h.changed_at >= {start}"
                " WHERE l.id = ? ORDER BY h.changed_at", parameters)

    async def page(self, page: v.Page, **filters: Any) -> list[str]:
        """One page, newest first, of the listings matching every filter given (JSON texts)."""
        rows = await self.fetch_all(*self.page_query(page, **filters))
        return [row[0] for row in rows]

    @staticmethod
    def page_query(page: v.Page, **filters: Any) -> tuple[str, list[Any]]:
        """The SQL and parameters of `page` (apart so a test can EXPLAIN its plan)."""
        conditions = [FILTER_CONDITIONS[name] for name in filters]
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        return (f"SELECT {ROW_JSON} FROM listings {where}"
                " ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?",
                [*filters.values(), page.size, page.offset])

    async def count(self) -> int:
        rows = await self.fetch_all("SELECT count(*) FROM listings")
        return rows[0][0]


CREATE_RULES = {"user_id": v.integer(1), "listing_type": v.listing_type, "price": v.integer(1)}
EDIT_RULES = {column: CREATE_RULES[column] for column in EDITABLE_COLUMNS}


class ListingsHandler(JsonHandler):
    def initialize(self, store: ListingStore) -> None:
        self.store = store

    async def get(self) -> None:
        page, filters = v.parse_listing_query(self.query_fields())
        self.send_rows("listings", await self.store.page(page, **filters))

    async def post(self) -> None:
        fields = v.parse_fields(self.form_fields(), CREATE_RULES)
        listing = await self.store.create(**fields)
        self.send_json({"result": True, "listing": listing}, status=201)


class PricesHandler(JsonHandler):
    def initialize(self, store: ListingStore) -> None:
        self.store = store

    async def get(self, raw_id: str) -> None:
        listing_id = v.parse_id(raw_id)
        window = v.parse_price_window(self.query_fields(), v.PRICES_RULES)
        self.send_json({"result": True, "prices": await self.store.prices(listing_id, **window)})


class ListingHandler(JsonHandler):
    def initialize(self, store: ListingStore) -> None:
        self.store = store

    async def get(self, raw_id: str) -> None:
        listing = await self.store.get(v.parse_id(raw_id))
        self.send_json({"result": True, "listing": listing},
                       etag=v.entity_tag(listing["updated_at"]))

    async def patch(self, raw_id: str) -> None:
        listing_id = v.parse_id(raw_id)
        changes = v.parse_changes(self.form_fields(), EDIT_RULES)
        listing = await self.store.update(listing_id, self.if_match(), **changes)
        self.send_json({"result": True, "listing": listing},
                       etag=v.entity_tag(listing["updated_at"]))

    async def delete(self, raw_id: str) -> None:
        await self.store.delete(v.parse_id(raw_id), self.if_match())
        self.no_content()


def make_app(store: ListingStore, **settings: Any) -> Application:
    """The routing table; `settings` are those of `json_application` (debug, limits, token)."""
    deps = {"store": store}
    return json_application([
        (r"/listings", ListingsHandler, deps),
        (r"/listings/ping", PingHandler),  # before the id route, which would take "ping"
        (r"/listings/([^/]+)", ListingHandler, deps),
        (r"/listings/([^/]+)/prices", PricesHandler, deps),
        (r"/ping", PingHandler),
        (r"/ready", ReadyHandler, {"check": store.check}),
        openapi_route("/openapi.json", "listing"),
    ], **settings)


async def main(argv: Sequence[str] | None = None) -> None:
    options = data_service_options(port=6000, db_path="listings.db")
    parse(options, argv, "listing")
    store = await ListingStore.open(options.db_path)
    try:
        await serve(make_app(store, **app_settings(options)), options)
    finally:
        await store.close()


if __name__ == "__main__":
    run(main())
