"""Listing service: the homes users list to rent or sell, in its own database.

    python listing_service.py --port=6000 --db_path=listings.db        # SQLite
    python listing_service.py --database_url=postgresql://portal@db:5432/listings

Internal: it listens on loopback by default and speaks form-encoded bodies, JSON answers.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from tornado.web import Application

from common import validation as v
from common.db import SqliteStore, insert_many, json_object_sql, now_us, table_columns, user_version
from common.errors import NotFound
from common.openapi import openapi_route
from common.pg import DEFAULT_POOL_SIZE, PgStore, database_kind, row_json_sql, sqlite_path
from common.server import app_settings, data_service_options, database_url, parse, run, serve
from common.web import JsonHandler, PingHandler, ReadyHandler, json_application

# The tables, indexes and price-history triggers: migrations/listing/{sqlite,postgresql}/*.sql.
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

    SERVICE = "listing"
    TABLE = "listings"

    @staticmethod
    async def legacy_version(db: Any) -> int:
        """A file made before schema_version: its listings table is migration 1, and PRAGMA
        user_version counted the one upgrade then known, price history (migration 2)."""
        if not await table_columns(db, "listings"):
            return 0
        return 1 + min(await user_version(db), 1)

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


# PostgreSQL's conditions take numbered parameters: each filter's SQL, given its number.
PG_FILTER_CONDITIONS = {
    "user_id": "user_id = ${}",
    "listing_type": "listing_type = ${}",
    "min_price": "price >= ${}",
    "max_price": "price <= ${}",
    "price_changed_since": "price_changed_at > ${}",  # the planner has statistics: no hint
}


class PgListingStore(PgStore):
    """The listing service's SQL for PostgreSQL: the same methods, answers and errors as
    ListingStore, byte for byte (tests/test_backends_agree.py)."""

    SERVICE = "listing"
    TABLE = "listings"

    async def create(self, user_id: int, listing_type: str, price: int) -> dict[str, Any]:
        stamp = now_us()
        rows = await self.fetch_all(
            f"INSERT INTO listings (user_id, listing_type, price, created_at, updated_at)"
            f" VALUES ($1, $2, $3, $4, $4) RETURNING {COLUMNS}",
            (user_id, listing_type, price, stamp),
        )
        return dict(rows[0])

    async def bulk_create(self, rows: Iterable[tuple[int, str, int, int]]) -> None:
        """Insert (user_id, listing_type, price, created_at) rows at once, for seeding."""
        async with self.pool.acquire() as connection, connection.transaction():
            await connection.executemany(
                "INSERT INTO listings (user_id, listing_type, price, created_at, updated_at)"
                " VALUES ($1, $2, $3, $4, $4)", list(rows))

    async def get(self, listing_id: int) -> dict[str, Any]:
        rows = await self.fetch_all(
            f"SELECT {COLUMNS} FROM listings WHERE id = $1", (listing_id,))
        if not rows:
            raise NotFound("listing", listing_id)
        return dict(rows[0])

    async def update(self, listing_id: int, if_match: v.IfMatch | None = None,
                     **changes: Any) -> dict[str, Any]:
        """As ListingStore.update; GREATEST is SQLite's two-argument max()."""
        columns = [column for column in EDITABLE_COLUMNS if column in changes]
        if not columns or len(columns) != len(changes):
            raise ValueError(f"update takes some of {EDITABLE_COLUMNS}, not {list(changes)}")
        assignments = "".join(f"{column} = ${n}, " for n, column in enumerate(columns, 1))
        n = len(columns)
        condition, versions = self.version_condition(if_match, n + 3)
        rows = await self.fetch_all(
            f"UPDATE listings SET {assignments}updated_at = GREATEST(${n + 1}, updated_at + 1)"
            f" WHERE id = ${n + 2}{condition} RETURNING {COLUMNS}",
            (*(changes[column] for column in columns), now_us(), listing_id, *versions),
        )
        if not rows:
            raise await self.unwritten("listing", listing_id)
        return dict(rows[0])

    async def delete(self, listing_id: int, if_match: v.IfMatch | None = None) -> None:
        condition, versions = self.version_condition(if_match, 2)
        rows = await self.fetch_all(
            f"DELETE FROM listings WHERE id = $1{condition} RETURNING id",
            (listing_id, *versions))
        if not rows:
            raise await self.unwritten("listing", listing_id)

    async def prices(self, listing_id: int, since: int = 0, until: int = v.MAX_INT64,
                     include_prior: bool = False) -> list[dict[str, int]]:
        """As ListingStore.prices: one statement, the same SQL with numbered parameters."""
        start = "$3"
        parameters: list[Any] = [listing_id, until, since]
        if include_prior:
            start = ("coalesce((SELECT max(changed_at) FROM price_history"
                     " WHERE listing_id = $1 AND changed_at <= $3), $3)")
        rows = await self.fetch_all(
            "SELECT h.price, h.changed_at FROM listings l"
            " LEFT JOIN price_history h ON h.listing_id = l.id"
            f" AND h.changed_at <= $2 AND h.changed_at >= {start}"
            " WHERE l.id = $1 ORDER BY h.changed_at", parameters)
        if not rows:
            raise NotFound("listing", listing_id)
        return [{"price": price, "changed_at": changed_at}
                for price, changed_at in rows if changed_at is not None]

    async def page(self, page: v.Page, **filters: Any) -> list[str]:
        rows = await self.fetch_all(*self.page_query(page, **filters))
        return [row[0] for row in rows]

    @staticmethod
    def page_query(page: v.Page, **filters: Any) -> tuple[str, list[Any]]:
        conditions = [PG_FILTER_CONDITIONS[name].format(n)
                      for n, name in enumerate(filters, 1)]
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        n = len(conditions)
        return (row_json_sql(f"SELECT {COLUMNS} FROM listings {where}"
                             f" ORDER BY created_at DESC, id DESC LIMIT ${n + 1} OFFSET ${n + 2}"),
                [*filters.values(), page.size, page.offset])

    async def count(self) -> int:
        rows = await self.fetch_all("SELECT count(*) FROM listings")
        return rows[0][0]


