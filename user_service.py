"""User service: the people who list homes, in its own SQLite file.

    python user_service.py --port=7000 --db_path=users.db

Internal: it listens on loopback by default and speaks form-encoded bodies, JSON answers.
`GET /users?ids=3,1,7` serves the public API one page's users in one request.
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
CREATE TABLE IF NOT EXISTS users (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS users_newest ON users (created_at DESC, id DESC);
"""
COLUMNS = "id, name, created_at, updated_at"
ROW_JSON = json_object_sql(COLUMNS)
# Beside json_each, which has an `id` column of its own, the columns are named with the table.
QUALIFIED_ROW_JSON = json_object_sql(COLUMNS, "users")


class UserStore(SqliteStore):
    """All SQL of the user service. A user comes back as a dict, a list as its rows' JSON
    texts; both in the contract's key order."""

    SCHEMA = SCHEMA
    TABLE = "users"

    async def create(self, name: str) -> dict[str, Any]:
        stamp = now_us()
        rows = await self.fetch_all(
            f"INSERT INTO users (name, created_at, updated_at) VALUES (?, ?, ?)"
            f" RETURNING {COLUMNS}",
            (name, stamp, stamp),
        )
        return dict(rows[0])

    async def bulk_create(self, rows: Iterable[tuple[str, int]]) -> None:
        """Insert (name, created_at) rows at once, for seeding."""
        await insert_many(
            self.db, "INSERT INTO users (name, created_at, updated_at) VALUES (?, ?, ?)",
            ((name, stamp, stamp) for name, stamp in rows))

    async def get(self, user_id: int) -> dict[str, Any]:
        rows = await self.fetch_all(
            f"SELECT {COLUMNS} FROM users WHERE id = ?", (user_id,))
        if not rows:
            raise NotFound("user", user_id)
        return dict(rows[0])

    async def update(self, user_id: int, name: str,
                     if_match: v.IfMatch | None = None) -> dict[str, Any]:
        """Rename a user (only at a version `if_match` names, if given); updated_at moves
        forward, created_at stays."""
        condition, versions = self.version_condition(if_match)
        # max(): updated_at grows even if the clock steps back or two writes share a microsecond.
        rows = await self.fetch_all(
            f"UPDATE users SET name = ?, updated_at = max(?, updated_at + 1)"
            f" WHERE id = ?{condition} RETURNING {COLUMNS}",
            (name, now_us(), user_id, *versions),
        )
        if not rows:
            raise await self.unwritten("user", user_id)
        return dict(rows[0])

    async def many(self, ids: list[int]) -> list[str]:
        """The users among `ids` that exist, in the order of `ids` (JSON texts)."""
        # The ids go in as one JSON array; json_each numbers them, which gives the order.
        rows = await self.fetch_all(
            f"SELECT {QUALIFIED_ROW_JSON} FROM json_each(?) AS wanted"
            " JOIN users ON users.id = wanted.value ORDER BY wanted.key",
            ("[" + ",".join(map(str, ids)) + "]",))
        return [row[0] for row in rows]

    async def page(self, page: v.Page) -> list[str]:
        """One page of users, newest first (JSON texts)."""
        rows = await self.fetch_all(
            f"SELECT {ROW_JSON} FROM users ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?",
            (page.size, page.offset),
        )
        return [row[0] for row in rows]


CREATE_RULES = {"name": v.name}
LIST_FILTERS = {"ids": v.id_list}


class UsersHandler(JsonHandler):
    def initialize(self, store: UserStore) -> None:
        self.store = store

    async def get(self) -> None:
        page, filters = v.parse_page_query(self.query_fields(), LIST_FILTERS)
        if "ids" in filters:
            users = await self.store.many(filters["ids"])
        else:
            users = await self.store.page(page)
        self.send_rows("users", users)

    async def post(self) -> None:
        fields = v.parse_fields(self.form_fields(), CREATE_RULES)
        self.send_json({"result": True, "user": await self.store.create(**fields)}, status=201)


class UserHandler(JsonHandler):
    def initialize(self, store: UserStore) -> None:
        self.store = store

    async def get(self, raw_id: str) -> None:
        user = await self.store.get(v.parse_id(raw_id))
        self.send_json({"result": True, "user": user}, etag=v.entity_tag(user["updated_at"]))

    async def patch(self, raw_id: str) -> None:
        user_id = v.parse_id(raw_id)
        changes = v.parse_changes(self.form_fields(), CREATE_RULES)
        user = await self.store.update(user_id, if_match=self.if_match(), **changes)
        self.send_json({"result": True, "user": user}, etag=v.entity_tag(user["updated_at"]))


def make_app(store: UserStore, **settings: Any) -> Application:
    """The routing table; `settings` are those of `json_application` (debug, limits, token)."""
    deps = {"store": store}
    return json_application([
        (r"/users", UsersHandler, deps),
        (r"/users/([^/]+)", UserHandler, deps),
        (r"/ping", PingHandler),
        (r"/ready", ReadyHandler, {"check": store.check}),
        openapi_route("/openapi.json", "user"),
    ], **settings)


async def main(argv: Sequence[str] | None = None) -> None:
    options = data_service_options(port=7000, db_path="users.db")
    parse(options, argv, "user")
    store = await UserStore.open(options.db_path)
    try:
        await serve(make_app(store, **app_settings(options)), options)
    finally:
        await store.close()


if __name__ == "__main__":
    run(main())
