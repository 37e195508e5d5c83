"""Passkey pages and JSON endpoints, the same in every framework.

Each integration reads the request (the signed-in subject, the body, the CSRF token)
and hands the pieces to these helpers, which call the core's ceremonies
(:mod:`stepup.passkeys`) and translate their typed results into an
:class:`~stepup.integrations.http.HttpResponse`. Nothing here decides on its own: a
refusal is the core's :class:`~stepup.passkeys.PasskeyReason`, a status is picked
from it.

Routes, under each integration's prefix (Flask ``/stepup``):

- ``GET  /passkeys``: the page that lists, adds, renames and removes passkeys;
- ``POST /passkeys/register/begin`` and ``/passkeys/register/finish``: the
  registration ceremony (JSON; guarded by :data:`PASSKEY_ADD`);
- ``POST /passkeys/<id>/rename`` and ``/passkeys/<id>/remove`` (the removal is guarded
  by :data:`PASSKEY_REMOVE` and revokes the user's grants);
- ``POST /reauth/passkey/begin`` and ``/reauth/passkey/finish``: re-authentication
  with a passkey (JSON for single-page apps; the page posts the finish as a form);
- ``POST /2fa/verify/passkey/begin`` and ``/2fa/verify/passkey/finish``: a passkey as
  the second factor of the sign-in waiting in the session (the code step's page, or
  JSON for single-page apps); the user is signed in once it passes.

stepup's own pages that manage a signed-in user's factors (these, and the two-factor
pages) serve the interactive web channel only: :func:`off_channel` says which subjects
each framework refuses, in one place per framework, with a 403 that changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, Iterable, Mapping
from dataclasses import replace
from importlib import resources
from typing import Any, Final

from ..errors import ConfigurationError, UnknownActionError
from ..i18n import N_, translate
from ..passkeys import MAX_PAYLOAD_BYTES, PasskeyReason, PasskeyResult, RelyingParty
from ..policy import SENSITIVE, Policy
from ..strict_json import NotStrictJSONError, strict_json
from ..subject import Subject
from ..twofactor import Channel
from .http import RETRY_AFTER, HttpResponse
from .views import TEXT as VIEW_TEXT
from .views import PasskeyMessage, throttled_message

__all__ = [
    "INTERACTIVE_ONLY",
    "MAX_BODY",
    "PASSKEY_ADD",
    "PASSKEY_REMOVE",
    "PasskeyBodyError",
    "PasskeyNameError",
    "action_field",
    "aread_json",
    "assertion_options_response",
    "body_error_response",
    "csrf_response",
    "json_response",
    "limit_response",
    "malformed_response",
    "name_field",
    "off_channel",
    "off_channel_response",
    "parse_json",
    "passkey_error",
    "passkey_message",
    "passkey_policy",
    "passkey_status",
    "posts_form",
    "read_json",
    "refuse_form",
    "registration_response",
    "relying_party_from",
    "result_response",
    "script_response",
]

#: Adding a passkey is sensitive, whatever the tenant's flag: with "strongest available",
#: a passkey an intruder adds to a stolen session would confirm everything after it.
PASSKEY_ADD: Final = "passkey.add"
#: Removing a passkey lowers protection (and revokes the user's grants), whatever the flag.
PASSKEY_REMOVE: Final = "passkey.remove"
#: The ``error`` of the 403 that a page refuses a subject on another channel with.
INTERACTIVE_ONLY: Final = "interactive_only"
#: The largest JSON body a passkey endpoint reads: the core's own limit on the
#: authenticator's answer, plus room for a name and the page's fields.
MAX_BODY: Final = MAX_PAYLOAD_BYTES + 2048

_MESSAGES: Final = {
    # Mostly a page's form sent without its script (the credential field empty): say why,
    # since trying again in the same browser cannot work.
    PasskeyReason.MALFORMED: N_(
        "This browser did not send a passkey answer that could be read: passkeys need"
        " JavaScript and a browser that supports them."
    ),
    PasskeyReason.CHALLENGE: N_("This request has expired or was already used. Try again."),
    PasskeyReason.UNKNOWN_CREDENTIAL: N_("This passkey is not registered to your account."),
    PasskeyReason.INVALID: N_("The passkey could not be verified."),
    PasskeyReason.USER_VERIFICATION: N_(
        "Your device did not confirm it is you (PIN, fingerprint or face). Try again."
    ),
    PasskeyReason.COUNTER: N_(
        "This passkey was refused: it may have been copied. Use another way to confirm."
    ),
    PasskeyReason.DUPLICATE: N_(
        "This passkey is already registered, or you have as many passkeys as allowed."
    ),
    PasskeyReason.LIMIT: N_("You have as many passkeys as allowed. Remove one first."),
    PasskeyReason.THROTTLED: N_("Too many attempts. Wait a while and try again."),
    PasskeyReason.UNAVAILABLE: N_("This cannot be done right now. Try again in a moment."),
    PasskeyReason.NEEDS_DEVICE_BOUND: N_(
        "This passkey is synced between devices, and this action needs a passkey kept on a"
        " single device (a security key, or a passkey that is not synced). Use one of those."
    ),
    PasskeyReason.NEEDS_SYNCED: N_(
        "This passkey is kept on a single device, and this action needs a synced passkey."
        " Use one of those."
    ),
}
#: Texts of the passkey pages outside the templates, as msgids.
TEXT: Final = {
    "no_passkey": N_("You have no passkey yet: add one first."),
    "no_device_bound_passkey": N_(
        "This action needs a passkey kept on a single device (a security key, or a passkey"
        " that is not synced), and none of yours is: add one first."
    ),
    "no_synced_passkey": N_(
        "This action needs a synced passkey, and none of yours is: add one first."
    ),
    # A JSON client's CSRF failure: what a script (and the person it shows the title
    # to) needs to know, since a re-authentication or sign-in renews the token.
    "csrf_json": N_(
        "The request's security token is missing or no longer valid (it changes when you"
        " sign in or confirm it is you). Reload the page and try again."
    ),
    "not_offered": N_("A passkey is not a way to confirm this action."),
    "not_configured": N_("Passkeys are not set up on this site."),
    "added": N_("The passkey was added."),
    "renamed": N_("The passkey was renamed."),
    "removed": N_("The passkey was removed."),
    "not_found": N_("There is no such passkey on your account."),
    # A rename or registration whose "name" is not text (a script's mistake): says so,
    # not that the browser sent no passkey answer.
    "name_not_text": N_("The passkey's name must be text."),
    INTERACTIVE_ONLY: N_(
        "This can only be done in a browser where you are signed in, not with an API key"
        " or another automated request."
    ),
    "csrf": VIEW_TEXT["csrf"],
    "unknown_action": VIEW_TEXT["unknown_action"],
    "unavailable": VIEW_TEXT["unavailable"],
    "sign_in_expired": VIEW_TEXT["sign_in_expired"],
    "transaction_expired": VIEW_TEXT["transaction_expired"],
}

_STATUS: Final = {
    PasskeyReason.OK: 200,
    PasskeyReason.DUPLICATE: 409,
    PasskeyReason.LIMIT: 409,
    PasskeyReason.THROTTLED: 429,
    PasskeyReason.UNAVAILABLE: 503,
}


# settings ---------------------------------------------------------------------------


def relying_party_from(
    rp_id: object, name: object, origins: object, *, settings: tuple[str, str, str]
) -> RelyingParty | None:
    """The relying party from an integration's settings (``None``: passkeys off).

    ``settings`` are the names of the three settings as the messages name them
    (``STEPUP_PASSKEYS_RP_ID``... for Flask), so a typo fails at start-up and says
    which setting is wrong."""
    id_name, name_name, origins_name = settings
    if rp_id is None or rp_id == "":
        if origins:
            raise ConfigurationError(f"{origins_name} is set: set {id_name} too")
        return None
    if not isinstance(rp_id, str):
        raise ConfigurationError(f"{id_name} must be a domain such as 'example.com'")
    if isinstance(origins, str):
        origins = (origins,)
    if not isinstance(origins, Iterable) or not all(isinstance(o, str) for o in origins):
        raise ConfigurationError(f"{origins_name} must be a list of origins")
    if not isinstance(name, str) or not name:
        raise ConfigurationError(f"{name_name} must be the site's name")
    try:
        return RelyingParty(id=rp_id, name=name, origins=tuple(origins))
    except ConfigurationError as exc:
        raise ConfigurationError(f"{id_name}, {origins_name}: {exc}") from None


def passkey_policy(policy: Policy, rp: RelyingParty | None) -> Policy:
    """With passkeys configured: the policy offers a passkey first (strongest
    available, see docs/policy.md), and names :data:`PASSKEY_ADD` and
    :data:`PASSKEY_REMOVE` (sensitive, ``always``: whatever the tenant's flag, as
    ``tenant.settings.update``) unless it names them itself. Without, unchanged.

    ``always``: a passkey proves ``phr`` on its own, so one that a stolen session adds
    while the flag is off would satisfy every re-authentication once the flag is on,
    and removing the victim's would lock them out (OWASP ASVS 5.0 sections 6.4 and 7.5:
    a full re-authentication before authentication factors change)."""
    if rp is None:
        return policy
    rules = {}
    if not policy.names(PASSKEY_ADD):
        rules[PASSKEY_ADD] = replace(SENSITIVE, always=True, description=N_("Adding passkeys"))
    if not policy.names(PASSKEY_REMOVE):
        rules[PASSKEY_REMOVE] = replace(SENSITIVE, always=True, description=N_("Removing passkeys"))
    return policy.extend(rules).with_passkeys()


# channels ---------------------------------------------------------------------------


def off_channel(subject: Subject | None) -> bool:
    """Does a page of stepup's own refuse ``subject`` for its channel?

    The pages that add, change or remove a user's factors (passkeys, TOTP apps,
    recovery codes, removing two-factor) and re-authentication with a passkey are for a
    person in a browser: the interactive web channel (``Channel.WEB``). An API key, a
    bearer token or message injection reaches none of them (each framework answers
    with a 403 that changes nothing): the core exempts those channels from every rule
    without ``api_keys=True``, so an API key would otherwise add a passkey without a
    re-authentication and use it as the second factor at sign-in. ``None`` (nobody
    signed in) is not refused here: the page sends them to sign in."""
    # Compared as the core compares it: a loader's plain "web" is the web channel.
    return subject is not None and subject.channel != Channel.WEB


def off_channel_response(locale: str | None) -> HttpResponse:
    """The JSON 403 for a subject :func:`off_channel` refuses (nothing read or changed)."""
    return message_response(403, INTERACTIVE_ONLY, locale)


# bodies -----------------------------------------------------------------------------


class PasskeyBodyError(ValueError):
    """The request body is not a JSON object, or is larger than :data:`MAX_BODY`."""


class PasskeyNameError(PasskeyBodyError):
    """The body's ``name`` is not text (:func:`body_error_response` says so)."""


