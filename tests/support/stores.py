"""SQL a test runs straight on a store's own database, whichever backend it is."""
from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from typing import Any

from common.pg import PgStore


def for_store(store: Any, sql: str) -> str:
    """`sql` written with SQLite's `?` placeholders, numbered ($1, $2, ...) for PostgreSQL."""
    if not isinstance(store, PgStore):
        return sql
    numbers = itertools.count(1)
    return re.sub(r"\?", lambda _: f"${next(numbers)}", sql)


async def run_sql(store: Any, sql: str, parameters: Sequence[Any] = ()) -> list[Any]:
    """The rows of one statement (`?` placeholders) on the store's database."""
    return list(await store.fetch_all(for_store(store, sql), parameters))
