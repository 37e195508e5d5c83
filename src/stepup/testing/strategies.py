"""Hypothesis strategies for secrets, codes, clocks and action names."""

from __future__ import annotations

import base64
from collections.abc import Callable

from hypothesis import strategies as st

__all__ = [
    "action_names",
    "malformed_codes",
    "secrets",
    "six_digit_codes",
    "timestamps",
    "totp_parameters",
]


def secrets(min_bytes: int = 10, max_bytes: int = 64) -> st.SearchStrategy[str]:
    """Unpadded base32 secrets of ``min_bytes`` to ``max_bytes`` random bytes."""
    return st.binary(min_size=min_bytes, max_size=max_bytes).map(
        lambda raw: base64.b32encode(raw).decode("ascii").rstrip("=")
    )


def six_digit_codes() -> st.SearchStrategy[str]:
    return st.text(alphabet="0123456789", min_size=6, max_size=6)


def timestamps(
    min_value: float = 0.0, max_value: float = 4_102_444_800.0
) -> st.SearchStrategy[float]:
    """Unix times from 1970 to 2100."""
    return st.floats(min_value=min_value, max_value=max_value, allow_nan=False)


def totp_parameters() -> st.SearchStrategy[dict[str, object]]:
    return st.fixed_dictionaries(
        {
            "digits": st.sampled_from([6, 8]),
            "period": st.sampled_from([30, 60]),
            "algorithm": st.sampled_from(["SHA1", "SHA256", "SHA512"]),
        }
    )


_NOT_ASCII_DIGITS = st.characters(exclude_categories=["Cs"], exclude_characters="0123456789 -")


_FULL_WIDTH = str.maketrans("0123456789", "".join(chr(0xFF10 + i) for i in range(10)))
_ARABIC_INDIC = str.maketrans("0123456789", "".join(chr(0x0660 + i) for i in range(10)))
_SUPERSCRIPT = str.maketrans(
    "0123456789", "\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079"
)
#: Ways to spoil a well-formed code that int(), NFKC or a lax strip() would forgive.
_SPOILERS: tuple[Callable[[str], str], ...] = (
    lambda c: c + "\n",
    lambda c: c + "\r\n",
    lambda c: " " + c,
    lambda c: c + " ",
    lambda c: "\t" + c,
    lambda c: "+" + c,
    lambda c: "-" + c,
    lambda c: c + "-",
    lambda c: c[:3] + "_" + c[3:],
    lambda c: c[:2] + "-" + c[2:4] + "-" + c[4:],
    lambda c: c[:3] + "- " + c[3:],
    lambda c: c[:3] + "\u00a0" + c[3:],
    lambda c: c[:3] + "\u2010" + c[3:],
    lambda c: c.translate(_FULL_WIDTH),
    lambda c: c.translate(_ARABIC_INDIC),
    lambda c: c.translate(_SUPERSCRIPT),
    lambda c: c + "0",
    lambda c: c[1:],
)


def malformed_codes(digits: int = 6) -> st.SearchStrategy[object]:
    """Inputs that must never verify: wrong length, foreign digits, stray characters,
    well-formed codes spoiled in ways a lax parser forgives, non-strings."""
    unicode_digits = st.characters(categories=["Nd", "No"]).filter(
        lambda ch: ch not in "0123456789"
    )
    ascii_digit = st.sampled_from("0123456789")
    return st.one_of(
        st.text(alphabet="0123456789", max_size=32).filter(lambda s: len(s) != digits),
        st.lists(ascii_digit, min_size=digits - 1, max_size=digits - 1).flatmap(
            lambda ds: st.tuples(
                st.integers(0, digits - 1), st.one_of(unicode_digits, _NOT_ASCII_DIGITS)
            ).map(lambda pair: "".join(ds[: pair[0]]) + pair[1] + "".join(ds[pair[0] :]))
        ),
        st.tuples(
            st.text(alphabet="0123456789", min_size=digits, max_size=digits),
            st.sampled_from(_SPOILERS),
        ).map(lambda pair: pair[1](pair[0])),
        st.integers(),
        st.floats(),
        st.none(),
        st.binary(min_size=digits, max_size=digits),
    )


def action_names() -> st.SearchStrategy[str]:
    segment = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_0123456789", min_size=1, max_size=12)
    return st.lists(segment, min_size=1, max_size=4).map(".".join)
