"""Every answer's JSON encoding: compact UTF-8, and valid JSON even for text that is not UTF-8."""
from __future__ import annotations

import json

from common.validation import MAX_INT64
from common.web import dumps


def test_answers_are_compact_utf8_with_64_bit_integers() -> None:
    body = {"name": "Zoë 東京", "price": MAX_INT64, "user": None, "result": True}
    assert dumps(body) == ('{"name":"Zoë 東京","price":9223372036854775807,"user":null,'
                           '"result":true}').encode("utf-8")


def test_a_lone_surrogate_is_escaped_not_a_failure() -> None:
    encoded = dumps({"errors": ["\ud800x: is not a known field"]})
    assert encoded == b'{"errors":["\\ud800x: is not a known field"]}'
    assert json.loads(encoded) == {"errors": ["\ud800x: is not a known field"]}
