"""The same requests get the same answer bytes from a service on SQLite and on PostgreSQL
(timestamps, which the clock picks, masked): Unicode and U+2028 in names, 2^63-1 prices, the
pages' JSON built by each database, the batch read's order, the errors."""
from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from tornado.httpclient import AsyncHTTPClient
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port

import listing_service
import user_service

MAX = 9_223_372_036_854_775_807
STAMP = re.compile(rb'"(created_at|updated_at|changed_at)":\d+')
NAMES = ['say "hi" \\ back', "tab\there\nnew line", "ctl \x01 and \x1f\x7f", "Zoë 東京 🏠",
         "line\u2028separator\u2029", "</script><b>", "%s {0} ' OR 1=1"]

# (method, path, form or None): run in order against each backend.
USER_STEPS: list[tuple[str, str, dict | None]] = [
    *(("POST", "/users", {"name": name}) for name in NAMES),
    ("GET", "/users", None), ("GET", "/users?page_size=3&page_num=2", None),
    ("GET", "/users?ids=3,1,99,7,2,1", None), ("GET", "/users/5", None),
    ("GET", "/users/99", None), ("PATCH", "/users/2", {"name": "  Ünïcode \u2028 "}),
    ("GET", f"/users?ids={MAX}", None), ("GET", "/users?page_num=50", None),
]
LISTING_STEPS: list[tuple[str, str, dict | None]] = [
    *(("POST", "/listings", {"user_id": n % 3 + 1, "listing_type": ("rent", "sale")[n % 2],
                             "price": (n + 1) * 1000}) for n in range(12)),
    ("POST", "/listings", {"user_id": MAX, "listing_type": "sale", "price": MAX}),
    ("POST", "/listings", {"user_id": 1, "listing_type": "rent", "price": 0}),
    ("GET", "/listings", None), ("GET", "/listings?page_size=5&page_num=2", None),
    ("GET", "/listings?user_id=2&listing_type=rent", None),
    ("GET", "/listings?min_price=3000&max_price=8000", None),
    ("GET", f"/listings?min_price={MAX}", None), ("GET", f"/listings?user_id={MAX}", None),
    ("PATCH", "/listings/3", {"price": MAX}), ("PATCH", "/listings/3", {"price": MAX}),
    ("PATCH", "/listings/4", {"listing_type": "sale"}),
    ("GET", "/listings?price_changed_since=1", None),
    ("GET", "/listings/3/prices", None), ("GET", "/listings/3/prices?since=1&include_prior=true",
                                          None),
    ("DELETE", "/listings/5", None), ("GET", "/listings/5", None),
    ("GET", "/listings/5/prices", None), ("PATCH", "/listings/99", {"price": 1}),
    ("GET", "/listings?page_size=100", None),
]


async def answers(app: Any, steps: list[tuple[str, str, dict | None]]
                  ) -> list[tuple[int, bytes]]:
    sock, port = bind_unused_port()
    server = HTTPServer(app)
    server.add_sockets([sock])
    got = []
    try:
        for method, path, form in steps:
            body = urlencode(form) if form is not None else (
                "" if method in ("POST", "PATCH") else None)
            response = await AsyncHTTPClient().fetch(
                f"http://127.0.0.1:{port}{path}", method=method, body=body, raise_error=False,
                allow_nonstandard_methods=True)
            got.append((response.code, STAMP.sub(rb'"\1":0', response.body or b"")))
    finally:
        server.stop()
        await server.close_all_connections()
    return got


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("service", ["user", "listing"])
async def test_both_backends_give_the_same_bytes(tmp_path: Path, service: str,
                                                 pg_database: Callable[[str], str]) -> None:
    module: Any = user_service if service == "user" else listing_service
    steps = USER_STEPS if service == "user" else LISTING_STEPS
    results = []
    for url in (f"sqlite:///{tmp_path / 'db.sqlite'}", pg_database(service)):
        store = await module.open_store(url)
        try:
            results.append(await answers(module.make_app(store), steps))
        finally:
            await store.close()
    on_sqlite, on_postgres = results
    for step, sqlite_answer, pg_answer in zip(steps, on_sqlite, on_postgres, strict=True):
        assert sqlite_answer == pg_answer, step
    if service == "user":
        assert any("\u2028".encode() in body for _, body in on_sqlite)
    else:
        assert any(str(MAX).encode() in body for _, body in on_sqlite)
