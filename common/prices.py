"""A listing's price trend over a window of its history: pure arithmetic, no I/O.

`change_percent` is exact: integers only, never a float. The percentage (last - first) /
first * 100 is rounded to 2 decimals HALF UP, i.e. a tie goes away from zero (1.005 -> 1.01,
-1.005 -> -1.01; not banker's rounding, which would give 1.00). It reaches JSON as a number
whose text is written here, always with two decimals ("-8.33", "10.00", "0.00"), through
`orjson.Fragment`: a float would print -8.33 too for small values (orjson writes the
shortest text that reads back as the same float), but not past 15 significant digits, which
prices up to 2**63 - 1 can reach.
"""
from __future__ import annotations

from typing import Any

import orjson


def change_percent_text(first: int, last: int) -> str:
    """(last - first) / first * 100, rounded half up to 2 decimals, as decimal text."""
    if first <= 0:
        raise ValueError(f"a price is positive, not {first}")
    # Hundredths of a percent: |change| * 100 (percent) * 100 (hundredths) / first.
    hundredths, remainder = divmod(abs(last - first) * 10_000, first)
    if 2 * remainder >= first:  # the half (and above) goes up, away from zero
        hundredths += 1
    if not hundredths:
        return "0.00"
    sign = "-" if last < first else ""
    return f"{sign}{hundredths // 100}.{hundredths % 100:02d}"


def change_percent(first: int, last: int) -> orjson.Fragment:
    """`change_percent_text` as a JSON number, for the answer's encoder."""
    return orjson.Fragment(change_percent_text(first, last))


def trend(prior: dict[str, int] | None, points: list[dict[str, int]]) -> dict[str, Any] | None:
    """The trend over a window: `points` are the window's, oldest first; `prior` the point
    in force at its start when it is older than the start (None without a start, or when the
    listing is younger than it).

    first: the price in force at the start (`prior`, else the window's first point: the
    listing's creation if it is younger than the start); last: the price in force at the
    end (the window's last point, else `prior`). None when the listing did not exist yet at
    the window's end (no point in it and none before it).
    """
    if prior is None and not points:
        return None
    start = prior if prior is not None else points[0]
    end = points[-1] if points else start
    first, last = start["price"], end["price"]
    return {"first": first, "last": last, "change_percent": change_percent(first, last)}
