"""The catalogs: complete, compiled, in step with the source; and how a locale is chosen."""

from __future__ import annotations

import gettext
import json
from pathlib import Path
from typing import Any

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from hypothesis import given
from hypothesis import strategies as st

from stepup.i18n import DOMAIN, LOCALE_DIR, LOCALES, N_, Message, format_time, negotiate, translate
from stepup.integrations.http import RequestInfo, authentication_required
from stepup.integrations.passkey_endpoint import result_response
from stepup.integrations.views import jsonapi_error, throttled_message
from stepup.passkeys import PasskeyReason, PasskeyResult

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = [code for code in LOCALES if code != "en"]


def _catalog(code: str) -> list[tuple[Any, Any, bool]]:
    """(msgid, translation, fuzzy) of each entry: a plural entry's msgid and translation
    are tuples (msgid and msgid_plural; msgstr[0], msgstr[1]...)."""
    with (LOCALE_DIR / code / "LC_MESSAGES" / f"{DOMAIN}.po").open("rb") as f:
        catalog = read_po(f)
    return [(m.id, m.string, m.fuzzy) for m in catalog if m.id]  # type: ignore[misc]


@pytest.mark.parametrize("code", SHIPPED)
def test_every_msgid_is_translated_and_none_is_fuzzy(code: str) -> None:
    entries = _catalog(code)
    assert entries
    assert [msgid for msgid, text, _ in entries if not _translated(text)] == []
    assert [msgid for msgid, _, fuzzy in entries if fuzzy] == []


def _translated(text: Any) -> bool:
    return all(text) if isinstance(text, tuple) else bool(text)


@pytest.mark.parametrize("code", SHIPPED)
def test_the_shipped_mo_matches_its_po(code: str) -> None:
    """The compiled catalog (package data) says what the .po says: run
    ``pybabel compile -D stepup -d src/stepup/locale`` after editing a .po."""
    compiled = gettext.translation(DOMAIN, LOCALE_DIR, [code])
    for msgid, text, _ in _catalog(code):
        if isinstance(msgid, tuple):  # a plural entry: each form, by the catalog's rule
            assert tuple(compiled.ngettext(*msgid, n) for n in (1, 2)) == text, msgid
        else:
            assert compiled.gettext(msgid) == text, msgid


def _source_msgids() -> set[Any]:
    """Every text the source marks: a msgid, or for a text about a number (``Nn_``,
    ``ngettext``) the pair (msgid, msgid_plural), as the catalogs key it."""
    method_map = [
        ("src/stepup/**.py", "python"),
        ("src/stepup/integrations/templates/**.html", "jinja2"),
    ]
    options = {"src/stepup/integrations/templates/**.html": {"extensions": "jinja2.ext.i18n"}}
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None, "Nn_": (1, 2)}
    found: set[Any] = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map, options, keywords=keywords
    ):
        found.add(message if isinstance(message, str) else tuple(message))
    return found


@pytest.mark.parametrize("code", SHIPPED)
def test_the_catalog_knows_every_text_in_the_source(code: str) -> None:
    """A new or changed text in a page, a view or the policy must reach the catalogs
    (``pybabel extract`` + ``update``, see docs/pages.md), else it shows in English."""
    known = {msgid for msgid, _, _ in _catalog(code)}
    assert sorted(_source_msgids() - known) == []


def test_the_template_is_in_step_with_the_source() -> None:
    """``stepup.pot`` is what a translator starts a new language from (``pybabel init``,
    docs/pages.md): it holds every text in the source and no text the source lost."""
    with (LOCALE_DIR / f"{DOMAIN}.pot").open("rb") as f:
        template = {m.id for m in read_po(f) if m.id}
    missing = _source_msgids() - template
    gone = template - _source_msgids()
    assert (sorted(missing), sorted(gone)) == ([], [])


# choosing a locale -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "chosen"),
    [
        ("de", "de"),
        ("de-CH,de;q=0.9,en;q=0.8", "de"),
        ("en;q=0.9, de", "de"),  # no q means 1
        ("de;q=0.5, en;q=0.9", "en"),  # weights, not order
        ("fr-CH, fr;q=0.9, de;q=0.7, *;q=0.5", "de"),
        ("fr, *;q=0.1", "en"),
        ("de;q=0", "en"),  # q=0: not acceptable
        ("DE-at", "de"),
        ("", "en"),
        ("xx-yy;q=abc, de;q=1.5", "en"),  # malformed weights are not trusted
    ],
)
def test_accept_language_is_honoured(header: str, chosen: str) -> None:
    assert negotiate(header) == chosen


