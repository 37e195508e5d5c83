"""How many recovery codes are left, on the two-factor settings page: counted from the
read the page already makes (``TwoFactor.devices``: the credential's recovery hashes),
said in the plural form of the page's language (``stepup.i18n.PluralMessage``, gettext's
``ngettext`` and the catalog's ``Plural-Forms``), with a warning beside "Make new
recovery codes" when three or fewer are left, or none. The frameworks' pages are driven
in tests/integrations/django/test_codes_left_and_cancel.py."""

from __future__ import annotations

import asyncio
import re
from collections import defaultdict
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from markupsafe import Markup

from stepup.adapters.storage.memory import MemoryStore
from stepup.i18n import AppCatalog, Message, Nn_, PluralMessage, lookup_plural, translations
from stepup.integrations.pages import environment, page_context
from stepup.integrations.views import FEW_RECOVERY_CODES, DeviceRow, TwoFactorPage
from stepup.records import TotpDeviceInfo
from stepup.testing import SettableClock
from stepup.totp import TOTP
from stepup.twofactor import AsyncTwoFactor, DeviceList, TwoFactor

LEFT = Nn_("%(num)d recovery code left.", "%(num)d recovery codes left.")
#: The German entry the catalog gets (see the report of this change).
GERMAN = ("%(num)d Wiederherstellungscode übrig.", "%(num)d Wiederherstellungscodes übrig.")


# the plural lookup ---------------------------------------------------------------------


def test_nn_marks_a_pair_and_returns_it() -> None:
    assert LEFT == ("%(num)d recovery code left.", "%(num)d recovery codes left.")


@pytest.mark.parametrize(
    ("count", "said"),
    [
        (0, "0 recovery codes left."),
        (1, "1 recovery code left."),
        (2, "2 recovery codes left."),
        (10, "10 recovery codes left."),
    ],
)
def test_english_says_one_for_one_and_the_plural_for_every_other_count(
    count: int, said: str
) -> None:
    message = PluralMessage.of(LEFT, count)
    assert isinstance(message, Message)  # shown with t() like every other text
    assert message.translate("en") == said
    assert str(message) == said


def _german_catalog(tmp_path: Path, forms: tuple[str, str]) -> AppCatalog:
    """A German catalog holding ``LEFT``'s entry with ``forms``, compiled as gettext reads
    it, with German's plural rule in its header."""
    catalog = Catalog(locale="de", domain="acme")
    assert catalog.plural_forms == "nplurals=2; plural=(n != 1);"
    catalog.add(LEFT, forms)
    folder = tmp_path / "de" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    with (folder / "acme.mo").open("wb") as f:
        write_mo(f, catalog)
    return AppCatalog("acme", tmp_path)


@pytest.mark.parametrize(
    ("count", "said"),
    [
        (0, "0 Wiederherstellungscodes übrig."),
        (1, "1 Wiederherstellungscode übrig."),
        (3, "3 Wiederherstellungscodes übrig."),
    ],
)
def test_a_catalog_picks_the_form_by_its_plural_rule(tmp_path: Path, count: int, said: str) -> None:
    """stepup's catalog first, then the app's (as for a plain msgid): here the app's
    holds the entry, stepup's (in this test's state of it) may not."""
    catalog = _german_catalog(tmp_path, GERMAN)
    message = PluralMessage.of(LEFT, count)
    assert message.translate("de", catalog=catalog) == said
    assert lookup_plural(*LEFT, count, "de", catalog) == said.replace(str(count), "%(num)d", 1)


def test_an_unknown_pair_stays_english_in_every_locale() -> None:
    pair = Nn_("%(num)d frog.", "%(num)d frogs.")
    assert PluralMessage.of(pair, 1).translate("de") == "1 frog."
    assert PluralMessage.of(pair, 4).translate("de") == "4 frogs."


def test_the_shipped_german_catalog_has_the_plural_forms() -> None:
    assert translations("de").ngettext(*LEFT, 1) == GERMAN[0]
    assert translations("de").ngettext(*LEFT, 5) == GERMAN[1]


# the count, from the read the page makes -----------------------------------------------


def _enrolled(two_factor: TwoFactor, clock: SettableClock) -> tuple[str, ...]:
    enrolment = two_factor.begin_enrolment("bob", "bob@example.com")
    confirmation = two_factor.confirm_enrolment("bob", TOTP(enrolment.secret).at(clock()))
    assert confirmation.ok
    return confirmation.recovery_codes


