"""User service: the people who list homes, in its own database.

    python user_service.py --port=7000 --db_path=users.db        # SQLite
    python user_service.py --database_url=postgresql://portal@db:5432/users

Internal: it listens on loopback by default and speaks form-encoded bodies, JSON answers.
`GET /users?ids=3,1,7` serves the public API one page's users in one request.

A user may have a password, of which only an argon2id hash is stored (common/passwords.py),
in a column no answer selects. `POST /logins` checks one and counts the failures per user
id in the database, so that restarting either service does not reset the lockout.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from tornado.web import Application

from common import validation as v
from common.db import SqliteStore, insert_many, json_object_sql, now_us, table_columns
from common.errors import NotFound
from common.openapi import openapi_route
from common.passwords import Passwords
from common.pg import DEFAULT_POOL_SIZE, PgStore, database_kind, row_json_sql, sqlite_path
from common.server import app_settings, data_service_options, database_url, parse, run, serve
from common.web import JsonHandler, PingHandler, ReadyHandler, json_application

# The tables and indexes: migrations/user/{sqlite,postgresql}/*.sql.
# Added to databases made before passwords existed; NULL: the user has no password. Never in
# COLUMNS, so no answer can carry it.
PASSWORD_COLUMN = "password_hash"
COLUMNS = "id, name, created_at, updated_at"
ROW_JSON = json_object_sql(COLUMNS)
# Beside json_each, which has an `id` column of its own, the columns are named with the table.
QUALIFIED_ROW_JSON = json_object_sql(COLUMNS, "users")


class UserStore(SqliteStore):
    """All SQL of the user service. A user comes back as a dict, a list as its rows' JSON
    texts; both in the contract's key order."""

    SERVICE = "user"
    TABLE = "users"

    @staticmethod
    async def legacy_version(db: Any) -> int:
        """A file made before schema_version: its tables are migration 1, and the password
        column (which code then added when missing) migration 2."""
        columns = await table_columns(db, "users")
        if not columns:
            return 0
        return 2 if PASSWORD_COLUMN in columns else 1

    async def create(self, name: str, password_hash: str | None = None) -> dict[str, Any]:
        stamp = now_us()
        rows = await self.fetch_all(
            f"INSERT INTO users (name, created_at, updated_at, {PASSWORD_COLUMN})"
            f" VALUES (?, ?, ?, ?) RETURNING {COLUMNS}",
            (name, stamp, stamp, password_hash),
        )
        return dict(rows[0])

    async def password_hash(self, user_id: int) -> str | None:
        """The user's hash; None if they have none or do not exist (the caller cannot tell)."""
        rows = await self.fetch_all(
            f"SELECT {PASSWORD_COLUMN} FROM users WHERE id = ?", (user_id,))
        return rows[0][0] if rows else None

    async def set_password_hash(self, user_id: int, password_hash: str,
                                if_match: v.IfMatch | None = None) -> dict[str, Any]:
        """Set the user's hash (only at a version `if_match` names, if given)."""
        condition, versions = self.version_condition(if_match)
        rows = await self.fetch_all(
            f"UPDATE users SET {PASSWORD_COLUMN} = ?, updated_at = max(?, updated_at + 1)"
            f" WHERE id = ?{condition} RETURNING {COLUMNS}",
            (password_hash, now_us(), user_id, *versions),
        )
        if not rows:
            raise await self.unwritten("user", user_id)
        return dict(rows[0])

    async def retry_after_us(self, user_id: int, window_us: int, limit: int) -> int:
        """0 if `user_id` may try to log in; else how long until its lockout ends: when the
        oldest failure that makes the count reach `limit` leaves the window."""
        now = now_us()
        rows = await self.fetch_all(
            "SELECT failed_at FROM login_failures WHERE user_id = ? AND failed_at > ?"
            " ORDER BY failed_at DESC LIMIT ?", (user_id, now - window_us, limit))
        if len(rows) < limit:
            return 0
        return max(1, rows[-1][0] + window_us - now)

    async def record_failure(self, user_id: int, window_us: int) -> None:
        now = now_us()
        await self.fetch_all("INSERT INTO login_failures (user_id, failed_at) VALUES (?, ?)",
                             (user_id, now))
        # Failures older than the window count for nothing: dropped, for every user at once.
        await self.fetch_all("DELETE FROM login_failures WHERE failed_at <= ?",
                             (now - window_us,))

    async def clear_failures(self, user_id: int) -> None:
        await self.fetch_all("DELETE FROM login_failures WHERE user_id = ?", (user_id,))

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


