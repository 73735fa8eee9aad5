"""Unit tests of common/validation.py: each field rule, parse_fields, parse_id, the pager."""
from __future__ import annotations

import pytest

from common import validation as v
from common.errors import ApiError


def errors_of(call, *args, **kwargs) -> list[str]:
    with pytest.raises(ApiError) as caught:
        call(*args, **kwargs)
    assert caught.value.status_code == 400
    return caught.value.errors


def rejects(rule, value) -> bool:
    try:
        rule(value)
    except v.FieldError:
        return True
    return False


# --- integer (form and query text, or JSON ints) ------------------------------------------

@pytest.mark.parametrize("value, expected", [
    ("1", 1), ("42", 42), ("007", 7), (str(v.MAX_INT64), v.MAX_INT64), (1, 1),
    (v.MAX_INT64, v.MAX_INT64),
])
def test_integer_accepts_digits_and_ints(value, expected):
    parsed = v.integer(1)(value)
    assert parsed == expected and type(parsed) is int


@pytest.mark.parametrize("value", [
    "0", 0, "-1", -1, str(v.MAX_INT64 + 1), v.MAX_INT64 + 1, "1" * 20, "", " 1", "1 ", "+1",
    "1.0", "1e3",
    "0x10", "١٢", "abc", True, False, 1.0, 2.5, None, [1], {"n": 1},
])
def test_integer_rejects_everything_else(value):
    assert rejects(v.integer(1), value)


def test_integer_bounds_are_inclusive():
    rule = v.integer(1, 100)
    assert rule("100") == 100 and rule(1) == 1
    assert rejects(rule, "101") and rejects(rule, 0)


def test_integer_message_states_the_range():
    with pytest.raises(v.FieldError, match="an integer from 1 to 100"):
        v.integer(1, 100)("x")


# --- json_integer (JSON bodies) -------------------------------------------------------------

def test_json_integer_accepts_ints_only():
    rule = v.json_integer(1)
    assert rule(6000) == 6000 and rule(v.MAX_INT64) == v.MAX_INT64
    for value in ("6000", "1", True, 6000.0, None, [6000], 0, -5, v.MAX_INT64 + 1):
        assert rejects(rule, value), value


def test_json_integer_says_a_string_is_not_an_integer():
    with pytest.raises(v.FieldError, match="not a string"):
        v.json_integer(1)("5")


# --- listing_type, name -----------------------------------------------------------------------

def test_listing_type_is_rent_or_sale_exactly():
    assert v.listing_type("rent") == "rent" and v.listing_type("sale") == "sale"
    for value in ("RENT", "Sale", " rent", "rent ", "lease", "", None, 1, ["rent"], {"rent": 1}):
        assert rejects(v.listing_type, value), value


def test_name_is_trimmed():
    assert v.name("  Suresh Subramaniam \t\n") == "Suresh Subramaniam"


@pytest.mark.parametrize("value", ["Zoë Ó Briain", "山田 太郎", "Łukasz 🏠", "a" * 200, "x"])
def test_name_takes_any_unicode_up_to_200_characters(value):
    assert v.name(value) == value


def test_name_counts_characters_after_trimming():
    assert v.name("  " + "é" * 200 + "  ") == "é" * 200


@pytest.mark.parametrize("value", ["", "   ", "\t\n", "a" * 201, "é" * 201, "\ud800", 5, None,
                                   True, ["Ann"], {"name": "Ann"}])
def test_name_rejects_empty_long_non_strings_and_lone_surrogates(value):
    assert rejects(v.name, value)


# --- id_list ------------------------------------------------------------------------------------

def test_id_list_keeps_order_and_drops_duplicates():
    assert v.id_list("3,1,7,1,3") == [3, 1, 7]


def test_id_list_takes_up_to_100_ids():
    ids = ",".join(str(i) for i in range(1, 101))
    assert v.id_list(ids) == list(range(1, 101))
    assert rejects(v.id_list, ids + ",101")


@pytest.mark.parametrize("value", ["", ",", "1,", ",1", "1,,2", "1, 2", "0", "-1", "a,b", "1;2",
                                   str(v.MAX_INT64 + 1), 5, None])
def test_id_list_rejects_junk(value):
    assert rejects(v.id_list, value)


# --- parse_fields, parse_id --------------------------------------------------------------------

RULES = {"user_id": v.integer(1), "listing_type": v.listing_type, "price": v.integer(1)}


def test_parse_fields_returns_parsed_values():
    assert v.parse_fields({"user_id": "1", "listing_type": "rent", "price": "6000"}, RULES) == {
        "user_id": 1, "listing_type": "rent", "price": 6000}


def test_parse_fields_lists_every_problem_at_once():
    errors = errors_of(v.parse_fields, {"user_id": "x", "price": "0", "colour": "red"}, RULES)
    assert sorted(e.split(":")[0] for e in errors) == [
        "colour", "listing_type", "price", "user_id"]
    assert "listing_type: is required" in errors
    assert "colour: is not a known field" in errors


def test_parse_fields_optional_fields_may_be_absent_but_are_checked():
    assert v.parse_fields({}, {}, {"user_id": v.integer(1)}) == {}
    assert errors_of(v.parse_fields, {"user_id": "0"}, {}, {"user_id": v.integer(1)}) == [
        f"user_id: must be an integer from 1 to {v.MAX_INT64}"]


def test_parse_fields_can_ignore_unknown_fields():
    assert v.parse_fields({"n": "1", "x": "y"}, {"n": v.integer(1)}, reject_unknown=False) == {
        "n": 1}


def test_parse_id_names_the_id():
    assert v.parse_id("17") == 17
    for raw in ("0", "-3", "abc", "1.5", str(v.MAX_INT64 + 1), ""):
        assert errors_of(v.parse_id, raw)[0].startswith("id:"), raw


# --- pagination -------------------------------------------------------------------------------

def test_page_query_defaults_to_page_1_of_10():
    page, filters = v.parse_page_query({})
    assert (page.num, page.size, page.offset, filters) == (1, 10, 0, {})
    assert page.as_query() == {"page_num": 1, "page_size": 10}


def test_page_query_parses_pages_and_filters():
    page, filters = v.parse_page_query({"page_num": "3", "page_size": "100", "user_id": "9"},
                                       {"user_id": v.integer(1)})
    assert (page.num, page.size, page.offset, filters) == (3, 100, 200, {"user_id": 9})


def test_page_query_ignores_unknown_parameters():
    page, filters = v.parse_page_query({"_": "12345", "page_size": "5"})
    assert (page.size, filters) == (5, {})


@pytest.mark.parametrize("query, field", [
    ({"page_num": "0"}, "page_num"), ({"page_num": "-1"}, "page_num"),
    ({"page_num": "one"}, "page_num"), ({"page_num": ""}, "page_num"),
    ({"page_size": "0"}, "page_size"), ({"page_size": "101"}, "page_size"),
    ({"page_size": "1.5"}, "page_size"), ({"page_size": "true"}, "page_size"),
])
def test_page_query_rejects_out_of_range_instead_of_clamping(query, field):
    assert errors_of(v.parse_page_query, query)[0].startswith(f"{field}:")


def test_page_offset_of_a_huge_page_stays_in_64_bits():
    assert v.Page(v.MAX_INT64, 100).offset == v.MAX_INT64
