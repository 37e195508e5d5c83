"""``uncacheable``: the Cache-Control value every guarded response carries."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stepup.integrations.cache_control import _directives, uncacheable

_STORING = ("public", "max-age", "s-maxage", "immutable", "stale-while-revalidate",
            "stale-if-error", "must-understand")  # fmt: skip


def _names(value: str) -> list[str]:
    return [d.partition("=")[0].strip().lower() for d in _directives(value)]


@pytest.mark.parametrize(
    ("given_value", "expected"),
    [
        (None, "private, no-store"),
        ("", "private, no-store"),
        ("public, max-age=3600", "private, no-store"),
        ("max-age=0, must-revalidate", "private, no-store, must-revalidate"),
        ("no-cache, s-maxage=60, no-transform", "private, no-store, no-cache, no-transform"),
        ('private="Set-Cookie", no-store', "private, no-store"),
        ("No-Store, PUBLIC, Immutable", "private, no-store"),
        (
            'no-cache="Set-Cookie, Vary", max-age=5',
            'private, no-store, no-cache="Set-Cookie, Vary"',
        ),
        ("must-understand, no-store", "private, no-store"),
        ("max-age = 10 ,, , x-app-hint", "private, no-store, x-app-hint"),
    ],
)
def test_examples(given_value: str | None, expected: str) -> None:
    assert uncacheable(given_value) == expected


_token = st.sampled_from(
    [
        "public", "PUBLIC", "private", 'private="Set-Cookie"', "no-store", "No-Store",
        "no-cache", 'no-cache="Set-Cookie, Vary"', "max-age=0", "max-age=3600", "s-maxage=60",
        "must-revalidate", "proxy-revalidate", "no-transform", "immutable",
        "stale-while-revalidate=30", "stale-if-error=60", "must-understand", "x-ext",
        'x-ext="a\\"b, c"', " ", "",
    ]
)  # fmt: skip
_values = st.one_of(
    st.none(),
    st.lists(_token, max_size=8).map(", ".join),
    st.lists(_token, max_size=8).map(",".join),
    st.text(max_size=40),
)


@given(_values)
def test_always_private_and_no_store_and_never_storing(value: str | None) -> None:
    result = uncacheable(value)
    names = _names(result)
    assert names[:2] == ["private", "no-store"]
    assert names.count("private") == 1
    assert names.count("no-store") == 1
    assert not set(names) & set(_STORING)
    # Django's cache middleware refuses any response whose value holds "private".
    assert "private" in result


@given(_values)
def test_idempotent(value: str | None) -> None:
    once = uncacheable(value)
    assert uncacheable(once) == once


@given(st.lists(st.sampled_from(["no-cache", "must-revalidate", "no-transform", "x-ext=1"]),
                unique=True, max_size=4))  # fmt: skip
def test_keeps_the_apps_other_directives_in_order(kept: list[str]) -> None:
    value = ", ".join(["public", *kept, "max-age=60"])
    assert uncacheable(value) == ", ".join(["private", "no-store", *kept])