#: The bodies a browser's form is posted as: the only ones a passkey endpoint reads as a
#: form (and only the endpoints a page posts to, see :func:`posts_form`).
FORM_TYPES: Final = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


def posts_form(content_type: str | None) -> bool:
    """Is this body a browser's form (urlencoded or multipart)?

    The rule of every framework, decided here once: a passkey endpoint's body is JSON
    whatever its ``Content-Type`` says (``application/json``, ``text/plain``, none at
    all), except a form's. A form is read as the page's form where a page posts one
    (the finish endpoints, rename), and refused by the JSON-only begin endpoints
    (:func:`refuse_form`). Deciding by "json" in the type instead let each framework
    guess differently: a JSON body sent as ``text/plain`` was a form to some, and a
    form's body, already read by the framework's form parser, an empty JSON object to
    another (which then issued a challenge for no action)."""
    mimetype = (content_type or "").split(";", 1)[0].strip().lower()
    return mimetype in FORM_TYPES


def refuse_form(content_type: str | None) -> None:
    """A JSON-only endpoint (the begin endpoints) is posted no form: a form body is
    :class:`PasskeyBodyError`, its 400 ``malformed`` (it is never a JSON object), in
    every framework, whether the framework's form parser read the body first or not."""
    if posts_form(content_type):
        raise PasskeyBodyError("a form, not JSON")


