"""``Accept-Language`` as RFC 9110 section 12.5.4 reads it: ``*`` stands for every
language the header names nowhere else (so ``en;q=0, *`` asks for anything but English),
and the weight's ``q`` is a case-insensitive ABNF literal (RFC 5234 section 2.3), so
``Q=0.9`` weighs as ``q=0.9`` does."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stepup.i18n import DEFAULT_LOCALE, LOCALES, negotiate


@pytest.mark.parametrize(
    ("header", "chosen"),
    [
        ("en;q=0, *", "de"),  # English ruled out, anything else welcome
        ("en;q=0,*;q=0.5", "de"),
        ("en;q=0.1, *;q=0.9", "de"),  # English named, lighter than the rest
        ("de;q=0.5, *", "en"),  # German named, lighter than the rest
        ("de-DE;q=0, *", "en"),  # a region of German names German
        ("*", "en"),  # anything: the default
        ("fr, *;q=0.1", "en"),
        ("de;Q=0.9, en;Q=0.1", "de"),
        ("en;Q=0.1, de", "de"),
        ("DE;Q=0", "en"),
        ("en;q=0, de;q=0", "en"),  # everything ruled out: the documented fallback
        ("en;q=0, de;q=0, *", "en"),  # "*" names nothing left
        ("*;q=0", "en"),
    ],
)
def test_a_header_picks_the_language_it_asks_for(header: str, chosen: str) -> None:
    assert negotiate(header) == chosen


def test_a_wildcard_with_no_default_in_reach_picks_the_first_other_locale() -> None:
    # The locale hook's form: no default, so nothing but the header decides.
    assert negotiate("en;q=0, *", default="") == "de"
    assert negotiate("de;q=0, en;q=0, *", default="") == ""


#: Ranges a header may hold: the shipped languages, a region of each, one stepup does
#: not have, and the wildcard.
RANGES = ("en", "de", "en-GB", "de-CH", "fr", "*")
QVALUES = st.one_of(
    st.none(),
    st.just("0"),
    st.just("1"),
    st.integers(0, 1000).map(lambda n: f"{n / 1000:.3f}"),
)


def _primary(tag: str) -> str:
    return tag.split("-", 1)[0].lower()


def _weights(entries: list[tuple[str, str | None]]) -> dict[str, float]:
    """The reference: each shipped language's weight, read the RFC's way. A language
    named by a range (itself or a region of it) weighs what its heaviest range says;
    one named by none weighs what ``*`` says; unnamed and no ``*``: not acceptable."""

    def weight(q: str | None) -> float:
        return 1.0 if q is None else float(q)

    star = max((weight(q) for tag, q in entries if tag == "*"), default=0.0)
    result = {}
    for locale in LOCALES:
        named = [weight(q) for tag, q in entries if tag != "*" and _primary(tag) == locale]
        result[locale] = max(named) if named else star
    return result


@given(
    st.lists(st.tuples(st.sampled_from(RANGES), QVALUES), max_size=6),
    st.lists(st.booleans(), min_size=6, max_size=6),
)
def test_the_answer_is_a_heaviest_acceptable_language(
    entries: list[tuple[str, str | None]], upper: list[bool]
) -> None:
    header = ", ".join(
        tag if q is None else f"{tag};{'Q' if big else 'q'}={q}"
        for (tag, q), big in zip(entries, upper, strict=False)
    )
    weights = _weights(entries)
    best = max(weights.values())
    chosen = negotiate(header)
    if best == 0:  # nothing acceptable: the documented fallback
        assert chosen == DEFAULT_LOCALE
    else:
        assert weights[chosen] == best, (header, weights)


@given(
    st.sampled_from(RANGES),
    st.integers(0, 1000),
    st.sampled_from(RANGES),
    st.integers(0, 1000),
)
def test_the_case_of_q_changes_nothing(first: str, q1: int, second: str, q2: int) -> None:
    lower = f"{first};q={q1 / 1000:.3f}, {second};q={q2 / 1000:.3f}"
    assert negotiate(lower.replace("q=", "Q=")) == negotiate(lower)


@given(st.sampled_from(LOCALES), st.sampled_from(["*", "*;q=0.5", "*;Q=1"]))
def test_a_language_ruled_out_is_never_what_the_wildcard_gives(locale: str, star: str) -> None:
    chosen = negotiate(f"{locale};q=0, {star}")
    assert chosen != locale
    assert chosen in LOCALES
