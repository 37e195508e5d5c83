"""Flask-Security-Too's hashes: checked as Flask-Security-Too checks them, never upgraded.

Flask-Security-Too runs the password through an HMAC keyed with the app's
``SECURITY_PASSWORD_SALT`` before hashing it with passlib (argon2, bcrypt, pbkdf2), so
the default verifiers, which hash the password itself, called every right password
``wrong_password`` and charged the throttle for it; passlib's ``$pbkdf2-sha512$`` was
``unsupported_hash``. The hashes here were made by Flask-Security-Too itself
(``flask_security_vectors.py``); passlib's pbkdf2 is also checked against :mod:`hashlib`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from typing import Any

import pytest
from argon2 import PasswordHasher
from hypothesis import given, settings
from hypothesis import strategies as st

from reauth_password.flask_security_vectors import SALT, UNSET, VECTORS, WRONG, Vector
from reauth_password.helpers import Recorder, Twin, all_text
from stepup.adapters.idp.password import CHEAPEST, PasswordReason, throttle_key
from stepup.adapters.idp.password_formats import (
    FLASK_SECURITY_SINGLE_HASH,
    MAX_PBKDF2_ITERATIONS,
    FlaskSecurityVerifier,
    MalformedHashError,
    PasslibPbkdf2Verifier,
    _ab64_decode,
    default_verifiers,
    find_verifier,
)
from stepup.adapters.storage.memory import MemoryStore

R = PasswordReason
USER = "fs-user-uniquifier"


def _config(vector: Vector, *, salt: str | None = None) -> dict[str, object]:
    """The Flask app's config the vector was made under."""
    config: dict[str, object] = {
        "SECURITY_PASSWORD_SALT": vector.salt if salt is None else salt,
        "SECURITY_PASSWORD_NORMALIZE_FORM": vector.normalize_form,
    }
    if vector.single_hash != UNSET:
        config["SECURITY_PASSWORD_SINGLE_HASH"] = vector.single_hash
    return config


def _name(vector: Vector) -> str:
    single = "" if vector.single_hash == UNSET else f" single_hash={vector.single_hash}"
    return f"{vector.scheme}{single} {len(vector.password.encode())}B {vector.stored[:14]}"


@pytest.mark.parametrize("vector", VECTORS, ids=_name)
def test_flask_security_toos_own_hashes_verify_as_it_verifies_them(vector: Vector) -> None:
    verifier = FlaskSecurityVerifier.from_config(_config(vector))
    assert verifier.recognise(vector.stored)
    assert verifier.verify(vector.stored, vector.password) is True
    assert verifier.verify(vector.stored, WRONG) is False
    # The salt keys the HMAC: another one fails, unless the scheme is hashed once.
    other = FlaskSecurityVerifier.from_config(_config(vector, salt=vector.salt + "x"))
    assert other.verify(vector.stored, vector.password) is vector.other_salt_matches
    assert verifier.needs_upgrade(vector.stored) is False


@pytest.mark.parametrize("scheme", ["argon2", "bcrypt", "pbkdf2_sha512"])
def test_the_default_verifiers_cannot_check_them_so_an_app_must_say_it_has_them(
    scheme: str,
) -> None:
    """The reviewer's finding: recognised as plain argon2 or bcrypt, the right password
    is wrong (and pbkdf2-sha512 unknown). Only the app knows its hashes carry an HMAC."""
    vector = next(v for v in VECTORS if v.scheme == scheme and v.single_hash == UNSET)
    defaults = default_verifiers(PasswordHasher.from_parameters(CHEAPEST))
    if scheme == "pbkdf2_sha512":
        assert not any(v.recognise(vector.stored) for v in defaults)
    else:
        assert (
            find_verifier(defaults, vector.stored).verify(vector.stored, vector.password) is False
        )