def parse_json(body: bytes | str) -> dict[str, Any]:
    """A JSON object from a body or a form field, or :class:`PasskeyBodyError`."""
    if len(body) > MAX_BODY:
        raise PasskeyBodyError("too large")
    try:
        # Strict (RFC 8259): a member named twice would be resolved by the parser's
        # last-wins rule before Passkeys ever saw the text, and NaN is no JSON.
        data = strict_json(body or "{}")
    except NotStrictJSONError:
        raise PasskeyBodyError("not JSON") from None
    if not isinstance(data, dict):
        raise PasskeyBodyError("not a JSON object")
    return data


def _too_large(content_length: str | None) -> bool:
    try:
        return content_length is not None and int(content_length) > MAX_BODY
    except ValueError:
        return True


def _add(buffer: bytearray, chunk: bytes) -> None:
    buffer += chunk
    if len(buffer) > MAX_BODY:
        raise PasskeyBodyError("too large")


def read_json(chunks: Iterable[bytes], content_length: str | None = None) -> dict[str, Any]:
    """The body as a JSON object, read no further than :data:`MAX_BODY`. A body the
    server cannot read whole (the client went away, or sent fewer bytes than its
    ``Content-Length``) is a :class:`PasskeyBodyError` too: the endpoints' 400
    ``malformed``, never a 500 or the server's own error page."""
    if _too_large(content_length):
        raise PasskeyBodyError("too large")
    buffer = bytearray()
    try:
        for chunk in chunks:
            _add(buffer, chunk)
    except PasskeyBodyError:
        raise
    except Exception as exc:  # the server's reader gave up
        raise PasskeyBodyError("not read whole") from exc
    return parse_json(bytes(buffer))