# What the handlers hold: either store, the same methods and answers.
Store = ListingStore | PgListingStore


async def open_store(database_url: str, pool_size: int = DEFAULT_POOL_SIZE) -> Store:
    """The store `database_url` names: sqlite:///<path> or postgresql://..."""
    if database_kind(database_url) == "postgresql":
        return await PgListingStore.open(database_url, pool_size)
    return await ListingStore.open(sqlite_path(database_url))


CREATE_RULES = {"user_id": v.integer(1), "listing_type": v.listing_type, "price": v.integer(1)}
EDIT_RULES = {column: CREATE_RULES[column] for column in EDITABLE_COLUMNS}


class ListingsHandler(JsonHandler):
    def initialize(self, store: Store) -> None:
        self.store = store

    async def get(self) -> None:
        page, filters = v.parse_listing_query(self.query_fields())
        self.send_rows("listings", await self.store.page(page, **filters))

    async def post(self) -> None:
        fields = v.parse_fields(self.form_fields(), CREATE_RULES)
        listing = await self.store.create(**fields)
        self.send_json({"result": True, "listing": listing}, status=201)


class PricesHandler(JsonHandler):
    def initialize(self, store: Store) -> None:
        self.store = store

    async def get(self, raw_id: str) -> None:
        listing_id = v.parse_id(raw_id)
        window = v.parse_price_window(self.query_fields(), v.PRICES_RULES)
        self.send_json({"result": True, "prices": await self.store.prices(listing_id, **window)})


class ListingHandler(JsonHandler):
    def initialize(self, store: Store) -> None:
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


def make_app(store: Store, **settings: Any) -> Application:
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
    store = await open_store(database_url(options), options.db_pool_size)
    try:
        await serve(make_app(store, **app_settings(options)), options)
    finally:
        await store.close()


if __name__ == "__main__":
    run(main())
