"""Password fields under the names apps really give them are never kept for a resume.

``pw``, ``new_pw``, ``oldpass``, ``newpass``, the German ``neues_passwort`` (stepup
ships German pages), ``mot_de_passe``, ``contraseña``, ``senha`` and the like, ``jwt``,
``bearer``, ``signing_key``, ``iban`` and ``account_number`` were not recognised: a
"change password" form behind a re-authentication waited in the store with both
passwords in clear for 10 minutes and came back in the resume page's hidden inputs.
An app can also name its own secret fields (``Suspensions(secret_fields=...)``)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reauth.name_styles import STYLES
from stepup.adapters.storage.memory import MemoryStore
from stepup.adapters.storage.sql import SQLStore
from stepup.errors import ConfigurationError
from stepup.resume import (
    AsyncSuspensions,
    NotSuspended,
    Resumed,
    Suspended,
    SuspendReason,
    Suspensions,
    is_secret_field,
)
from stepup.subject import Subject
from stepup.testing import SettableClock
from store_kinds import STORE_KINDS, open_store

ALICE = Subject("alice", "s1")
SECRET = NotSuspended(SuspendReason.SECRET_FIELD)

#: Secret names as words: each is refused alone, among other words, in every style.
SECRETS = [
    ["pw"], ["new", "pw"], ["old", "pw"], ["psw"], ["pswd"], ["mdp"],
    ["passwort"], ["kennwort"], ["altes", "passwort"], ["neues", "passwort"],
    ["mot", "de", "passe"], ["contrasena"], ["contraseña"], ["nueva", "contraseña"],
    ["senha"], ["nova", "senha"], ["wachtwoord"], ["haslo"], ["hasło"], ["parola"],
    ["salasana"], ["losenord"], ["lösenord"], ["jwt"], ["bearer"], ["signing", "key"],
    ["encryption", "key"], ["master", "key"], ["iban"], ["account", "number"],
    ["acct", "num"], ["passport", "number"],
    ["password", "hint"],  # decided: a hint can give the password away; fails safe
]  # fmt: skip
#: Secret names as one word, as apps write them (and in upper case, and inside a bracket).
COMPOUNDS = [
    "newpass", "oldpass", "userpass", "dbpass", "smtppass", "newpw", "oldpw", "userpw",
    "motdepasse", "neuesPasswort", "altesKennwort", "signingkey", "accountnumber", "iban2",
    "jwtToken", "bearerToken", "newPW", "NEWPASS", "user[newpass]", "neuepasswort",
]  # fmt: skip
#: Words that name nothing secret (alone or with each other), some that look like it.
ORDINARY = [
    "name", "email", "workspace", "compass", "encompass", "bypass", "overpass", "passport",
    "passenger", "passage", "passive", "title", "note", "new",
    "old", "user", "account", "key", "public", "hint", "power", "pwa",
    "company", "spawn", "paste", "parole", "sena", "jewel", "bear", "bearing", "ibis",
]  # fmt: skip

styles = st.sampled_from(sorted(STYLES))
others = st.lists(st.sampled_from(ORDINARY), max_size=2)


@given(st.sampled_from(SECRETS), others, others, styles)
def test_every_recognised_secret_name_is_refused_in_every_style(
    core: list[str], before: list[str], after: list[str], style: str
) -> None:
    name = STYLES[style]([*before, *core, *after])
    assert is_secret_field(name), name


@pytest.mark.parametrize("name", COMPOUNDS)
def test_one_word_compounds_are_secret(name: str) -> None:
    assert is_secret_field(name), name


@given(st.lists(st.sampled_from(ORDINARY), min_size=1, max_size=3), styles)
def test_ordinary_names_are_kept_in_every_style(words: list[str], style: str) -> None:
    name = STYLES[style](words)
    assert not is_secret_field(name), name
    assert not is_secret_field("".join(words)), words


@pytest.mark.parametrize(
    "name", ["compass", "compassHeading", "bypass_cache", "passport", "passport_country",
             "passportPhoto", "encompass", "user_workspace", "pwa_manifest", "sign_in_key"],
)  # fmt: skip
def test_words_that_only_contain_pass_are_ordinary(name: str) -> None:
    assert not is_secret_field(name), name


def test_the_reviewers_password_change_forms_are_never_kept() -> None:
    s = Suspensions(MemoryStore(), clock=SettableClock())
    for fields in (
        [("old_pw", "Hunter2-old"), ("new_pw", "Hunter2-new")],
        [("oldpass", "Hunter3-old"), ("newpass", "Hunter3-new")],
        [("altes_passwort", "Geheim-alt"), ("neues_passwort", "Geheim-neu")],
        [("mot_de_passe", "Secret-fr"), ("contraseña", "Secreto")],
        [("label", "deploy"), ("signing_key", "k"), ("iban", "DE89370400440532013000")],
    ):
        assert s.suspend(ALICE, "account.password.change", "POST", "/pw", fields) == SECRET


@pytest.fixture(params=STORE_KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    with open_store(request.param, tmp_path) as opened:
        yield opened


def test_every_store_refuses_a_password_change_and_keeps_an_ordinary_form(store: Any) -> None:
    s = Suspensions(store, clock=SettableClock())
    change = [("old_pw", "Hunter2-old"), ("new_pw", "Hunter2-new")]
    assert s.suspend(ALICE, "account.password.change", "POST", "/pw", change) == SECRET
    kept = s.suspend(ALICE, "user.update", "POST", "/p", [("name", "Alice"), ("compass", "N")])
    assert isinstance(kept, Suspended)  # the store itself keeps forms
    resumed = s.resume(ALICE, kept.token, "user.update")
    assert isinstance(resumed, Resumed)
    assert resumed.request.fields == (("name", "Alice"), ("compass", "N"))


def test_no_password_reaches_the_sqlite_file(tmp_path: Path) -> None:
    """The reviewer's check: the database file holds no byte of either password."""
    path = tmp_path / "stepup.sqlite3"
    store = SQLStore.sqlite(path)
    try:
        s = Suspensions(store, clock=SettableClock())
        for old, new in (("old_pw", "new_pw"), ("oldpass", "newpass"),
                         ("altes_passwort", "neues_passwort")):  # fmt: skip
            fields = [(old, "Hunter2-old"), (new, "Hunter2-new")]
            assert s.suspend(ALICE, "account.password.change", "POST", "/pw", fields) == SECRET
    finally:
        store.close()
    assert b"Hunter2" not in path.read_bytes()