async def aread_json(
    chunks: AsyncIterable[bytes], content_length: str | None = None
) -> dict[str, Any]:
    """:func:`read_json` for an ASGI body stream."""
    if _too_large(content_length):
        raise PasskeyBodyError("too large")
    buffer = bytearray()
    try:
        async for chunk in chunks:
            _add(buffer, chunk)
    except PasskeyBodyError:
        raise
    except Exception as exc:  # a client gone mid-body (ClientDisconnect): a 400, not a 500
        raise PasskeyBodyError("not read whole") from exc
    return parse_json(bytes(buffer))


def field(data: Mapping[str, Any], name: str, default: str = "") -> str:
    """A string field of a JSON body (anything else counts as absent)."""
    value = data.get(name, default)
    return value if isinstance(value, str) else default


def action_field(data: Mapping[str, Any]) -> str:
    """The ``action`` a JSON body names (absent: ``""``, no action named). Anything but
    text names no action: :class:`~stepup.errors.UnknownActionError`, which each
    endpoint answers with its 400 ``unknown_action`` (nothing read or changed), as it
    does an unknown name."""
    value = data.get("action", "")
    if not isinstance(value, str):
        raise UnknownActionError(value)  # names the type, never echoes the value
    return value


def name_field(data: Mapping[str, Any]) -> str:
    """A passkey's ``name`` from a body: absent is ``""``; anything but text is
    :class:`PasskeyNameError` (a 400 that says so, see :func:`body_error_response`;
    nothing renamed or registered), never a silent "Passkey"."""
    value = data.get("name", "")
    if not isinstance(value, str):
        raise PasskeyNameError("the name is not text")
    return value


# responses --------------------------------------------------------------------------


