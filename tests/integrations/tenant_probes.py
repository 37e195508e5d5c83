"""Hostile tenant PATCH requests every integration must answer alike (issue 12 item 5):
bodies that are not valid JSON:API are a 400 JSON:API error, media types the endpoint
does not read are a 415, an ``Accept`` no JSON:API answer can meet is a 406, and
either way nothing is stored."""

from __future__ import annotations

import json
from typing import Any, Final

from stepup.tenants import MAX_BODY, MAX_DEPTH

JSONAPI: Final = "application/vnd.api+json"


def _doc(attributes: str) -> bytes:
    return b'{"data": {"type": "tenant", "attributes": ' + attributes.encode() + b"}}"


_ON: Final = '{"feature_flags": {"sensitive_actions_reauth": true}}'
_DEEP: Final = MAX_DEPTH - 2  # inside the document, data and attributes: one too many

#: (id, body, code of the first error): each is a 400 with a JSON:API ``errors`` array.
BAD_BODIES: Final[list[tuple[str, bytes, str]]] = [
    ("empty", b"", "invalid_json"),
    ("not-json", b"sensitive_actions_reauth=true", "invalid_json"),
    ("truncated", _doc(_ON)[:-1], "invalid_json"),
    ("not-utf8", b"\xff\xfe" + _doc(_ON), "invalid_json"),
    ("array", b"[" + _doc(_ON) + b"]", "invalid_document"),
    ("string", b'"data"', "invalid_document"),
    ("number", b"1", "invalid_document"),
    ("null", b"null", "invalid_document"),
    ("true", b"true", "invalid_document"),
    ("nested-arrays", b"[" * 30_000 + b"]" * 30_000, "invalid_json"),
    ("nested-objects", b'{"a":' * 10_000 + b"1" + b"}" * 10_000, "invalid_json"),
    ("nested-unclosed", b"{" * 60_000, "invalid_json"),
    (
        "nested-inside",
        _doc('{"feature_flags": ' + '{"x": ' * 900 + "1" + "}" * 901),
        "invalid_json",
    ),
    (
        "just-too-deep",
        _doc('{"feature_flags": ' + '{"x": ' * _DEEP + "1" + "}" * (_DEEP + 1)),
        "invalid_json",
    ),
    (
        "duplicate-flag",
        _doc(
            '{"feature_flags": {"sensitive_actions_reauth": true, "sensitive_actions_reauth": false}}'
        ),
        "invalid_json",
    ),
    ("duplicate-data", b'{"data": {"type": "tenant"}, ' + _doc(_ON)[1:], "invalid_json"),
    ("nan", _doc('{"feature_flags": {"sensitive_actions_reauth": NaN}}'), "invalid_json"),
    (
        "infinity",
        _doc('{"feature_flags": {"sensitive_actions_reauth": -Infinity}}'),
        "invalid_json",
    ),
    ("data-array", b'{"data": [' + _doc(_ON)[9:-1] + b"]}", "invalid_data"),
    ("data-missing", b'{"meta": {}}', "invalid_data"),
    (
        "wrong-type",
        b'{"data": {"type": "tenants", "attributes": ' + _ON.encode() + b"}}",
        "wrong_type",
    ),
    ("no-type", b'{"data": {"attributes": ' + _ON.encode() + b"}}", "invalid_type"),
    ("unknown-top", _doc(_ON)[:-1] + b', "included": []}', "unknown_member"),
    (
        "unknown-data",
        b'{"data": {"type": "tenant", "relationships": {}, "attributes": ' + _ON.encode() + b"}}",
        "unknown_member",
    ),
    ("attributes-array", b'{"data": {"type": "tenant", "attributes": []}}', "invalid"),
    (
        "other-id",
        b'{"data": {"type": "tenant", "id": "other", "attributes": ' + _ON.encode() + b"}}",
        "id_mismatch",
    ),
    (
        "oversized",
        _doc(
            '{"feature_flags": {"sensitive_actions_reauth": true}, "pad": "' + "x" * MAX_BODY + '"}'
        ),
        "too_large",
    ),
]

#: ``Content-Type`` values the endpoint refuses with a 415 before anything else is read.
BAD_MEDIA_TYPES: Final = [
    "",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "text/json",
    "application/jsonx",
    "application/vnd.api+json; charset=utf-8",
    "application/vnd.api+json; version=1",
    'application/vnd.api+json; ext="https://jsonapi.org/ext/atomic"',
    "application/json; charset=latin-1",
]


#: ``Accept`` values that rule out every JSON:API answer (JSON:API 1.1): a 406.
BAD_ACCEPTS: Final = [
    "application/vnd.api+json; charset=utf-8",
    "application/vnd.api+json; version=1, */*",
    'application/vnd.api+json; ext="https://jsonapi.org/ext/atomic"',
]


def check_406(response_status: int, content_type: str, body: Any) -> None:
    assert response_status == 406, body
    assert content_type == JSONAPI
    document = json.loads(body) if isinstance(body, bytes | str) else body
    assert document["errors"][0]["code"] == "not_acceptable"


#: Problems that name another resource than the endpoint's: 409 Conflict (JSON:API 1.1,
#: Updating Resources); every other bad body is a 400.
CONFLICTS: Final = frozenset({"wrong_type", "id_mismatch"})


def check_400(response_status: int, content_type: str, body: Any, code: str) -> None:
    """The answer to a bad body: a JSON:API error document naming ``code``, 400 (or 409
    for a type or id that names another resource)."""
    status = 409 if code in CONFLICTS else 400
    assert response_status == status, body
    assert content_type == JSONAPI
    document = json.loads(body) if isinstance(body, bytes | str) else body
    assert set(document) == {"errors"}
    assert document["errors"][0]["status"] == str(status)
    assert document["errors"][0]["code"] == code


def check_415(response_status: int, content_type: str, body: Any) -> None:
    assert response_status == 415, body
    assert content_type == JSONAPI
    document = json.loads(body) if isinstance(body, bytes | str) else body
    assert document["errors"][0]["code"] == "unsupported_media_type"


#: (query string, the parameter the 400 names): the endpoint knows no query parameter,
#: and JSON:API 1.1 has a server refuse one it cannot process (``include``, ``sort``,
#: sparse fieldsets it does not honour, and any other) rather than apply the change.
BAD_QUERIES: Final = [
    ("?include=owner", "include"),
    ("?sort=name", "sort"),
    ("?foo=bar", "foo"),
    ("?fields%5Btenant%5D=name", "fields[tenant]"),
    ("?fields[tenant]=name", "fields[tenant]"),
    ("?page[size]=1&include=owner", "page[size]"),
    ("?flag", "flag"),
    ("?=x", ""),
]


def check_query_400(response_status: int, content_type: str, body: Any, parameter: str) -> None:
    """The answer to a query parameter: a JSON:API 400 whose one error names it."""
    assert response_status == 400, body
    assert content_type == JSONAPI
    document = json.loads(body) if isinstance(body, bytes | str) else body
    assert document == {
        "errors": [
            {
                "status": "400",
                "code": "invalid_query_parameter",
                "title": "The tenant settings endpoint takes no query parameters",
                "source": {"parameter": parameter},
            }
        ]
    }
