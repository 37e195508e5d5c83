"""System checks: misconfiguration shows up in ``manage.py check`` and at start-up.

=============  ==========================================================================
stepup.E001    ``settings.STEPUP`` is not a dict, or has unknown keys
stepup.E002    a hook setting cannot be imported or is not callable, or ``CLOCK`` does not
               read the Unix time in seconds (``time.monotonic``, milliseconds)
stepup.E003    ``STORE`` (or ``DATABASE``) is not usable
stepup.E004    the policy cannot be built: a bad ``SENSITIVE_ACTION_AUTH_LIFETIME``,
               ``POLICY`` or a guarded action missing from it
stepup.E005    ``POLICY_FILE`` cannot be read or is not a valid policy
stepup.E006    ``StepupMiddleware`` is not in ``MIDDLEWARE``
stepup.E007    ``StepupMiddleware`` comes before the session or authentication middleware
stepup.E008    a decorator or mixin names an action the policy does not know
stepup.E009    a required hook is missing (``SUBJECT_LOADER``, ``PASSWORD_HASH_LOADER``)
stepup.E010    another setting is invalid (sealing keys, password hasher, SSO providers
               and their names, an async SSO adapter, ``CANCEL_URL``, ``CATALOG``,
               numbers, flags, the passkey settings ``PASSKEYS_RP_ID``,
               ``PASSKEYS_ORIGINS``...), or the services cannot be built from the
               settings for another reason
stepup.E011    a project's ``stepup/*.html`` override is not a Jinja2 template
stepup.E012    ``URL_NAMESPACE`` is not the namespace stepup's URLs are included under
stepup.W001    ``IS_TENANT_ADMIN`` is not set: nobody may change tenant settings
stepup.W002    ``HAS_FULL_ACCESS`` is not set: no admin may remove someone's 2FA
stepup.W004    ``ENCRYPTION_KEYS`` is ``None``: TOTP secrets are stored unsealed
stepup.W005    ``SECOND_STEP_FOR_EVERY_SIGN_IN`` is ``False``: a sign-in that skips
               ``begin_sign_in`` is not held for the second step
stepup.W006    ``ROOT_URLCONF`` does not include stepup's URLs (a project that sets
               ``request.urlconf`` may include them there)
=============  ==========================================================================
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import Any, Final

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning
from django.urls import NoReverseMatch, URLResolver, get_resolver, reverse

from ...errors import ConfigurationError, UnknownActionError
from ...policy import LIFETIME_ENV
from . import conf
from ._pages import override_problems
from .services import get_stepup, known_actions

__all__ = ["check_settings"]

MIDDLEWARE_PATH: Final = "stepup.integrations.django.middleware.StepupMiddleware"
_BEFORE: Final = (
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
)
_FIX_LIFETIME: Final = f"{LIFETIME_ENV} takes whole seconds, or 90s, 30m, 6h (the default is 6h)"


def _error(message: str, check_id: str, hint: str | None = None) -> Error:
    return Error(message, hint=hint, id=f"stepup.{check_id}")


def _attempt(build: Callable[[], Any], check_id: str, hint: str | None = None) -> list[Error]:
    try:
        build()
    except ConfigurationError as exc:
        return [_error(str(exc), check_id, hint)]
    return []


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """The one registered check: stops at the first layer that is broken (a bad
    STEPUP dict makes every later check meaningless)."""
    try:
        values = conf.read_settings()
    except ConfigurationError as exc:
        return [_error(str(exc), "E001")]
    messages: list[CheckMessage] = []
    messages += _check_middleware()
    messages += _check_hooks(values)
    messages += _check_urls(values)  # first: the URLconf's views name their actions
    messages += _check_policy(values)
    messages += [_error(problem, "E010") for problem in conf.plain_value_problems(values)]
    messages += _unseen(messages, _attempt(lambda: conf.read_store(values), "E003"))
    messages += _check_services(messages)
    hint = "stepup's pages are Jinja2 templates: rewrite it (see docs/pages.md)"
    messages += [_error(problem, "E011", hint) for problem in override_problems()]
    if values["ENCRYPTION_KEYS"] is None:
        messages.append(
            Warning(
                "STEPUP['ENCRYPTION_KEYS'] is None: TOTP secrets are stored unsealed",
                hint="leave the default 'SECRET_KEY', or give keys",
                id="stepup.W004",
            )
        )
    if values["SECOND_STEP_FOR_EVERY_SIGN_IN"] is False:
        messages.append(
            Warning(
                "STEPUP['SECOND_STEP_FOR_EVERY_SIGN_IN'] is False: a sign-in that skips"
                " begin_sign_in (the admin's login, another app's) is not held for the"
                " user's second factor",
                hint="guard every other way in yourself, or leave it True",
                id="stepup.W005",
            )
        )
    return messages


def _unseen(reported: list[CheckMessage], found: list[Error]) -> list[Error]:
    """``found`` without what is already ``reported`` (one reader can be reached twice:
    ``CREATE_SCHEMA`` is read with the store)."""
    return [error for error in found if all(error.msg != m.msg for m in reported)]


def _check_services(reported: list[CheckMessage]) -> list[CheckMessage]:
    """Build the services as the first request does (:func:`get_stepup`, kept for it),
    so that whatever a request would refuse, the check refuses too: the SSO providers'
    configs, for one. An error the checks above already named is not repeated."""
    try:
        get_stepup()
    except ConfigurationError as exc:
        message = str(exc)
        if "STEPUP[" not in message and all(message != m.msg for m in reported):
            message = f"stepup's services cannot be built from settings.STEPUP: {message}"
        return list(_unseen(reported, [_error(message, "E010")]))
    return []


def _check_urls(values: Mapping[str, Any]) -> list[CheckMessage]:
    """``URL_NAMESPACE`` must be the namespace of stepup's URLs in ``ROOT_URLCONF``: every
    page and redirect is reversed in it (``NoReverseMatch`` on a request otherwise)."""
    namespace = values["URL_NAMESPACE"]
    if (
        not isinstance(namespace, str)
        or not namespace
        or not getattr(settings, "ROOT_URLCONF", None)
    ):
        return []  # a bad value is E010's; no URLconf, nothing to look in
    try:
        reverse(f"{namespace}:stylesheet")
    except NoReverseMatch:
        pass
    else:
        return []
    included = _stepup_namespaces(get_resolver(), "")
    if namespace in included:
        # Included under that namespace, yet not reversible without arguments: the
        # prefix it is included under has a path parameter stepup cannot supply.
        return [
            _error(
                f"stepup's URLs are included under {namespace!r} behind a prefix with a path"
                " parameter (such as <slug:org>/stepup/): stepup reverses its pages"
                " without arguments",
                "E012",
                'include them under a fixed prefix: path("stepup/",'
                ' include("stepup.integrations.django.urls"))',
            )
        ]
    if included:
        names = ", ".join(repr(name) for name in included)
        return [
            _error(
                "STEPUP['URL_NAMESPACE'] is not the namespace stepup's URLs are included"
                f" under in ROOT_URLCONF: {names}",
                "E012",
                f"set STEPUP['URL_NAMESPACE'] = {included[0]!r}, or include the URLs under"
                " the namespace it names",
            )
        ]
    return [
        Warning(
            "ROOT_URLCONF does not include stepup's URLs under STEPUP['URL_NAMESPACE']:"
            " the re-authentication redirect and stepup's pages cannot be reversed",
            hint='path("stepup/", include("stepup.integrations.django.urls"))'
            " (unless a middleware sets request.urlconf to one that includes them)",
            id="stepup.W006",
        )
    ]


#: The module of stepup's URL patterns, as a project includes it.
_URLS_MODULE: Final = "stepup.integrations.django.urls"


def _stepup_namespaces(resolver: URLResolver, prefix: str) -> list[str]:
    """The namespaces (``outer:stepup`` when nested) stepup's URL patterns are included
    under, in the order of the URLconf. The URL module is looked up, not imported: it
    is the layer above this one (its views import the checks' neighbours), and an
    included one is imported already."""
    urls = sys.modules.get(_URLS_MODULE)
    patterns = getattr(urls, "urlpatterns", None)
    found: list[str] = []
    for pattern in resolver.url_patterns:
        if not isinstance(pattern, URLResolver):
            continue
        name = f"{prefix}{pattern.namespace}" if pattern.namespace else prefix.rstrip(":")
        module = pattern.urlconf_module
        if getattr(module, "__name__", None) == _URLS_MODULE or (
            patterns is not None and module is patterns
        ):
            if name:
                found.append(name)
            continue
        found += _stepup_namespaces(pattern, f"{name}:" if name else "")
    return found


def _check_middleware() -> list[CheckMessage]:
    middleware = list(getattr(settings, "MIDDLEWARE", None) or [])
    if MIDDLEWARE_PATH not in middleware:
        return [_error(f"add '{MIDDLEWARE_PATH}' to MIDDLEWARE", "E006")]
    position = middleware.index(MIDDLEWARE_PATH)
    late = [name for name in _BEFORE if name in middleware[position:]]
    if late:
        return [
            _error(
                f"StepupMiddleware must come after {', '.join(late)}",
                "E007",
                "it reads the session and the signed-in user",
            )
        ]
    return []


def _check_hooks(values: Mapping[str, Any]) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    hooks: dict[str, Any] = {}
    for name in conf.HOOKS:
        try:
            hooks[name] = conf.hook(values, name)
        except ConfigurationError as exc:
            messages.append(_error(str(exc), "E002"))
    for name, why in (
        ("SUBJECT_LOADER", "stepup needs to know who is signed in"),
        ("PASSWORD_HASH_LOADER", "the password re-authentication form needs stored hashes"),
    ):
        if name in hooks and hooks[name] is None:
            messages.append(_error(f"set STEPUP['{name}']: {why}", "E009"))
    for name, check_id, why in (
        ("IS_TENANT_ADMIN", "W001", "nobody may change tenant settings"),
        ("HAS_FULL_ACCESS", "W002", "no admin may remove another user's two-factor auth"),
    ):
        if name in hooks and hooks[name] is None:
            messages.append(Warning(f"STEPUP['{name}'] is not set: {why}", id=f"stepup.{check_id}"))
    return messages


def _check_policy(values: Mapping[str, Any]) -> list[CheckMessage]:
    try:
        policy = conf.base_policy(values)
    except ConfigurationError as exc:
        hint = _FIX_LIFETIME if LIFETIME_ENV in str(exc) else None
        return [_error(str(exc), "E004", hint)]
    try:
        policy = conf.with_policy_file(values, conf.with_own_rules(policy, None, values))
    except ConfigurationError as exc:
        return [_error(str(exc), "E005")]
    try:
        conf.check_guarded_actions(values, policy)
    except ConfigurationError as exc:
        return [_error(str(exc), "E004", "add the action to the policy, or name another")]
    unknown: list[CheckMessage] = []
    for action in sorted(known_actions()):
        try:
            policy.validate([action])
        except UnknownActionError as exc:
            unknown.append(_error(str(exc), "E008"))
    return unknown