class PgUserStore(PgStore):
    """The user service's SQL for PostgreSQL: the same methods, answers and errors as
    UserStore, byte for byte (tests/test_backends_agree.py)."""

    SERVICE = "user"
    TABLE = "users"

    async def create(self, name: str, password_hash: str | None = None) -> dict[str, Any]:
        stamp = now_us()
        rows = await self.fetch_all(
            f"INSERT INTO users (name, created_at, updated_at, {PASSWORD_COLUMN})"
            f" VALUES ($1, $2, $2, $3) RETURNING {COLUMNS}",
            (name, stamp, password_hash),
        )
        return dict(rows[0])

    async def password_hash(self, user_id: int) -> str | None:
        rows = await self.fetch_all(
            f"SELECT {PASSWORD_COLUMN} FROM users WHERE id = $1", (user_id,))
        return rows[0][0] if rows else None

    async def set_password_hash(self, user_id: int, password_hash: str,
                                if_match: v.IfMatch | None = None) -> dict[str, Any]:
        condition, versions = self.version_condition(if_match, 4)
        rows = await self.fetch_all(
            f"UPDATE users SET {PASSWORD_COLUMN} = $1, updated_at = GREATEST($2, updated_at + 1)"
            f" WHERE id = $3{condition} RETURNING {COLUMNS}",
            (password_hash, now_us(), user_id, *versions),
        )
        if not rows:
            raise await self.unwritten("user", user_id)
        return dict(rows[0])

    async def retry_after_us(self, user_id: int, window_us: int, limit: int) -> int:
        now = now_us()
        rows = await self.fetch_all(
            "SELECT failed_at FROM login_failures WHERE user_id = $1 AND failed_at > $2"
            " ORDER BY failed_at DESC LIMIT $3", (user_id, now - window_us, limit))
        if len(rows) < limit:
            return 0
        return max(1, rows[-1][0] + window_us - now)

    async def record_failure(self, user_id: int, window_us: int) -> None:
        now = now_us()
        await self.fetch_all("INSERT INTO login_failures (user_id, failed_at) VALUES ($1, $2)",
                             (user_id, now))
        await self.fetch_all("DELETE FROM login_failures WHERE failed_at <= $1",
                             (now - window_us,))

    async def clear_failures(self, user_id: int) -> None:
        await self.fetch_all("DELETE FROM login_failures WHERE user_id = $1", (user_id,))

    async def bulk_create(self, rows: Iterable[tuple[str, int]]) -> None:
        """Insert (name, created_at) rows at once, for seeding."""
        async with self.pool.acquire() as connection, connection.transaction():
            await connection.executemany(
                "INSERT INTO users (name, created_at, updated_at) VALUES ($1, $2, $2)",
                list(rows))

    async def get(self, user_id: int) -> dict[str, Any]:
        rows = await self.fetch_all(f"SELECT {COLUMNS} FROM users WHERE id = $1", (user_id,))
        if not rows:
            raise NotFound("user", user_id)
        return dict(rows[0])

    async def update(self, user_id: int, name: str,
                     if_match: v.IfMatch | None = None) -> dict[str, Any]:
        condition, versions = self.version_condition(if_match, 4)
        rows = await self.fetch_all(
            f"UPDATE users SET name = $1, updated_at = GREATEST($2, updated_at + 1)"
            f" WHERE id = $3{condition} RETURNING {COLUMNS}",
            (name, now_us(), user_id, *versions),
        )
        if not rows:
            raise await self.unwritten("user", user_id)
        return dict(rows[0])

    async def many(self, ids: list[int]) -> list[str]:
        """The users among `ids` that exist, in the order of `ids`: WITH ORDINALITY numbers
        them as json_each does on SQLite."""
        rows = await self.fetch_all(row_json_sql(
            "SELECT users.id, users.name, users.created_at, users.updated_at"
            " FROM unnest($1::bigint[]) WITH ORDINALITY AS wanted (id, n)"
            " JOIN users ON users.id = wanted.id ORDER BY wanted.n"), (ids,))
        return [row[0] for row in rows]

    async def page(self, page: v.Page) -> list[str]:
        rows = await self.fetch_all(row_json_sql(
            f"SELECT {COLUMNS} FROM users ORDER BY created_at DESC, id DESC LIMIT $1 OFFSET $2"),
            (page.size, page.offset))
        return [row[0] for row in rows]


# What the handlers hold: either store, the same methods and answers.
Store = UserStore | PgUserStore


async def open_store(database_url: str, pool_size: int = DEFAULT_POOL_SIZE) -> Store:
    """The store `database_url` names: sqlite:///<path> or postgresql://..."""
    if database_kind(database_url) == "postgresql":
        return await PgUserStore.open(database_url, pool_size)
    return await UserStore.open(sqlite_path(database_url))


CREATE_RULES = {"name": v.name}
PASSWORD_RULES = {"password": v.password}
LOGIN_RULES = {"user_id": v.integer(1), "password": v.password}
LIST_FILTERS = {"ids": v.id_list}
LOGIN_WINDOW = 15 * 60  # seconds: failures older than this count for nothing
LOGIN_LIMIT = 10  # failures within the window that lock a user id's logins until it passes


