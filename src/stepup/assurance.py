"""Levels of assurance: how sure an installation is that the person is who they say.

An installation declares an ordered set of levels, weakest first (for example
``password`` < ``mfa`` < ``phishing_resistant``), and for each what proves it: OIDC
``acr`` values, SAML ``AuthnContextClassRef`` values and sets of stepup's own amr-style
methods (``pwd``; ``pwd`` + ``otp``; ``phr`` for a passkey). A policy rule may then ask
for a minimum level. Pure: no I/O, no framework.

Bad configuration raises :class:`LevelConfigurationError` at start-up (when the
:class:`Levels` is built), never at a decision.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from .errors import ConfigurationError

__all__ = [
    "DEFAULT_LEVELS",
    "LEVEL_METHODS",
    "Level",
    "LevelConfigurationError",
    "Levels",
    "UnknownLevelError",
]

#: The methods a level may name (amr-style, as grants carry them).
LEVEL_METHODS: Final = frozenset({"pwd", "otp", "oidc", "saml", "phr", "hwk", "swk", "user"})
_NAME: Final = re.compile(r"[a-z][a-z0-9_]{0,39}")
_VALUE: Final = re.compile(r"[!#-\[\]-~]{1,512}")


class LevelConfigurationError(ConfigurationError):
    """The declared levels are inconsistent (raised at start-up, naming the cause)."""


class UnknownLevelError(LevelConfigurationError, LookupError):
    """A rule or a call names a level the installation did not declare."""

    def __init__(self, level: object) -> None:
        super().__init__(f"unknown level of assurance {str(level)[:40]!r}: declare it in levels")
        self.level = level


@dataclass(frozen=True, slots=True)
class Level:
    """One level: its name and what proves it. ``methods`` lists alternatives, each a set
    of methods that together prove the level (``(("pwd", "otp"),)``)."""

    name: str
    acr: tuple[str, ...] = ()
    saml: tuple[str, ...] = ()
    methods: tuple[tuple[str, ...], ...] = ()
    description: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or _NAME.fullmatch(self.name) is None:
            raise LevelConfigurationError(
                f"a level name must be lower-case letters, digits or _, not {self.name!r:.40}"
            )
        where = f"level {self.name!r}"
        object.__setattr__(self, "acr", _values(self.acr, f"{where}: acr"))
        object.__setattr__(self, "saml", _values(self.saml, f"{where}: saml"))
        object.__setattr__(self, "methods", _method_sets(self.methods, where))
        if not (self.acr or self.saml or self.methods):
            raise LevelConfigurationError(f"{where} names nothing that proves it")


def _values(value: object, where: str) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise LevelConfigurationError(f"{where} must be a list of strings")
    items = tuple(value)
    for item in items:
        # It goes into a quoted WWW-Authenticate parameter (RFC 9470): printable ASCII
        # without spaces, quotes or backslashes.
        if not isinstance(item, str) or _VALUE.fullmatch(item) is None:
            raise LevelConfigurationError(
                f"{where}: {item!r:.60} is not a value (printable, no spaces or quotes)"
            )
    if len(set(items)) != len(items):
        raise LevelConfigurationError(f"{where} names a value twice")
    return items


def _method_sets(value: object, where: str) -> tuple[tuple[str, ...], ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise LevelConfigurationError(f"{where}: methods must be a list of lists")
    result: list[tuple[str, ...]] = []
    for alternative in value:
        if isinstance(alternative, str) or not isinstance(alternative, Iterable):
            raise LevelConfigurationError(f"{where}: each methods entry must be a list")
        tokens = tuple(sorted({str(t) for t in alternative}))
        unknown = set(tokens) - LEVEL_METHODS
        if not tokens or unknown:
            raise LevelConfigurationError(
                f"{where}: methods must be some of {sorted(LEVEL_METHODS)}"
                + (f", not {sorted(unknown)}" if unknown else "")
            )
        if tokens not in result:
            result.append(tokens)
    return tuple(result)


def _no_method_set_in_two_levels(levels: Sequence[Level]) -> None:
    """One set of methods proves one level, as one ``acr`` value names one: declared for
    two, it proves only the stronger (``for_methods`` answers the highest), so the
    weaker level's declaration was a mistake or a weaker proof than meant for the
    stronger. (A set that is merely smaller than another level's is legitimate: a
    level of ``("phr",)`` above one of ``("phr", "user")`` is met by every passkey, the
    lower one only by a passkey verified with the user's PIN or biometrics.)"""
    seen: dict[tuple[str, ...], str] = {}
    for level in levels:
        for methods in level.methods:
            if methods in seen:
                raise LevelConfigurationError(
                    f"methods {' + '.join(methods)} prove both {seen[methods]!r} and"
                    f" {level.name!r}: name each set of methods in one level"
                )
            seen[methods] = level.name


class Levels:
    """The installation's levels, weakest first, and the lookups a decision needs."""

    __slots__ = ("_acr", "_by_name", "_levels", "_rank", "_saml")

    def __init__(self, levels: Sequence[Level]) -> None:
        if isinstance(levels, str | bytes) or not isinstance(levels, Sequence) or not levels:
            raise LevelConfigurationError("declare at least one level, weakest first")
        if not all(isinstance(level, Level) for level in levels):
            raise LevelConfigurationError("levels must be Level objects")
        self._levels = tuple(levels)
        self._rank: dict[str, int] = {}
        self._acr: dict[str, str] = {}
        self._saml: dict[str, str] = {}
        for index, level in enumerate(self._levels):
            if level.name in self._rank:
                raise LevelConfigurationError(f"level {level.name!r} is declared twice")
            self._rank[level.name] = index
            for table, values, kind in (
                (self._acr, level.acr, "acr"),
                (self._saml, level.saml, "saml"),
            ):
                for value in values:
                    if value in table:
                        raise LevelConfigurationError(
                            f"{kind} value {value!r:.60} maps to both {table[value]!r}"
                            f" and {level.name!r}"
                        )
                    table[value] = level.name
        _no_method_set_in_two_levels(self._levels)
        self._by_name = {level.name: level for level in self._levels}

    def __repr__(self) -> str:
        return f"Levels({' < '.join(self.names)})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Levels) and other._levels == self._levels

    def __hash__(self) -> int:
        return hash(self._levels)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._rank

    def __iter__(self) -> Any:
        return iter(self._levels)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(level.name for level in self._levels)

    def level(self, name: str) -> Level:
        try:
            return self._by_name[name]
        except (KeyError, TypeError):
            raise UnknownLevelError(name) from None

    def rank(self, name: str) -> int:
        """Its position, weakest first (0)."""
        try:
            return self._rank[name]
        except (KeyError, TypeError):
            raise UnknownLevelError(name) from None

    # what proves which level -------------------------------------------------------

    def for_methods(self, methods: Iterable[str]) -> str | None:
        """The highest level a set of proved methods reaches (``None``: none)."""
        proved = frozenset(methods)
        for level in reversed(self._levels):
            if any(proved.issuperset(alternative) for alternative in level.methods):
                return level.name
        return None

    def for_acr(self, acr: object) -> str | None:
        """The level an OIDC ``acr`` value proves (``None``: not a declared value)."""
        return self._acr.get(acr) if isinstance(acr, str) else None

    def for_saml(self, class_ref: object) -> str | None:
        """The level a SAML ``AuthnContextClassRef`` proves (``None``: not declared)."""
        return self._saml.get(class_ref) if isinstance(class_ref, str) else None

    def highest(self, *levels: str | None) -> str | None:
        """The strongest of ``levels`` (unknown names and ``None`` count as nothing)."""
        known = [name for name in levels if name in self._rank]
        return max(known, key=self._rank.__getitem__) if known else None

    def meets(self, level: str | None, minimum: str) -> bool:
        """Does ``level`` reach ``minimum``? ``None`` or an undeclared level never does."""
        need = self.rank(minimum)
        return level is not None and self._rank.get(level, -1) >= need

    def reachable(self, methods: Iterable[str], minimum: str) -> bool:
        """Can a re-authentication proving ``methods`` reach ``minimum``? Through the
        methods themselves, or through a provider that can say so: ``oidc`` when a level
        of at least ``minimum`` has an ``acr`` value, ``saml`` when one has a class ref
        (the provider's signed answer is then checked against it)."""
        tokens = frozenset(methods)
        if self.meets(self.for_methods(tokens), minimum):
            return True
        stronger = self.at_least(minimum)
        return ("oidc" in tokens and any(level.acr for level in stronger)) or (
            "saml" in tokens and any(level.saml for level in stronger)
        )

    # what to ask for ---------------------------------------------------------------

    def at_least(self, minimum: str) -> tuple[Level, ...]:
        """The levels that meet ``minimum``, weakest first."""
        return self._levels[self.rank(minimum) :]

    def acr_values(self, minimum: str) -> tuple[str, ...]:
        """The ``acr`` values that meet ``minimum`` in order of preference (RFC 9470
        section 3, OIDC ``acr_values``): the strongest level's first, as stepup offers
        the strongest way available; within a level, as declared."""
        return tuple(value for level in reversed(self.at_least(minimum)) for value in level.acr)

    def saml_class_refs(self, minimum: str) -> tuple[str, ...]:
        """The ``AuthnContextClassRef`` values that meet ``minimum`` in order of
        preference (SAML core 3.3.2.2.1: the first is the most preferred), the strongest
        level's first, as :meth:`acr_values`; within a level, as declared."""
        return tuple(value for level in reversed(self.at_least(minimum)) for value in level.saml)

    def method_sets(self, minimum: str) -> tuple[tuple[str, ...], ...]:
        """Every set of stepup methods that proves ``minimum`` or more."""
        result: list[tuple[str, ...]] = []
        for level in self.at_least(minimum):
            result.extend(m for m in level.methods if m not in result)
        return tuple(result)

    # configuration -----------------------------------------------------------------

    @classmethod
    def from_config(cls, data: object, *, source: str = "<levels>") -> Levels:
        """From a list of tables (TOML ``[[levels]]``): ``name`` and any of ``acr``,
        ``saml``, ``methods`` and ``description``; weakest first."""
        if isinstance(data, str) or not isinstance(data, Sequence):
            raise LevelConfigurationError(f"{source}: levels must be a list of tables")
        levels = []
        for entry in data:
            if not isinstance(entry, Mapping):
                raise LevelConfigurationError(f"{source}: each level must be a table")
            extra = set(entry) - {"name", "acr", "saml", "methods", "description"}
            if extra:
                raise LevelConfigurationError(f"{source}: unknown level keys {sorted(extra)}")
            if "name" not in entry:
                raise LevelConfigurationError(f"{source}: a level needs a name")
            try:
                levels.append(
                    Level(
                        name=entry["name"],
                        acr=entry.get("acr", ()),
                        saml=entry.get("saml", ()),
                        methods=entry.get("methods", ()),
                        description=str(entry.get("description", "")),
                    )
                )
            except LevelConfigurationError as exc:
                raise LevelConfigurationError(f"{source}: {exc}") from None
        return cls(levels)

    def table(self) -> list[dict[str, str]]:
        """One row per level, weakest first, for ``stepup policy show``."""
        return [
            {
                "level": level.name,
                "methods": " | ".join(" + ".join(m) for m in level.methods) or "-",
                "acr": " ".join(level.acr) or "-",
                "saml": " ".join(level.saml) or "-",
            }
            for level in self._levels
        ]


#: A sensible start: a password; a password and a TOTP code; a passkey
#: (phishing-resistant, so it meets ``mfa`` and ``password`` too). SAML classes are the
#: OASIS password class and the REFEDS MFA profile; OIDC ``acr`` values are the
#: installation's own to add.
DEFAULT_LEVELS: Final = Levels(
    (
        Level(
            "password",
            saml=("urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport",),
            methods=(("pwd",),),
        ),
        Level("mfa", saml=("https://refeds.org/profile/mfa",), methods=(("pwd", "otp"),)),
        Level("phishing_resistant", methods=(("phr",),)),
    )
)
