"""The words a person reads, in their language: catalogs, locale choice, times.

Every text stepup shows a person (its pages, JSON error titles, flash messages, the
policy's action descriptions) is an English *msgid*, marked with :func:`N_` where it is
defined and translated where it is shown, with the catalog of the request's locale.
So a value can be kept, compared and logged in English, and a page in German still
reads German. The catalogs (``stepup/locale/<lang>/LC_MESSAGES/stepup.po``, domain
``stepup``) are extracted by Babel (``babel.cfg``) and are plain gettext files, so
Django's ``compilemessages`` and any gettext tool read them too.

Nothing here knows a web framework: an integration passes the request's
``Accept-Language`` header (or its app's own choice) to :func:`negotiate` and renders
with :func:`translations`. Loading a catalog reads a package data file once per
locale (cached), like importing a module; an app's own catalog (:class:`AppCatalog`)
is read the same way, once per locale; nothing else touches the disk.
"""

from __future__ import annotations

import gettext as _gettext
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from functools import lru_cache
from pathlib import Path
from typing import Final

__all__ = [
    "DEFAULT_LOCALE",
    "DOMAIN",
    "LOCALES",
    "LOCALE_DIR",
    "N_",
    "AppCatalog",
    "Message",
    "Nn_",
    "PluralMessage",
    "format_time",
    "lookup",
    "lookup_plural",
    "negotiate",
    "translate",
    "translations",
]

#: The gettext domain of stepup's catalogs (``stepup.po`` / ``stepup.mo``).
DOMAIN: Final = "stepup"
#: Where the catalogs live (package data).
LOCALE_DIR: Final = Path(__file__).parent / "locale"
#: The source language: a msgid is its English text.
DEFAULT_LOCALE: Final = "en"
#: Every locale stepup ships a complete catalog for (English is the msgids themselves).
LOCALES: Final = ("en", "de")

# One entry of Accept-Language (RFC 9110 section 12.5.4): a language range and an optional
# weight, its "q" in either case (an ABNF literal: RFC 5234 section 2.3). Anything else in
# the header is ignored rather than trusted.
_RANGE = re.compile(
    r"\s*([A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*|\*)\s*(?:;\s*[qQ]\s*=\s*([0-9.]{1,5}))?\s*"
)
_MAX_HEADER = 1024


def N_(msgid: str) -> str:  # noqa: N802 (the gettext convention for "translate later")
    """Mark ``msgid`` for extraction; it is translated where it is shown."""
    return msgid


def Nn_(msgid: str, plural: str) -> tuple[str, str]:  # noqa: N802 (as N_)
    """Mark a text about a number of things for extraction: ``msgid`` for one, ``plural``
    for any other number (babel.cfg names the keyword, ``Nn_:1,2``, so the catalog gets
    one entry with its plural forms). Shown with :class:`PluralMessage`."""
    return msgid, plural


def _weight(text: str | None) -> float:
    if text is None:
        return 1.0
    try:
        weight = float(text)
    except ValueError:
        return 0.0
    return weight if 0.0 <= weight <= 1.0 else 0.0


def negotiate(
    accept_language: str | None,
    available: tuple[str, ...] = LOCALES,
    default: str = DEFAULT_LOCALE,
) -> str:
    """The best of ``available`` for an ``Accept-Language`` header, else ``default``.

    Weights (``q`` or ``Q``) are honoured, ``q=0`` means "not this one", equal weights
    keep the header's order, and ``de-CH`` matches ``de``. ``*`` matches every language
    the header names nowhere else (RFC 9110 section 12.5.4), ``default`` first: so
    ``en;q=0, *`` is German. A malformed entry is skipped; an over-long header is
    ignored as a whole, and so is one that rules out every language.
    """
    if not accept_language or len(accept_language) > _MAX_HEADER:
        return default
    wanted: list[tuple[float, int, str]] = []
    named: set[str] = set()
    lowered = {code.lower(): code for code in available}
    for index, part in enumerate(accept_language.split(",")):
        match = _RANGE.fullmatch(part)
        if match is None:
            continue
        tag = match.group(1).lower()
        found = _match(tag, lowered)
        if found is not None:
            named.add(found)
        weight = _weight(match.group(2))
        if weight > 0:
            wanted.append((-weight, index, tag))
    # What "*" stands for: the languages no other range names, the default first.
    others = [code for code in (default, *available) if code in available and code not in named]
    for _weight_key, _index, tag in sorted(wanted):
        found = (others[0] if others else None) if tag == "*" else _match(tag, lowered)
        if found is not None:
            return found
    return default


def _match(tag: str, lowered: dict[str, str]) -> str | None:
    """The available locale a lower-case language range asks for: itself, or its
    primary language (``de-ch`` asks for ``de``)."""
    return lowered.get(tag) or lowered.get(tag.split("-", 1)[0])


def _choose(locale: str | None) -> str:
    """``locale`` if stepup ships it (``de_AT`` and ``de-AT`` give ``de``), else English."""
    if not locale:
        return DEFAULT_LOCALE
    return negotiate(locale.replace("_", "-"))


@lru_cache(maxsize=16)
def translations(locale: str | None) -> _gettext.NullTranslations:
    """The catalog for ``locale`` (English, the msgids themselves, when there is none)."""
    chosen = _choose(locale)
    if chosen == DEFAULT_LOCALE:
        return _gettext.NullTranslations()
    return _gettext.translation(DOMAIN, LOCALE_DIR, [chosen], fallback=True)


