"""Unicode passwords (NIST SP 800-63B 5.1.1.2): equivalent spellings are one password.

``hash_password`` hashed the string as given and the check compared it as typed, so a
password set in NFC ("café" with a composed é, as most keyboards send it) and typed in
NFD (a decomposed é, as macOS file names and some input methods send it) was
``wrong_password`` and charged to the throttle. Now ``hash_password`` hashes the NFKC
form and a check tries the password as typed, then its NFKC form when that differs:
hashes made from un-normalised input (before, or by Django, Werkzeug, bcrypt) still
verify, one attempt is charged once, and an unknown user costs what a known one does.
"""

from __future__ import annotations

import unicodedata

import bcrypt
import pytest
from argon2 import PasswordHasher
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reauth_password.helpers import CountingHasher, Twin
from stepup.adapters.idp.password import (
    CHEAPEST,
    PasswordReason,
    PasswordReauth,
    hash_password,
    password_matches,
    throttle_key,
)
from stepup.adapters.idp.password_formats import (
    Argon2Verifier,
    BcryptVerifier,
    FlaskSecurityVerifier,
)
from stepup.adapters.storage.memory import MemoryStore
from stepup.testing import SettableClock
from stepup.throttle import ThrottlePolicy

R = PasswordReason
USER = "user-1"
FORMS = ("NFC", "NFD", "NFKC", "NFKD")
#: Set in NFC; NFD decomposes é and Å, NFKC also folds the ligature and the superscript.
PASSWORD = unicodedata.normalize("NFC", "café-Ångström ﬁx²")
TYPABLE = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")
CHEAP = PasswordHasher.from_parameters(CHEAPEST)


def nf(form: str, text: str) -> str:
    return unicodedata.normalize(form, text)  # type: ignore[arg-type]


def cheap_hash(password: str) -> str:
    return hash_password(password, hasher=CHEAP)


def lenient() -> PasswordReauth:
    return PasswordReauth(
        MemoryStore(),
        hasher=CHEAP,
        clock=SettableClock(),
        throttle=ThrottlePolicy(free_failures=10**6),
    )


@pytest.mark.parametrize("form", FORMS)
def test_every_normal_form_of_the_password_is_accepted(twin: Twin, form: str) -> None:
    verify = twin.build()
    assert nf(form, PASSWORD) != PASSWORD or form == "NFC"
    assert verify(USER, nf(form, PASSWORD), cheap_hash(PASSWORD)).reason is R.OK


def test_hash_password_hashes_the_nfkc_form() -> None:
    stored = cheap_hash(nf("NFD", PASSWORD))
    assert CHEAP.verify(stored, nf("NFKC", PASSWORD))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(password=st.text(TYPABLE, min_size=1, max_size=30), set_in=st.sampled_from(FORMS))
def test_any_password_in_any_form_verifies_in_every_form(password: str, set_in: str) -> None:
    stored = cheap_hash(nf(set_in, password))
    reauth = lenient()
    for form in FORMS:
        assert reauth.verify(USER, nf(form, password), stored).reason is R.OK


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    password=st.text(TYPABLE, min_size=1, max_size=30),
    other=st.text(TYPABLE, min_size=1, max_size=30),
)
def test_a_password_that_is_not_equivalent_is_still_refused(password: str, other: str) -> None:
    expected = R.OK if nf("NFKC", other) == nf("NFKC", password) else R.WRONG_PASSWORD
    assert lenient().verify(USER, other, cheap_hash(password)).reason is expected


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(password=st.text(TYPABLE, min_size=1, max_size=30))
def test_a_hash_of_the_raw_password_still_verifies_as_typed(password: str) -> None:
    # Made before this change, or by any library that does not normalise.
    raw = CHEAP.hash(password)
    result = lenient().verify(USER, password, raw)
    assert result.reason is R.OK
    assert result.new_hash is None


def test_a_raw_bcrypt_hash_verifies_and_its_upgrade_keeps_the_form_that_matched(
    twin: Twin,
) -> None:
    """The old hash was of the password as typed, and whatever sign-in accepted it must
    accept the upgrade (Django's, reading a saved ``argon2$`` upgrade, does not
    normalise): the new hash is of that same form."""
    typed = nf("NFD", PASSWORD)
    raw = bcrypt.hashpw(typed.encode(), bcrypt.gensalt(4)).decode()
    result = twin.build()(USER, typed, raw)
    assert result.reason is R.OK
    assert result.new_hash is not None
    assert CHEAP.verify(result.new_hash, typed)


