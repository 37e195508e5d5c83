"""stepup.resume.is_secret_field reads a field name as words, however it is written.

``otpCode``, ``newPin`` or ``recoveryCode`` were judged not secret (the name was
lower-cased before it was split into words), so a form with them was kept in the store
with their values and shown again on the resume page."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reauth.name_styles import STYLES
from stepup.adapters.storage.memory import MemoryStore
from stepup.resume import NotSuspended, SuspendReason, Suspensions, is_secret_field
from stepup.subject import Subject
from stepup.testing import SettableClock

#: Names of secrets, as words.
SECRETS = [
    ["password"], ["new", "password"], ["client", "secret"], ["otp"], ["otp", "code"],
    ["totp", "code"], ["hotp"], ["mfa", "code"], ["sms", "code"], ["verification", "code"],
    ["one", "time", "code"], ["security", "code"], ["pin"], ["new", "pin"], ["pin", "code"],
    ["recovery"], ["recovery", "code"], ["passphrase"], ["new", "passphrase"], ["passcode"],
    ["pass"], ["pwd"], ["token"], ["auth", "token"], ["reset", "token"], ["api", "key"],
    ["private", "key"], ["cvv"], ["cvc"], ["ssn"], ["pan"], ["card", "number"], ["tan"],
    # The longer spellings of the same secrets (review 15: they were kept and shown).
    ["social", "security", "number"], ["security", "question", "answer"], ["mfa"],
    ["cc", "num"], ["card", "num"], ["seed", "phrase"], ["mnemonic"], ["privkey"],
]  # fmt: skip
#: Words that name nothing secret, alone or together.
ORDINARY = [
    "user", "name", "label", "note", "title", "topic", "street", "city", "country", "email",
    "phone", "amount", "quantity", "comment", "description", "shipping", "address", "new",
    "confirm", "first", "last", "display", "public", "ssh", "key", "workspace", "reason",
]  # fmt: skip

styles = st.sampled_from(sorted(STYLES))
ordinary = st.lists(st.sampled_from(ORDINARY), max_size=2)


@given(st.sampled_from(SECRETS), ordinary, ordinary, styles)
def test_a_secret_is_secret_in_every_shape(
    core: list[str], before: list[str], after: list[str], style: str
) -> None:
    name = STYLES[style]([*before, *core, *after])
    assert is_secret_field(name), name


@given(st.lists(st.sampled_from(ORDINARY), min_size=1, max_size=4), styles)
def test_ordinary_words_are_ordinary_in_every_shape(words: list[str], style: str) -> None:
    name = STYLES[style](words)
    assert not is_secret_field(name), name
    assert not is_secret_field("".join(words)), words


@given(st.lists(st.sampled_from([*ORDINARY, "otp", "code", "pin", "zip", "postal"]), min_size=1,
                max_size=4))  # fmt: skip
def test_the_shape_never_changes_the_answer(words: list[str]) -> None:
    answers = {style: is_secret_field(render(words)) for style, render in STYLES.items()}
    assert len(set(answers.values())) == 1, answers


@pytest.mark.parametrize(
    "name",
    ["otpCode", "newPin", "pinCode", "verificationCode", "oneTimeCode", "recoveryCode",
     "passphrase", "passcode", "OTPCode", "newPIN", "otpcode", "pincode", "smscode", "newpin",
     "authtoken", "apiKey", "cvv2", "CVC", "x-pin", "user[newPassword]"],
)  # fmt: skip
def test_the_reviewers_names_and_one_word_compounds_are_secret(name: str) -> None:
    assert is_secret_field(name)


@pytest.mark.parametrize(
    "name",
    ["footprint", "topic", "csrf_token", "csrfToken", "xsrf-token", "postalCode", "zip_code",
     "countryCode", "currency_code", "zipcode", "barcode", "promoCode", "shipping_address",
     "passenger", "pinned", "spinner", "opinion", "key", "sshKey"],
)  # fmt: skip
def test_ordinary_names_with_secret_looking_parts_are_kept(name: str) -> None:
    assert not is_secret_field(name)


def test_a_form_with_a_camel_case_secret_is_not_kept() -> None:
    s = Suspensions(MemoryStore(), clock=SettableClock())
    fields = [("label", "x"), ("otpCode", "123456"), ("newPin", "4321")]
    outcome = s.suspend(Subject("alice", "s1"), "api_key.regenerate", "POST", "/k", fields)
    assert outcome == NotSuspended(SuspendReason.SECRET_FIELD)
