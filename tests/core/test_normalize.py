"""Code input: separators allowed, everything else malformed; malformed never reaches the store."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stepup.adapters.storage.memory import MemoryStore
from stepup.records import ThrottleState
from stepup.testing import SettableClock
from stepup.testing.strategies import malformed_codes
from stepup.totp import MAX_CODE_LENGTH, TOTP, normalize_code
from stepup.verifier import TOTPVerifier, VerifyReason

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("123456", "123456"),
        ("123 456", "123456"),
        ("123-456", "123456"),
        ("12 34 56", "123456"),
        ("1 2 3 4 5 6", "123456"),
        ("123  456", "123456"),
        ("12-34 56", "123456"),
        ("000000", "000000"),
    ],
)
def test_separators_are_allowed(raw: str, expected: str) -> None:
    assert normalize_code(raw, 6) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "١٢٣٤٥٦",  # Arabic-Indic digits
        "۱۲۳۴۵۶",  # Extended Arabic-Indic (Persian) digits
        "１２３４５６",  # full-width digits
        "१२३४५६",  # Devanagari digits
        "123456\n",  # trailing newline
        "123456\r\n",
        "\t123456",
        "+123456",
        "-123456",
        "123_456",  # int() would accept this
        "¹²³⁴⁵⁶",  # superscripts: str.isdigit() is True for these
        "12345⁶",
        "①②③④⑤⑥",
        "",
        "1234567",  # over-long
        "12345",
        "1" * 1000,
        "123--456",
        "12-34-56",  # only one hyphen
        "123 -456",
        "123- 456",
        " 123456",
        "123456 ",
        "123456-",
        "-",
        " ",
        "12345a",
        "0x1234",
        "1e5000",
        "123456\x00",
        "123\u00a0456",  # no-break space is not an ASCII space
        "123\u2009456",  # thin space
        "123\u2010456",  # Unicode hyphen
        "123−456",  # minus sign
    ],
)
def test_malformed_inputs(raw: str) -> None:
    assert normalize_code(raw, 6) is None


@pytest.mark.parametrize("raw", [None, 123456, 123456.0, b"123456", ["123456"], object()])
def test_non_strings_are_malformed(raw: object) -> None:
    assert normalize_code(raw, 6) is None


def test_eight_digits() -> None:
    assert normalize_code("1234 5678", 8) == "12345678"
    assert normalize_code("123456", 8) is None


def test_long_input_is_cut_short_before_any_work() -> None:
    assert normalize_code(" " * MAX_CODE_LENGTH + "123456", 6) is None


@given(code=malformed_codes(6))
def test_generated_malformed_codes_are_refused(code: object) -> None:
    assert normalize_code(code, 6) is None


@given(
    digits=st.sampled_from([6, 8]),
    data=st.data(),
)
def test_valid_codes_with_separators_normalise_to_their_digits(
    digits: int, data: st.DataObject
) -> None:
    raw = data.draw(st.text(alphabet="0123456789", min_size=digits, max_size=digits))
    cut = data.draw(st.integers(1, digits - 1))
    separator = data.draw(st.sampled_from(["", " ", "  ", "-"]))
    assert normalize_code(raw[:cut] + separator + raw[cut:], digits) == raw


@given(code=st.text(max_size=40))
def test_output_is_always_ascii_digits_of_the_right_length(code: str) -> None:
    normalized = normalize_code(code, 6)
    if normalized is not None:
        assert len(normalized) == 6
        assert all(ch in "0123456789" for ch in normalized)
        assert normalized == code.replace(" ", "").replace("-", "")


@given(code=malformed_codes(6))
def test_malformed_never_touches_the_store_nor_counts(code: object) -> None:
    store = MemoryStore()
    verifier = TOTPVerifier(store, clock=SettableClock(1_699_999_980))
    calls: list[str] = []
    real = store.totp_attempt

    def spy(*args: object) -> object:
        calls.append("totp_attempt")
        return real(*args)  # type: ignore[arg-type]

    store.totp_attempt = spy  # type: ignore[method-assign]
    for _ in range(20):
        result = verifier.verify("c", TOTP(SECRET), code)
        assert result.reason is VerifyReason.MALFORMED
        assert not result.ok
        assert result.step is None
    assert calls == []
    assert store.throttle_state("c") == ThrottleState()


def test_malformed_does_not_block_the_owner() -> None:
    clock = SettableClock(1_699_999_980)
    verifier = TOTPVerifier(MemoryStore(), clock=clock)
    totp = TOTP(SECRET)
    for bad in ["١٢٣٤٥٦", "+123456", "", "123456\n"] * 50:
        assert verifier.verify("c", totp, bad).reason is VerifyReason.MALFORMED
    assert verifier.verify("c", totp, totp.at(clock())).ok