@pytest.mark.parametrize(
    "vector",
    [v for v in VECTORS if v.single_hash == UNSET and v.salt == SALT][:8],
    ids=_name,
)
def test_through_password_reauth_a_right_password_is_ok_and_never_rehashed(
    twin: Twin, recorder: Recorder, vector: Vector
) -> None:
    store = MemoryStore()
    upgraded: list[tuple[str, str]] = []
    verify = twin.build(
        store=store,
        verifiers=[FlaskSecurityVerifier(SALT, normalize_form=vector.normalize_form)],
        on_upgrade=lambda u, h: upgraded.append((u, h)),
    )
    result = verify(USER, vector.password, vector.stored)
    assert result.reason is R.OK
    # A plain argon2id hash saved over it would lock the user out of Flask-Security-Too's
    # own sign-in, which applies the HMAC first.
    assert result.new_hash is None
    assert upgraded == []
    assert store.throttle_state(throttle_key(USER)).failures == 0
    assert verify(USER, WRONG, vector.stored).reason is R.WRONG_PASSWORD


def test_a_bcrypt_password_longer_than_72_bytes_is_checked_on_its_first_72() -> None:
    """Flask-Security-Too cuts the HMAC (88 bytes) to 72; hashed once, the password itself
    was cut when hashed (and with bcrypt 5 Flask-Security-Too cannot check it at all)."""
    long = [v for v in VECTORS if v.scheme == "bcrypt" and len(v.password.encode()) >= 100]
    assert {v.single_hash for v in long} == {UNSET, True}
    for vector in long:
        verifier = FlaskSecurityVerifier.from_config(_config(vector))
        assert verifier.verify(vector.stored, vector.password)
        assert verifier.verify(vector.stored, vector.password + "more") is (
            vector.single_hash is True
        )


def test_the_password_is_normalised_with_the_apps_form_as_flask_security_too_does() -> None:
    nfkd = next(v for v in VECTORS if v.scheme == "argon2" and v.password.isascii() is False)
    made_unnormalised = next(v for v in VECTORS if v.normalize_form is None)
    made_nfc = next(v for v in VECTORS if v.normalize_form == "NFC")
    # The ligature and the composed letters, as typed, match the NFKD form it stored.
    assert FlaskSecurityVerifier(SALT).verify(nfkd.stored, nfkd.password)
    assert not FlaskSecurityVerifier(SALT, normalize_form=None).verify(nfkd.stored, nfkd.password)
    assert FlaskSecurityVerifier(SALT, normalize_form=None).verify(
        made_unnormalised.stored, made_unnormalised.password
    )
    assert FlaskSecurityVerifier(SALT, normalize_form="NFC").verify(
        made_nfc.stored, made_nfc.password
    )
    assert not FlaskSecurityVerifier(SALT).verify(made_nfc.stored, made_nfc.password)


def test_single_hash_is_read_as_flask_security_too_reads_it() -> None:
    both = [v for v in VECTORS if v.single_hash == ["pbkdf2_sha256"]]
    assert {v.scheme for v in both} == {"pbkdf2_sha256", "argon2"}
    for vector in both:
        # pbkdf2_sha256 hashed once, argon2 with the HMAC: both in one app.
        verifier = FlaskSecurityVerifier(SALT, single_hash={"pbkdf2_sha256"})
        assert verifier.verify(vector.stored, vector.password)
    made_with_false = next(v for v in VECTORS if v.single_hash is False)
    assert FlaskSecurityVerifier(SALT, single_hash=False).verify(
        made_with_false.stored, made_with_false.password
    )
    assert FlaskSecurityVerifier(SALT, single_hash=None).verify(
        made_with_false.stored, made_with_false.password
    )
    assert not FlaskSecurityVerifier(SALT, single_hash=True).verify(
        made_with_false.stored, made_with_false.password
    )