class _CountingStore(MemoryStore):
    """The memory store, counting the reads of a credential."""

    reads = 0

    def get_credential(self, user_id: str):  # type: ignore[no-untyped-def]
        self.reads += 1
        return super().get_credential(user_id)


def test_the_devices_read_says_how_many_codes_are_left() -> None:
    clock, store = SettableClock(), _CountingStore()
    two_factor = TwoFactor(store, clock=clock, issuer="Acme")
    assert two_factor.devices("bob") == ()
    assert two_factor.devices("bob").recovery_codes_left == 0  # off: none
    codes = _enrolled(two_factor, clock)
    listed = two_factor.devices("bob")
    assert isinstance(listed, DeviceList)
    assert isinstance(listed, tuple)  # what it was: a tuple of the devices
    assert len(listed) == 1
    assert isinstance(listed[0], TotpDeviceInfo)
    assert listed.recovery_codes_left == len(codes) == 10
    for used, code in enumerate(codes[:7], start=1):
        assert two_factor.use_recovery_code("bob", code).ok
        store.reads = 0
        assert two_factor.devices("bob").recovery_codes_left == 10 - used
        assert store.reads == 1  # the one read the page made before


def test_the_async_devices_read_says_it_too() -> None:
    clock, store = SettableClock(), MemoryStore()
    codes = _enrolled(TwoFactor(store, clock=clock, issuer="Acme"), clock)
    two_factor = AsyncTwoFactor(store, clock=clock, issuer="Acme")

    async def left_after_one() -> int:
        assert (await two_factor.use_recovery_code("bob", codes[0])).ok
        return (await two_factor.devices("bob")).recovery_codes_left

    assert asyncio.run(left_after_one()) == 9


# the page ------------------------------------------------------------------------------


def _devices(left: int) -> DeviceList:
    return DeviceList((TotpDeviceInfo("d1", "Phone", created_at=1.0),), left)


def _render(page: TwoFactorPage, locale: str = "en") -> str:
    context = page_context(
        locale=locale, urls=defaultdict(str), csrf_field=lambda: Markup(""), page=page
    )
    return environment().get_template("stepup/two_factor.html").render(context)


def _said(html: str) -> str:
    found = re.search(r'<p id="stepup-recovery-left" class="([^"]*)">(.*?)</p>', html, re.S)
    assert found, "the page says nothing about the recovery codes"
    return f"{found.group(1)}: {' '.join(found.group(2).split())}"


@pytest.mark.parametrize(
    ("left", "said"),
    [
        (10, "stepup-recovery-left: 10 recovery codes left."),
        (4, "stepup-recovery-left: 4 recovery codes left."),
        (
            3,
            "stepup-warning: 3 recovery codes left. Make new ones before they run out: each"
            " code signs you in only once.",
        ),
        (
            1,
            "stepup-warning: 1 recovery code left. Make new ones before they run out: each"
            " code signs you in only once.",
        ),
        (
            0,
            "stepup-warning: No recovery codes left. Make new ones now, so you can still sign"
            " in if you lose your authenticator app.",
        ),
    ],
)
def test_the_settings_page_says_how_many_are_left(left: int, said: str) -> None:
    page = TwoFactorPage.of(_devices(left))
    assert page.recovery_codes_left == left
    assert page.few_recovery_codes is (left <= FEW_RECOVERY_CODES)
    html = _render(page)
    assert _said(html) == said
    # "Make new recovery codes" is described by it: the way to make new ones, beside it.
    button = re.search(r"<button[^>]*>Make new recovery codes</button>", html)
    assert button is not None
    assert 'aria-describedby="stepup-recovery-left"' in button.group(0)


def test_nothing_is_said_when_the_count_is_not_known() -> None:
    """Off, set in the configuration file (which holds no codes), or devices that did
    not come from ``TwoFactor.devices``: the page says nothing about codes left."""
    pages = [
        TwoFactorPage.of(DeviceList()),
        TwoFactorPage(enrolled=True, managed_by_file=True),
        TwoFactorPage.of((TotpDeviceInfo("d1", created_at=1.0),)),
        TwoFactorPage(True, devices=(DeviceRow.of(TotpDeviceInfo("d1")),)),
    ]
    for page in pages:
        assert page.recovery_codes == ""
        assert not page.few_recovery_codes
        html = _render(page)
        assert "stepup-recovery-left" not in html
        assert "recovery codes left" not in html