def test_an_app_names_its_own_secret_fields() -> None:
    s = Suspensions(MemoryStore(), clock=SettableClock(), secret_fields=["kontonummer", "x_sig"])
    for name in ("kontonummer", "neue_kontonummer", "user[Kontonummer]", "KONTONUMMER",
                 "xSig", "x-sig", "form.x_sig.value"):  # fmt: skip
        fields = [("label", "a"), (name, "v")]
        assert s.suspend(ALICE, "bank.update", "POST", "/b", fields) == SECRET, name
    # Only a field holding the name: other fields (and the built-in names) are as before.
    kept = s.suspend(ALICE, "bank.update", "POST", "/b", [("konto", "a"), ("x", "1"), ("sig", "2")])
    assert isinstance(kept, Suspended)
    assert s.suspend(ALICE, "bank.update", "POST", "/b", [("new_pw", "p")]) == SECRET
    assert is_secret_field("neue-Kontonummer", also=["kontonummer"])
    assert not is_secret_field("neue-Kontonummer")


@pytest.mark.parametrize("declared", ["kontonummer", "konto_nummer", "KontoNummer", "konto-nummer"])
@pytest.mark.parametrize(
    "field",
    [
        "kontonummer",
        "kontoNummer",
        "KontoNummer",
        "konto_nummer",
        "neue_kontonummer",
        "user[Konto-Nummer]",
        "neueKontonummer",
    ],
)
def test_an_apps_name_is_found_however_either_is_written(declared: str, field: str) -> None:
    """The app writes its name one way, a form (a JavaScript front end, say) another:
    the name is found as the built-in ones are, its words written together."""
    assert is_secret_field(field, also=[declared])


def test_the_async_suspensions_take_the_apps_names_too() -> None:
    s = AsyncSuspensions(MemoryStore(), clock=SettableClock(), secret_fields=("pin_brief",))
    outcome = asyncio.run(s.suspend(ALICE, "a", "POST", "/b", [("pinBrief", "1234")]))
    assert outcome == SECRET


@pytest.mark.parametrize("names", ["kontonummer", b"pw", None, ["ok", ""], ["__"], ["ok", 7]])
def test_secret_field_names_that_protect_nothing_are_refused_at_start(names: Any) -> None:
    with pytest.raises(ConfigurationError):
        Suspensions(MemoryStore(), secret_fields=names)
    with pytest.raises(ConfigurationError):
        is_secret_field("x", also=names)


def test_docs_list_every_recognised_name() -> None:
    """docs/reauth.md lists the names a reader may rely on: none missing from it."""
    from stepup import resume

    doc = (Path(__file__).parents[2] / "docs" / "reauth.md").read_text(encoding="utf-8")
    names = [*resume._SECRET_PARTS, *resume._SECRET_WORDS, *resume._SECRET_ENDINGS,
             *resume._PUBLIC_PASSES, *(" ".join(pair) for pair in resume._SECRET_PAIRS)]  # fmt: skip
    assert [name for name in names if f"`{name}`" not in doc] == []


@pytest.mark.parametrize(
    "name",
    [
        "card_no", "cardNo", "ccno", "ccv", "creditcard", "debit_card", "backup_codes",
        "verificationCodes", "api_tokens", "kartennummer", "numero_tarjeta", "kortnummer",
        "numéro_de_carte", "sms_codes", "recovery_pins",
    ],
)  # fmt: skip
def test_card_numbers_and_plural_codes_are_secret(name: str) -> None:
    """Names a reviewer found kept in the store and echoed back on the resume page."""
    assert is_secret_field(name)


@pytest.mark.parametrize(
    "name",
    ["zip_codes", "country_codes", "promo_codes", "card_holder", "phone_numbers", "monkeys",
     "hockey", "keyboard", "cc_exp", "keys"],
)  # fmt: skip
def test_plural_public_names_stay_public(name: str) -> None:
    assert not is_secret_field(name)