def test_from_config_takes_flask_security_toos_defaults() -> None:
    verifier = FlaskSecurityVerifier.from_config({"SECURITY_PASSWORD_SALT": SALT})
    assert repr(verifier) == "FlaskSecurityVerifier(single_hash=[], normalize_form='NFKD')"
    assert "argon2" not in FLASK_SECURITY_SINGLE_HASH
    on = FlaskSecurityVerifier.from_config({"SECURITY_PASSWORD_SINGLE_HASH": True})
    assert "pbkdf2_sha512" in repr(on)  # no salt needed when nothing is HMAC'd


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"salt": None}, "SECURITY_PASSWORD_SALT"),
        ({"salt": ""}, "SECURITY_PASSWORD_SALT"),
        ({"salt": None, "single_hash": {"argon2", "bcrypt"}}, "SECURITY_PASSWORD_SALT"),
        ({"salt": SALT, "single_hash": "argon2"}, "SECURITY_PASSWORD_SINGLE_HASH"),
        ({"salt": SALT, "single_hash": 1}, "SECURITY_PASSWORD_SINGLE_HASH"),
        ({"salt": SALT, "single_hash": [1]}, "SECURITY_PASSWORD_SINGLE_HASH"),
        ({"salt": SALT, "normalize_form": "NFX"}, "SECURITY_PASSWORD_NORMALIZE_FORM"),
        ({"salt": 12345}, "SECURITY_PASSWORD_SALT"),
    ],
)
def test_a_setting_it_cannot_use_is_refused_naming_it_never_the_salt(
    kwargs: dict[str, Any], says: str
) -> None:
    with pytest.raises(ValueError, match=says) as refused:
        FlaskSecurityVerifier(**kwargs)
    assert SALT not in str(refused.value)