@given(st.text(max_size=200))
def test_any_header_gives_a_shipped_locale(header: str) -> None:
    assert negotiate(header) in LOCALES


@given(st.floats(min_value=0.001, max_value=1), st.floats(min_value=0.001, max_value=1))
def test_the_heavier_language_wins(de: float, en: float) -> None:
    header = f"en;q={en:.3f}, de;q={de:.3f}"
    if round(de, 3) != round(en, 3):
        assert negotiate(header) == ("de" if round(de, 3) > round(en, 3) else "en")


def test_an_unknown_text_is_shown_as_it_is() -> None:
    assert translate("Exporting billing", "de") == "Exporting billing"
    assert translate(N_("Reading user API keys"), "de") == "API-Schlüssel von Benutzern lesen"
    assert str(Message("")) == ""


def test_a_pause_names_its_end_in_the_locale() -> None:
    paused = throttled_message(1_700_000_000.0)
    assert str(paused) == paused.translate("en")
    assert "2023" in paused.translate("en")
    assert "14.11.2023" in paused.translate("de")
    assert throttled_message(None).retry_at is None


# JSON titles ---------------------------------------------------------------------------


def test_json_error_titles_follow_accept_language() -> None:
    german = RequestInfo("GET", "/x", accept="application/json", accept_language="de")
    body = json.loads(authentication_required(german).body)
    assert body == {"error": "authentication_required", "title": "Melden Sie sich zuerst an."}
    english = RequestInfo("GET", "/x", accept="application/json")
    assert json.loads(authentication_required(english).body)["title"] == "Sign in first."


@pytest.mark.parametrize(
    ("locale", "words"),
    [("en", "trying again is paused until Nov 14, 2023"), ("de", "bis 14.11.2023")],
)
def test_a_paused_passkey_says_until_when_in_json_too(locale: str, words: str) -> None:
    """A single-page app shows the JSON ``title`` as it is (stepup-passkeys.js does):
    like the pages, it names the end of the pause, not only "wait a while"."""
    paused = PasskeyResult(PasskeyReason.THROTTLED, retry_at=1_700_000_000.0)
    body = json.loads(result_response(paused, locale).body)
    assert body["error"] == "throttled"
    assert body["retry_at"] == 1_700_000_000.0
    assert words in body["title"]


def test_jsonapi_titles_are_translated_when_a_locale_is_given() -> None:
    error = jsonapi_error(403, "forbidden", "Only a tenant admin may change tenant settings", "de")
    title = json.loads(error.body)["errors"][0]["title"]
    assert title == "Nur ein Administrator des Mandanten darf dessen Einstellungen ändern"


def test_the_tenant_endpoint_answers_in_the_clients_language() -> None:
    """The ready-made tenant endpoint (here Starlette's) titles its JSON:API errors in
    the client's Accept-Language."""
    from integrations.starlette.starlette_support import make_app
    from stepup.adapters.storage.memory import MemoryStore
    from stepup.testing import SettableClock

    app = make_app(clock=SettableClock(), store=MemoryStore())
    browser = app.browser()
    try:
        refused = browser.client.patch(
            "/stepup/tenants/acme",
            content="{}",
            headers={"Content-Type": "application/vnd.api+json", "Accept-Language": "de"},
        )
    finally:
        browser.close()
    assert refused.status_code == 401
    assert refused.json()["errors"][0]["title"] == "Melden Sie sich zuerst an"


def test_without_babel_a_pause_ends_at_an_iso_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """The core alone (no page extra): the time is still there, as ISO 8601 in UTC."""
    import sys

    monkeypatch.setitem(sys.modules, "babel.dates", None)
    assert format_time(1_700_000_000.0, "de") == "2023-11-14 22:13:20 UTC"


@pytest.mark.parametrize("code", SHIPPED)
def test_gnu_msgfmt_accepts_the_catalog(code: str) -> None:
    """GNU msgfmt (what Django's compilemessages runs) finds no error: no duplicate entry,
    every placeholder of the msgid in the translation (``python-format``)."""
    import shutil
    import subprocess

    from support import need

    need(shutil.which("msgfmt") is not None, "msgfmt is not installed (apt-get install gettext)")
    po = LOCALE_DIR / code / "LC_MESSAGES" / f"{DOMAIN}.po"
    checked = subprocess.run(
        ["msgfmt", "--check", "-o", "/dev/null", str(po)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stderr
