"""A token in the header and in the query string is ``invalid_request`` (RFC 6750
sections 2 and 3.1), however the query spells the name: the check reads the names as the
application will, decoded."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stepup.integrations.http import HttpResponse, RequestInfo, bearer_credentials

NAME = "access_token"


def answer(query: str) -> str | HttpResponse:
    return bearer_credentials(RequestInfo("GET", "/api?" + query, authorization="Bearer abc"))


def refused(result: str | HttpResponse) -> bool:
    if not isinstance(result, HttpResponse):
        return False
    assert result.status == 400
    assert result.headers["WWW-Authenticate"].startswith('Bearer error="invalid_request"')
    assert json.loads(result.body)["error"] == "invalid_request"
    return True


@pytest.mark.parametrize(
    "query",
    [
        "access%5Ftoken=SECRET",
        "access%5ftoken=SECRET",
        "%61ccess_token=SECRET",
        "x=1&%61%63%63%65%73%73%5F%74%6F%6B%65%6E=SECRET",
        "access_token",
        "access%5Ftoken=",
    ],
)
def test_an_encoded_name_is_still_a_token_in_the_query(query: str) -> None:
    assert refused(answer(query))


@pytest.mark.parametrize(
    "query",
    ["q=access_token", "not_access_token=1", "access%5Ftokens=1", "access%2Btoken=1", ""],
)
def test_other_names_and_values_are_not(query: str) -> None:
    assert answer(query) == "abc"


@given(
    escaped=st.lists(st.booleans(), min_size=len(NAME), max_size=len(NAME)),
    upper=st.booleans(),
    before=st.sampled_from(["", "a=1&", "x=%20&"]),
    value=st.sampled_from(["", "=", "=tok", "=a%20b"]),
)
def test_any_percent_encoding_of_the_name_is_refused(
    escaped: list[bool], upper: bool, before: str, value: str
) -> None:
    spelled = "".join(
        (f"%{ord(c):02X}" if upper else f"%{ord(c):02x}") if escape else c
        for c, escape in zip(NAME, escaped, strict=True)
    )
    assert refused(answer(before + spelled + value))