def test_the_salt_is_in_no_repr_log_event_or_error(
    twin: Twin, recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    secret_salt = "the-apps-secret-salt-0123456789"
    verifier = FlaskSecurityVerifier(secret_salt)
    verify = twin.build(verifiers=[verifier])
    vector = VECTORS[0]
    with caplog.at_level(logging.DEBUG, "stepup"):
        results = [
            verify(USER, vector.password, vector.stored),
            verify(USER, WRONG, vector.stored),
            verify(USER, WRONG, "$pbkdf2-sha512$0100$c2FsdA$" + "A" * 86),
        ]
    errors = []
    for malformed in MALFORMED:
        with pytest.raises(MalformedHashError) as refused:
            verifier.recognise(malformed)
        errors.append(refused.value)
    text = caplog.text + all_text([verifier, *results, *recorder.events, *errors])
    assert secret_salt not in text
    assert secret_salt.encode().hex() not in text


#: A hash in each format that claims the format but cannot be read; the message names
#: the format.
MALFORMED = {
    "$pbkdf2-sha512$0100$c2FsdA$" + "A" * 86: "pbkdf2-sha512",  # zero-padded rounds
    f"$pbkdf2-sha512${MAX_PBKDF2_ITERATIONS + 1}$c2FsdA$" + "A" * 86: "pbkdf2-sha512",
    "$pbkdf2-sha512$4294967295$c2FsdA$" + "A" * 86: "pbkdf2-sha512",  # passlib's own cap
    "$pbkdf2-sha512$$c2FsdA$" + "A" * 86: "pbkdf2-sha512",  # empty rounds
    "$pbkdf2-sha512$-5$c2FsdA$" + "A" * 86: "pbkdf2-sha512",
    "$pbkdf2-sha512$1000$c2FsdA": "pbkdf2-sha512",  # passlib's config string, no checksum
    "$pbkdf2-sha512$1000$c2FsdA$" + "A" * 43: "pbkdf2-sha512",  # a sha256-sized checksum
    "$pbkdf2-sha256$1000$c2FsdA$" + "A" * 86: "pbkdf2-sha256",  # a sha512-sized one
    "$pbkdf2-sha256$1000$c2F!dA$" + "A" * 43: "pbkdf2-sha256",  # not base64
    "$pbkdf2-sha256$1000$c2FsdAxyz$" + "A" * 43: "pbkdf2-sha256",  # length 4n+1
    "$pbkdf2-sha256$1000$c2FsdA$" + "A" * 43 + "$x": "pbkdf2-sha256",
    "$pbkdf2-sha256$1000$" + "A" * 1400 + "$" + "A" * 43: "pbkdf2-sha256",  # salt > 1024 B
    "$2b$31$" + "a" * 53: "bcrypt",
    "$2b$12$" + "a" * 52: "bcrypt",
    "$argon2id$v=19$m=4194304,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo": "argon2",
    "$argon2id$v=19$garbage": "argon2",
}


@pytest.mark.parametrize("stored", list(MALFORMED))
def test_malformed_hashes_are_refused_naming_the_format_never_the_hash(stored: str) -> None:
    for verifier in (FlaskSecurityVerifier(SALT), FlaskSecurityVerifier(SALT, single_hash=True)):
        with pytest.raises(MalformedHashError) as refused:
            verifier.recognise(stored)
        assert MALFORMED[stored] in str(refused.value)
        assert stored not in str(refused.value)
        with pytest.raises(MalformedHashError):
            verifier.verify(stored, "whatever")  # never hashed, even if recognise is skipped


@pytest.mark.parametrize("stored", list(MALFORMED))
def test_malformed_hashes_are_malformed_through_password_reauth_after_the_charge(
    twin: Twin, stored: str
) -> None:
    store = MemoryStore()
    result = twin.build(store=store, verifiers=[FlaskSecurityVerifier(SALT)])(
        USER, "whatever", stored
    )
    assert result.reason is R.MALFORMED
    assert store.throttle_state(throttle_key(USER)).failures == 1


def test_absurd_rounds_are_refused_before_any_work(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[object] = []
    real = hashlib.pbkdf2_hmac

    def counting(*args: Any, **kwargs: Any) -> bytes:
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(hashlib, "pbkdf2_hmac", counting)
    absurd = "$pbkdf2-sha512$4000000000$c2FsdA$" + "A" * 86
    for verifier in (FlaskSecurityVerifier(SALT), PasslibPbkdf2Verifier()):
        with pytest.raises(MalformedHashError, match="rounds out of range"):
            verifier.verify(absurd, "whatever")
    assert calls == []


def test_other_formats_are_left_to_other_verifiers() -> None:
    verifier = FlaskSecurityVerifier(SALT)
    for stored in (
        "$6$rounds=5000$salt$hash",  # passlib's sha512_crypt: not read
        "pbkdf2:sha256:1000$salt$" + "0" * 64,  # Werkzeug's
        "pbkdf2_sha256$1000$salt$aGFzaA==",  # Django's
        "$pbkdf2$1000$c2FsdA$"
        + "A" * 27,  # passlib's pbkdf2_sha1: not a default of Flask-Security-Too
        "plaintext",
    ):
        assert verifier.recognise(stored) is False
        assert PasslibPbkdf2Verifier().recognise(stored) is False


# passlib's pbkdf2 and "ab64", against hashlib ------------------------------------------


def _ab64(data: bytes) -> str:
    """passlib's ab64_encode: base64, ``.`` for ``+``, no padding."""
    return base64.b64encode(data).decode().replace("+", ".").rstrip("=")


@settings(max_examples=200)
@given(data=st.binary(max_size=200))
def test_ab64_decodes_what_passlib_encodes(data: bytes) -> None:
    assert _ab64_decode(_ab64(data), "x") == data
    # passlib's decoder reads the standard alphabet too
    assert _ab64_decode(_ab64(data).replace(".", "+"), "x") == data


@given(text=st.text("./+ABCxyz019", min_size=1, max_size=40).filter(lambda t: len(t) % 4 == 1))
def test_ab64_of_impossible_length_is_malformed(text: str) -> None:
    with pytest.raises(MalformedHashError):
        _ab64_decode(text, "a passlib hash")


PASSWORDS = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), min_size=1, max_size=40
)