def test_an_upgrade_after_the_nfkc_form_matched_is_of_the_nfkc_form(twin: Twin) -> None:
    normalized = bcrypt.hashpw(nf("NFKC", PASSWORD).encode(), bcrypt.gensalt(4)).decode()
    result = twin.build()(USER, nf("NFD", PASSWORD), normalized)
    assert result.reason is R.OK
    assert result.new_hash is not None
    assert CHEAP.verify(result.new_hash, nf("NFKC", PASSWORD))


@pytest.mark.parametrize(
    ("typed", "hashes"),
    [("wrong-ascii", 1), (nf("NFD", "wrong-é"), 2), (nf("NFC", "wrong-é"), 1)],
)
def test_a_wrong_password_is_charged_once_and_costs_one_hash_per_form(
    twin: Twin, hasher: CountingHasher, typed: str, hashes: int
) -> None:
    store = MemoryStore()
    verify = twin.build(store=store, hasher=hasher)
    stored = hash_password(PASSWORD, hasher=hasher)
    assert verify(USER, typed, stored).reason is R.WRONG_PASSWORD
    assert len(hasher.verified) == hashes
    assert store.throttle_state(throttle_key(USER)).failures == 1


@pytest.mark.parametrize("typed", ["wrong-ascii", nf("NFD", "wrong-é")])
def test_an_unknown_user_costs_what_a_known_user_with_a_wrong_password_costs(
    twin: Twin, hasher: CountingHasher, typed: str
) -> None:
    known, unknown = hasher, CountingHasher.from_parameters(CHEAPEST)
    assert isinstance(unknown, CountingHasher)
    stored = hash_password(PASSWORD, hasher=known)
    store = MemoryStore()
    twin.build(store=store, hasher=known)(USER, typed, stored)
    twin.build(store=store, hasher=unknown)("ghost", typed, None)
    assert len(unknown.verified) == len(known.verified) == (1 if typed.isascii() else 2)
    assert store.throttle_state(throttle_key("ghost")).failures == 1


def test_flask_security_verifier_keeps_flask_security_toos_own_rule(twin: Twin) -> None:
    """It normalises with the app's own form: with none, Flask-Security-Too's sign-in
    compares the password as typed, so an NFD spelling of a password stored in NFKC is
    refused here too, not retried in NFKC."""
    verifier = FlaskSecurityVerifier(None, single_hash=True, normalize_form=None)
    stored = CHEAP.hash(nf("NFKC", PASSWORD))  # what it stores for the NFKC spelling
    verify = twin.build(verifiers=[verifier])
    assert verify(USER, nf("NFKC", PASSWORD), stored).reason is R.OK
    assert verify(USER, nf("NFD", PASSWORD), stored).reason is R.WRONG_PASSWORD


def test_flask_security_verifier_with_its_default_form_accepts_every_form(twin: Twin) -> None:
    verifier = FlaskSecurityVerifier(None, single_hash=True)  # NFKD, as Flask-Security-Too
    stored = CHEAP.hash(nf("NFKD", PASSWORD))
    verify = twin.build(verifiers=[verifier])
    for form in FORMS:
        assert verify(USER, nf(form, PASSWORD), stored).reason is R.OK


def test_password_matches_checks_as_reauthentication_does() -> None:
    argon2 = Argon2Verifier(CHEAP)
    assert password_matches(argon2, cheap_hash(PASSWORD), nf("NFD", PASSWORD))
    assert password_matches(argon2, CHEAP.hash(nf("NFD", PASSWORD)), nf("NFD", PASSWORD))
    assert not password_matches(argon2, cheap_hash(PASSWORD), "café")
    raw_bcrypt = bcrypt.hashpw(nf("NFD", PASSWORD).encode(), bcrypt.gensalt(4)).decode()
    assert password_matches(BcryptVerifier(), raw_bcrypt, nf("NFD", PASSWORD))


def test_a_verifier_that_normalises_itself_gets_the_password_as_typed_only() -> None:
    """Any verifier may say it normalises (``normalises_passwords = True``), not only
    Flask-Security-Too's: stepup's NFKC retry is then not tried on it."""
    from stepup.adapters.idp.password import password_matches

    class Normalising:
        normalises_passwords = True
        seen: list[str] = []

        def verify(self, stored_hash: str, password: str) -> bool:
            self.seen.append(password)
            return False

    verifier = Normalising()
    assert not password_matches(verifier, "stored", "ﬁle")  # type: ignore[arg-type]
    assert verifier.seen == ["ﬁle"]