def format_time(at: float, locale: str | None, tz: tzinfo = UTC) -> str:
    """A Unix time as the locale writes a date and time, with the time zone's name
    (``Dec 3, 2026, 10:42:00 AM UTC``; ``03.12.2026, 10:42:00 UTC``)."""
    moment = datetime.fromtimestamp(at, tz)
    try:
        from babel.dates import format_datetime  # the page extras install Babel
    except ImportError:  # the core alone: ISO 8601, readable in any language
        text = moment.strftime("%Y-%m-%d %H:%M:%S")
    else:
        text = format_datetime(moment, format="medium", tzinfo=tz, locale=_choose(locale))
    return f"{text} {moment.tzname() or ''}".rstrip()


@dataclass(frozen=True, slots=True)
class Message:
    """A text for a person: an English ``msgid`` and, when attempts are paused, the
    time they resume (``retry_at``, shown as ``%(time)s`` in the locale's format).
    ``str()`` is the English text, with the time in UTC."""

    msgid: str
    retry_at: float | None = field(default=None)

    def translate(
        self, locale: str | None, tz: tzinfo = UTC, catalog: AppCatalog | None = None
    ) -> str:
        text = lookup(self.msgid, locale, catalog)
        if self.retry_at is None:
            return text
        return text % {"time": format_time(self.retry_at, locale, tz)}

    def __str__(self) -> str:
        return self.translate(DEFAULT_LOCALE)

    def __bool__(self) -> bool:
        return bool(self.msgid)


@dataclass(frozen=True, slots=True)
class PluralMessage(Message):
    """A text about ``count`` things, in the form the locale's plural rule picks (the
    catalog's ``Plural-Forms``; English and German: ``msgid`` for 1, ``plural`` for 0, 2,
    3...), with ``%(num)d`` standing for ``count``. Build it from a pair marked with
    :func:`Nn_`: ``PluralMessage.of(LEFT, 3)``."""

    plural: str = ""
    count: int = 0

    @classmethod
    def of(cls, forms: tuple[str, str], count: int) -> PluralMessage:
        return cls(forms[0], plural=forms[1], count=count)

    def translate(
        self, locale: str | None, tz: tzinfo = UTC, catalog: AppCatalog | None = None
    ) -> str:
        text = lookup_plural(self.msgid, self.plural, self.count, locale, catalog)
        return text % {"num": self.count}


@dataclass(frozen=True, slots=True)
class AppCatalog:
    """The app's own gettext catalog, for the texts the app gives stepup to show: its
    action descriptions ("Wiring money") and a transaction's ("Delete workspace
    %(workspace)s"). ``domain`` and ``localedir`` as for :func:`gettext.translation`
    (``<localedir>/<lang>/LC_MESSAGES/<domain>.mo``). stepup's own catalog is asked
    first; a text neither knows is shown as written."""

    domain: str
    localedir: str | Path

    def translations(self, locale: str | None) -> _gettext.NullTranslations:
        return _app_translations(self.domain, str(self.localedir), _choose(locale))

    @classmethod
    def of(cls, value: object, setting: str) -> AppCatalog | None:
        """A setting's value (``None``, an :class:`AppCatalog` or a ``(domain,
        localedir)`` pair) as a catalog; anything else, or a directory that is not
        there, is a :class:`~stepup.errors.ConfigurationError` naming ``setting``."""
        from .errors import ConfigurationError

        if value is None or isinstance(value, AppCatalog):
            return value
        if (
            isinstance(value, tuple | list)
            and len(value) == 2
            and isinstance(value[0], str)
            and value[0]
            and isinstance(value[1], str | Path)
        ):
            if not Path(value[1]).is_dir():
                raise ConfigurationError(f"{setting}: {str(value[1])!r} is not a directory")
            return cls(value[0], value[1])
        raise ConfigurationError(f"{setting} must be a (domain, locale directory) pair")


@lru_cache(maxsize=64)
def _app_translations(domain: str, localedir: str, locale: str) -> _gettext.NullTranslations:
    return _gettext.translation(domain, localedir, [locale], fallback=True)


def lookup(msgid: str, locale: str | None, catalog: AppCatalog | None = None) -> str:
    """``msgid`` in ``locale``: stepup's catalog, then the app's (``catalog``), else
    the msgid as written."""
    if not msgid:
        return ""
    text = translations(locale).gettext(msgid)
    if text == msgid and catalog is not None:
        return catalog.translations(locale).gettext(msgid)
    return text


def lookup_plural(
    msgid: str, plural: str, count: int, locale: str | None, catalog: AppCatalog | None = None
) -> str:
    """The form of ``msgid``/``plural`` that ``locale`` uses for ``count`` (gettext's
    ``ngettext``: the catalog's plural rule): stepup's catalog, then the app's
    (``catalog``), else the English one (``msgid`` for 1, else ``plural``)."""
    text = translations(locale).ngettext(msgid, plural, count)
    if text == (msgid if count == 1 else plural) and catalog is not None:
        return catalog.translations(locale).ngettext(msgid, plural, count)
    return text


def translate(
    text: str | Message,
    locale: str | None,
    tz: tzinfo = UTC,
    catalog: AppCatalog | None = None,
) -> str:
    """``text`` in ``locale``: a :class:`Message`, or a plain msgid. A text stepup's
    catalog does not have (an app's own action description) comes from the app's
    ``catalog`` when it has it, else is shown as written."""
    if isinstance(text, Message):
        return text.translate(locale, tz, catalog)
    return lookup(text, locale, catalog)