class Logins:
    """Password checks with a lockout: LOGIN_LIMIT failures within LOGIN_WINDOW seconds."""

    def __init__(self, store: Store, passwords: Passwords,
                 window: float = LOGIN_WINDOW, limit: int = LOGIN_LIMIT) -> None:
        self.store, self.passwords = store, passwords
        self.window_us, self.limit = int(window * 1_000_000), limit

    async def check(self, user_id: int, password: str) -> dict[str, Any]:
        """{"ok": bool, "retry_after": seconds or None}; a locked id is not even verified."""
        wait_us = await self.store.retry_after_us(user_id, self.window_us, self.limit)
        if wait_us:
            return {"ok": False, "retry_after": -(-wait_us // 1_000_000)}  # rounded up
        stored = await self.store.password_hash(user_id)
        if await self.passwords.verify(stored, password):
            await self.store.clear_failures(user_id)
            return {"ok": True, "retry_after": None}
        await self.store.record_failure(user_id, self.window_us)
        return {"ok": False, "retry_after": None}


class UsersHandler(JsonHandler):
    def initialize(self, store: Store, passwords: Passwords) -> None:
        self.store = store
        self.passwords = passwords

    async def get(self) -> None:
        page, filters = v.parse_page_query(self.query_fields(), LIST_FILTERS)
        if "ids" in filters:
            users = await self.store.many(filters["ids"])
        else:
            users = await self.store.page(page)
        self.send_rows("users", users)

    async def post(self) -> None:
        fields = v.parse_fields(self.form_fields(), CREATE_RULES, PASSWORD_RULES)
        password = fields.pop("password", None)
        if password is not None:
            fields["password_hash"] = await self.passwords.hash(password)
        self.send_json({"result": True, "user": await self.store.create(**fields)}, status=201)


class UserHandler(JsonHandler):
    def initialize(self, store: Store, passwords: Passwords) -> None:
        self.store = store
        self.passwords = passwords

    async def get(self, raw_id: str) -> None:
        user = await self.store.get(v.parse_id(raw_id))
        self.send_json({"result": True, "user": user}, etag=v.entity_tag(user["updated_at"]))

    async def patch(self, raw_id: str) -> None:
        user_id = v.parse_id(raw_id)
        changes = v.parse_changes(self.form_fields(), CREATE_RULES)
        user = await self.store.update(user_id, if_match=self.if_match(), **changes)
        self.send_json({"result": True, "user": user}, etag=v.entity_tag(user["updated_at"]))


class PasswordHandler(JsonHandler):
    """`POST /users/{id}/password` (password): set a user's password. Internal, as every route
    here; who may do it through the public API is the public API's rule."""

    def initialize(self, store: Store, passwords: Passwords) -> None:
        self.store = store
        self.passwords = passwords

    async def post(self, raw_id: str) -> None:
        user_id = v.parse_id(raw_id)
        password = v.parse_fields(self.form_fields(), PASSWORD_RULES)["password"]
        if_match = self.if_match()
        await self.store.get(user_id)  # a 404 before the hash's CPU is spent
        user = await self.store.set_password_hash(user_id, await self.passwords.hash(password),
                                                  if_match)
        self.send_json({"result": True, "user": user})


class LoginsHandler(JsonHandler):
    """`POST /logins` (user_id, password): whether they match. Always 200 when the input is
    well formed: a 401 would read, to the public API's client, as its internal token refused."""

    def initialize(self, logins: Logins) -> None:
        self.logins = logins

    async def post(self) -> None:
        fields = v.parse_fields(self.form_fields(), LOGIN_RULES)
        self.send_json({"result": True, "login": await self.logins.check(**fields)})


def make_app(store: Store, passwords: Passwords | None = None, logins: Logins | None = None,
             **settings: Any) -> Application:
    """The routing table; `settings` are those of `json_application` (debug, limits, token)."""
    passwords = passwords or Passwords()
    deps = {"store": store, "passwords": passwords}
    return json_application([
        (r"/users", UsersHandler, deps),
        (r"/users/([^/]+)", UserHandler, deps),
        (r"/users/([^/]+)/password", PasswordHandler, deps),
        (r"/logins", LoginsHandler, {"logins": logins or Logins(store, passwords)}),
        (r"/ping", PingHandler),
        (r"/ready", ReadyHandler, {"check": store.check}),
        openapi_route("/openapi.json", "user"),
    ], **settings)


async def main(argv: Sequence[str] | None = None) -> None:
    options = data_service_options(port=7000, db_path="users.db")
    options.define("login_window", default=float(LOGIN_WINDOW), type=float,
                   help="seconds within which login_limit failed logins lock a user's logins")
    options.define("login_limit", default=LOGIN_LIMIT, type=int,
                   help="failed logins within login_window that lock a user's logins (429)")
    parse(options, argv, "user")
    store = await open_store(database_url(options), options.db_pool_size)
    passwords = Passwords()
    logins = Logins(store, passwords, options.login_window, options.login_limit)
    try:
        await serve(make_app(store, passwords, logins, **app_settings(options)), options)
    finally:
        passwords.close()
        await store.close()


if __name__ == "__main__":
    run(main())
