"""Field rules of the contract, shared by form-encoded, query-string and JSON input.

Text sources (forms, query strings) carry integers as strings of ASCII digits; JSON carries
them as JSON integers, never as strings or booleans. Every rule reports a message that names
its field, and `parse_fields` collects all of them before failing, so a client learns every
problem in one round trip.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from common.errors import ApiError

MAX_INT64 = 2**63 - 1
MAX_PAGE_SIZE = 100
MAX_BATCH_IDS = 100
MAX_NAME_LENGTH = 200
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 128
LISTING_TYPES = ("rent", "sale")

_DIGITS = re.compile(r"[0-9]{1,19}")


class FieldError(ValueError):
    """A single field's value broke its rule; the message does not repeat the field name."""


Rule = Callable[[Any], Any]


def integer(minimum: int, maximum: int = MAX_INT64) -> Rule:
    """An integer in [minimum, maximum]: a JSON int, or a string of digits from a form."""
    span = f"an integer from {minimum} to {maximum}"

    def rule(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise FieldError(f"must be {span}")
        if isinstance(value, str):
            if not _DIGITS.fullmatch(value):
                raise FieldError(f"must be {span}")
            value = int(value)
        if not minimum <= value <= maximum:
            raise FieldError(f"must be {span}")
        return value

    return rule


def json_integer(minimum: int, maximum: int = MAX_INT64) -> Rule:
    """Like `integer`, but strings are refused: JSON bodies carry integers as integers."""
    text_or_int = integer(minimum, maximum)

    def rule(value: Any) -> int:
        if isinstance(value, str):
            raise FieldError(f"must be a JSON integer from {minimum} to {maximum}, not a string")
        return text_or_int(value)

    return rule


def listing_type(value: Any) -> str:
    if value not in LISTING_TYPES:
        raise FieldError("must be 'rent' or 'sale'")
    return value


def flag(value: Any) -> bool:
    """A yes/no query parameter, spelled as JSON spells it."""
    if value not in ("true", "false"):
        raise FieldError("must be true or false")
    return value == "true"


def _text(value: Any, low: int, high: int, what: str, *, trim: bool) -> str:
    """A string of `low` to `high` code points (after trimming, if `trim`), valid Unicode."""
    if not isinstance(value, str):
        raise FieldError("must be a string")
    text = value.strip() if trim else value
    if not low <= len(text) <= high:
        raise FieldError(f"must be {low} to {high} characters{what}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise FieldError("must be valid Unicode (no lone surrogates)") from None
    return text


def name(value: Any) -> str:
    trimmed = _text(value, 1, MAX_NAME_LENGTH, " after trimming", trim=True)
    if "\x00" in trimmed:  # PostgreSQL's text cannot hold it: refused on both backends alike
        raise FieldError("must not contain U+0000 (NUL)")
    return trimmed


def password(value: Any) -> str:
    """8 to 128 characters (code points) of any Unicode, kept exactly as given (not trimmed).

    The messages never repeat the value: it is a secret, and error answers are logged."""
    return _text(value, MIN_PASSWORD_LENGTH, MAX_PASSWORD_LENGTH, "", trim=False)


def id_list(value: Any) -> list[int]:
    """Comma-separated positive ids, at most MAX_BATCH_IDS, duplicates dropped, order kept."""
    if not isinstance(value, str) or not value:
        raise FieldError("must be a comma-separated list of positive integers")
    parse = integer(1)
    ids = list(dict.fromkeys(parse(part) for part in value.split(",")))
    if len(ids) > MAX_BATCH_IDS:
        raise FieldError(f"must list at most {MAX_BATCH_IDS} ids")
    return ids


def parse_id(raw: str) -> int:
    """An id taken from a URL path: 400 naming `id` unless it is a positive 64-bit integer."""
    return parse_fields({"id": raw}, {"id": integer(1)})["id"]


def parse_fields(
    raw: Mapping[str, Any],
    required: Mapping[str, Rule],
    optional: Mapping[str, Rule] | None = None,
    *,
    reject_unknown: bool = True,
) -> dict[str, Any]:
    """Apply each field's rule and return the parsed values; 400 listing every problem."""
    optional = optional or {}
    errors: list[str] = []
    parsed: dict[str, Any] = {}
    for field, rule in {**required, **optional}.items():
        if field not in raw:
            if field in required:
                errors.append(f"{field}: is required")
            continue
        try:
            parsed[field] = rule(raw[field])
        except FieldError as error:
            errors.append(f"{field}: {error}")
    if reject_unknown:
        errors.extend(f"{field}: is not a known field" for field in raw
                      if field not in required and field not in optional)
    if errors:
        raise ApiError(400, errors)
    return parsed


def parse_changes(raw: Mapping[str, Any], rules: Mapping[str, Rule]) -> dict[str, Any]:
    """A PATCH body: any of `rules`' fields, at least one, nothing else; 400 otherwise."""
    changes = parse_fields(raw, {}, rules)
    if not changes:
        raise ApiError(400, [f"body: must change at least one of {', '.join(rules)}"])
    return changes


@dataclass(frozen=True)
class Page:
    """One page of a list, as `page_num` and `page_size` ask for it."""

    num: int = 1
    size: int = 10

    @property
    def offset(self) -> int:
        # A huge page_num is valid but must not overflow SQLite's 64-bit OFFSET.
        return min((self.num - 1) * self.size, MAX_INT64)

    def as_query(self) -> dict[str, int]:
        return {"page_num": self.num, "page_size": self.size}


PAGE_RULES: dict[str, Rule] = {
    "page_num": integer(1),
    "page_size": integer(1, MAX_PAGE_SIZE),
}


def parse_page_query(
    query: Mapping[str, str], filters: Mapping[str, Rule] | None = None
) -> tuple[Page, dict[str, Any]]:
    """The one pagination parser: `page_num`, `page_size` and the list's optional filters.

    Unknown query parameters are ignored (curl users add cache busters); known ones are strict.
    """
    fields = parse_fields(query, {}, {**PAGE_RULES, **(filters or {})}, reject_unknown=False)
    page = Page(fields.pop("page_num", Page.num), fields.pop("page_size", Page.size))
    return page, fields


@dataclass(frozen=True)
class IfMatch:
    """An If-Match header (RFC 9110, 13.1.1): `*`, or the versions its entity tags name.

    A record's entity tag is its version, `updated_at`, in quotes; a tag the public API
    builds for a record with another embedded in it adds the other's version after a dash
    (`"<listing version>-<user version>"`), and only the first number is the record's own.
    Weak tags and tags of another form match nothing: If-Match compares strongly.
    """

    any: bool
    versions: frozenset[int]
    header: str  # as received: the public API passes it on to the service that owns the record


_ENTITY_TAG = re.compile(r'\s*(W/)?"([\x21\x23-\x7e]*)"\s*')
_OWN_VERSION = re.compile(r"([0-9]{1,19})(?:-[0-9]{1,19})?")


def entity_tag(version: int, *embedded: int) -> str:
    """The strong entity tag of a record at `version` (with the versions of records in it)."""
    return '"' + "-".join(map(str, (version, *embedded))) + '"'


def parse_if_match(value: str | None) -> IfMatch | None:
    """The If-Match header, None when absent; 400 naming it when it is not `*` or a list of
    entity tags."""
    if value is None:
        return None
    if value.strip() == "*":
        return IfMatch(True, frozenset(), value)
    versions = set()
    for part in value.split(","):
        tag = _ENTITY_TAG.fullmatch(part)
        if tag is None:
            raise ApiError(400, ["If-Match: must be * or a comma-separated list of entity tags"
                                 ' such as "1700000000000000"'])
        own = _OWN_VERSION.fullmatch(tag[2])
        if own and not tag[1]:
            versions.add(int(own[1]))
    return IfMatch(False, frozenset(versions), value)


# The listing list's filters, the same on the listing service and on the public API.
LISTING_FILTERS: dict[str, Rule] = {
    "user_id": integer(1),
    "listing_type": listing_type,
    "min_price": integer(0),
    "max_price": integer(0),
    # Microseconds: only listings whose price a PATCH changed after this time. The price a
    # listing was created with is not a change: only its points after the first count.
    "price_changed_since": integer(0),
}


def parse_listing_query(query: Mapping[str, str]) -> tuple[Page, dict[str, Any]]:
    """A page of listings and its filters; 400 if the price range is upside down."""
    page, filters = parse_page_query(query, LISTING_FILTERS)
    if filters.get("min_price", 0) > filters.get("max_price", MAX_INT64):
        raise ApiError(400, ["min_price: must not be above max_price"])
    return page, filters


# A window of a listing's price history, in microseconds; both ends optional and inclusive.
PRICE_WINDOW_RULES: dict[str, Rule] = {"since": integer(0), "until": integer(0)}
# The listing service's history read also takes include_prior (what the public trend needs).
PRICES_RULES: dict[str, Rule] = {**PRICE_WINDOW_RULES, "include_prior": flag}


def parse_price_window(query: Mapping[str, str],
                       rules: Mapping[str, Rule] = PRICE_WINDOW_RULES) -> dict[str, Any]:
    """The given ones of `rules` (unknown parameters ignored, as for lists); 400 naming both
    if `since` is after `until`."""
    window = parse_fields(query, {}, rules, reject_unknown=False)
    if window.get("since", 0) > window.get("until", MAX_INT64):
        raise ApiError(400, ["since: must not be after until"])
    return window