@settings(max_examples=50, deadline=None)
@given(
    password=PASSWORDS,
    other=PASSWORDS,
    salt=st.binary(max_size=64),
    rounds=st.integers(1, 50),
    digest=st.sampled_from(["sha256", "sha512"]),
)
def test_passlib_pbkdf2_agrees_with_hashlib(
    password: str, other: str, salt: bytes, rounds: int, digest: str
) -> None:
    checksum = hashlib.pbkdf2_hmac(digest, password.encode(), salt, rounds)
    stored = f"$pbkdf2-{digest}${rounds}${_ab64(salt)}${_ab64(checksum)}"
    verifier = PasslibPbkdf2Verifier()
    assert verifier.recognise(stored)
    assert verifier.verify(stored, password)
    assert verifier.verify(stored, other) is (other == password)
    assert verifier.needs_upgrade(stored)


@settings(max_examples=50, deadline=None)
@given(
    password=PASSWORDS,
    salt=st.text(min_size=1, max_size=30).filter(lambda s: s.isprintable()),
    rounds=st.integers(1, 20),
)
def test_the_hmac_is_flask_security_toos_get_hmac(password: str, salt: str, rounds: int) -> None:
    """base64(HMAC-SHA512(salt, normalised password)), then passlib's pbkdf2 of that."""
    import unicodedata

    secret = base64.b64encode(
        hmac.new(
            salt.encode(), unicodedata.normalize("NFKD", password).encode(), hashlib.sha512
        ).digest()
    )
    checksum = hashlib.pbkdf2_hmac("sha512", secret, b"saltsalt", rounds)
    stored = f"$pbkdf2-sha512${rounds}${_ab64(b'saltsalt')}${_ab64(checksum)}"
    assert FlaskSecurityVerifier(salt).verify(stored, password)
    assert not FlaskSecurityVerifier(salt, single_hash=True).verify(stored, password)


def test_plain_passlib_pbkdf2_upgrades_to_argon2id_like_the_other_formats(twin: Twin) -> None:
    """Without Flask-Security-Too's HMAC, passlib's pbkdf2 is an old format like any other:
    a match hands back an argon2id hash to store."""
    hasher = PasswordHasher.from_parameters(CHEAPEST)
    checksum = hashlib.pbkdf2_hmac("sha256", b"correct horse", b"0123456789abcdef", 1000)
    stored = f"$pbkdf2-sha256$1000${_ab64(b'0123456789abcdef')}${_ab64(checksum)}"
    verify = twin.build(
        hasher=hasher, verifiers=[*default_verifiers(hasher), PasslibPbkdf2Verifier()]
    )
    result = verify(USER, "correct horse", stored)
    assert result.reason is R.OK
    assert result.new_hash is not None
    assert hasher.verify(result.new_hash, "correct horse")
    assert verify(USER, "correct horsE", stored).reason is R.WRONG_PASSWORD


@pytest.mark.parametrize("digits", [4301, 10_000])
def test_rounds_too_long_to_read_are_malformed_not_a_value_error(digits: int) -> None:
    """Python refuses to convert an integer of more than 4300 digits (ValueError): such a
    rounds field is out of range before it is read, for the verifier's contract."""
    from stepup.adapters.idp.password_formats import MalformedHashError, PasslibPbkdf2Verifier

    stored = f"$pbkdf2-sha256${'9' * digits}$c2FsdA$" + "A" * 43
    with pytest.raises(MalformedHashError, match="rounds out of range"):
        PasslibPbkdf2Verifier().recognise(stored)


def test_a_salt_utf8_cannot_encode_is_refused_without_quoting_it() -> None:
    from stepup.adapters.idp.password_formats import FlaskSecurityVerifier

    salt = "secret-salt-\ud800-rest"
    with pytest.raises(ValueError, match="UTF-8 can encode") as caught:
        FlaskSecurityVerifier(salt)
    assert "secret-salt" not in str(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None or "secret" not in repr(caught.value.__context__)