def json_response(status: int, payload: Mapping[str, Any]) -> HttpResponse:
    """``payload`` as JSON; a 503 (the store could not answer) carries the
    ``Retry-After`` every such 503 does (:data:`~stepup.integrations.http.RETRY_AFTER`)."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json", "Cache-Control": "no-store"}
    if status == 503:
        headers["Retry-After"] = RETRY_AFTER
    return HttpResponse(status, headers, body)


def passkey_status(reason: PasskeyReason) -> int:
    """The HTTP status for a ceremony's answer: 200, 409 (already registered, too
    many), 503 (store down), else 400 (the browser's answer was refused)."""
    return _STATUS.get(reason, 400)


def passkey_message(reason: PasskeyReason) -> str:
    """The msgid that tells a person why (translated where it is shown)."""
    return _MESSAGES.get(reason, _MESSAGES[PasskeyReason.INVALID])


def passkey_error(result: PasskeyResult) -> PasskeyMessage:
    """:func:`passkey_message` for a page, saying until when a pause lasts; a
    :class:`~stepup.integrations.views.PasskeyMessage`, so the page marks no field."""
    if result.reason is PasskeyReason.THROTTLED:
        paused = throttled_message(result.retry_at)
        return PasskeyMessage(paused.msgid, paused.retry_at)
    return PasskeyMessage(passkey_message(result.reason))


def _error(status: int, error: str, msgid: str, locale: str | None) -> HttpResponse:
    return json_response(status, {"error": error, "title": translate(msgid, locale)})


def malformed_response(locale: str | None) -> HttpResponse:
    """The 400 for a body that is not a JSON object or is too large: nothing changed."""
    return _error(400, PasskeyReason.MALFORMED.value, _MESSAGES[PasskeyReason.MALFORMED], locale)


def body_error_response(error: PasskeyBodyError, locale: str | None) -> HttpResponse:
    """The 400 ``malformed`` for a body refused by :func:`name_field` or a reader: its
    title says the name is not text when that is why, else :func:`malformed_response`."""
    if isinstance(error, PasskeyNameError):
        return _error(400, PasskeyReason.MALFORMED.value, TEXT["name_not_text"], locale)
    return malformed_response(locale)


def message_response(status: int, key: str, locale: str | None) -> HttpResponse:
    return _error(status, key, TEXT[key], locale)


def assertion_options_response(
    options: Mapping[str, Any] | None, locale: str | None, methods: Iterable[str] = ()
) -> HttpResponse:
    """The options for ``navigator.credentials.get``, or 409 when no passkey of the user
    can prove ``methods`` (the offered alternative): which kind to add, when it asks for
    one (``hwk`` device-bound, ``swk`` synced), else that there is none."""
    if options is not None:
        return json_response(200, options)
    asked = set(methods)
    if "hwk" in asked:
        return message_response(409, "no_device_bound_passkey", locale)
    if "swk" in asked:
        return message_response(409, "no_synced_passkey", locale)
    return message_response(409, "no_passkey", locale)


def csrf_response(locale: str | None) -> HttpResponse:
    """The 403 for a request that asks for JSON and fails the CSRF check, the same in
    every framework: ``{"error": "csrf", "title": ...}`` (nothing read or changed)."""
    return _error(403, "csrf", TEXT["csrf_json"], locale)


def limit_response(locale: str | None) -> HttpResponse:
    """The 409 ``limit`` for a registration begun at ``max_passkeys_per_user``."""
    return result_response(PasskeyResult(PasskeyReason.LIMIT), locale)


def result_response(result: PasskeyResult, locale: str | None, **ok: Any) -> HttpResponse:
    """A ceremony's answer: ``{"ok": true, ...}`` or the reason and a person's text."""
    if result:
        return json_response(200, {"ok": True, **ok})
    status = passkey_status(result.reason)
    title = translate(passkey_error(result), locale)  # a pause says until when
    payload: dict[str, Any] = {"error": result.reason.value, "title": title}
    if result.retry_at is not None:
        payload["retry_at"] = result.retry_at
    return json_response(status, payload)


def registration_response(result: PasskeyResult, locale: str | None) -> HttpResponse:
    """A registration's answer, naming the new passkey (never its key material)."""
    if result and result.passkey is not None:
        passkey = {"id": result.passkey.credential_id, "name": result.passkey.name}
        return result_response(result, locale, passkey=passkey)
    return result_response(result, locale)


#: The helper script, served by each integration at ``<prefix>/stepup-passkeys.js``.
SCRIPT: Final = "stepup-passkeys.js"


def script_response() -> HttpResponse:
    """``stepup/integrations/static/stepup-passkeys.js``, cacheable."""
    body = resources.files("stepup.integrations").joinpath(f"static/{SCRIPT}").read_bytes()
    headers = {
        "Content-Type": "text/javascript; charset=utf-8",
        "Cache-Control": "public, max-age=3600",
    }
    return HttpResponse(200, headers, body)
