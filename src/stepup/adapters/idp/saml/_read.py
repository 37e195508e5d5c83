"""Read a SAML ``Response`` and verify its signatures; return only signed facts.

The decoded bytes are parsed once, by defusedxml with every document type declaration
forbidden, into pysaml2's classes; xmlsec1 checks each signature on those same bytes
against the IdP's certificates from metadata, and nothing else: every other check is
made by :mod:`._judge` against the injected clock, so each refusal has a type.

Why only one shape of document: xmlsec1, asked to verify the element with a given ID,
verifies the *first* ``ds:Signature`` it finds from that element on (depth first, in
document order), while pysaml2 checks the shape of the element's own, direct-child
signature. A genuine signed element of any exchange placed before a forged element's
own signature (in ``<saml:Advice>``, ``<samlp:StatusDetail>``, ``<samlp:Extensions>``)
would have its signature verified for the forged element's facts. So a signature is
allowed only as the direct child of the ``Response`` or of its one ``Assertion``, before
anything that could hold another element; no other assertion or response may appear
anywhere, and no two elements share an ID.

Why no DTD at all: a SAML message has none, and an internal subset can give an element
attributes the document does not carry (``<!ATTLIST saml:Assertion ID CDATA "...">``).
expat (pysaml2's reader) applies such defaults and libxml2 (xmlsec1's) does not, so the
two would read different documents: the signature checked on one, the facts read from
the other.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

# defusedxml: pysaml2's own XML reader (a dependency of pysaml2), untyped.
from defusedxml import DTDForbidden
from defusedxml.ElementTree import fromstring as defused_fromstring
from saml2 import class_name, create_class_from_element_tree, samlp
from saml2.saml import NAMEID_FORMAT_ENTITY, SCM_BEARER

from .outcome import SAMLReason

__all__ = ["Confirmation", "IdPStatus", "Refusal", "SignedResponse", "read_response"]

#: A browser posts a few kilobytes; anything far larger is refused before parsing.
MAX_RESPONSE_CHARS = 512 * 1024

#: The IdP's status code is reported up to this length.
MAX_STATUS_CHARS = 200

#: Signature and digest algorithms accepted: the SHA-2 family only (no SHA-1, no MD5).
_STRONG_SUFFIXES = ("sha256", "sha384", "sha512")

_WHITESPACE = re.compile(r"\s+")


class Refusal(Exception):  # noqa: N818 (a verdict carried out of nested reads, not a fault)
    """Why a response cannot be used; ``detail`` is a short non-secret word."""

    def __init__(self, reason: SAMLReason, detail: str, idp_status: str | None = None) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail
        self.idp_status = idp_status


@dataclass(frozen=True, slots=True)
class IdPStatus:
    """A response whose status is not Success: the IdP's (second-level) status code and
    the request it says it answers (the envelope's ``InResponseTo``, unsigned: the
    caller takes it as a pending request of this session only when ``RelayState``
    agrees, and grants nothing on it)."""

    idp_status: str
    in_response_to: str | None


@dataclass(frozen=True, slots=True)
class Confirmation:
    """One bearer ``SubjectConfirmationData``."""

    recipient: str | None
    in_response_to: str | None
    not_before: float | None
    not_on_or_after: float | None


@dataclass(frozen=True, slots=True)
class SignedResponse:
    """What a verified response says. Every field comes from signed content, except
    ``destination``, ``response_in_response_to`` and the response's ``IssueInstant``
    (the second of ``issue_instants``) when only the assertion is signed (they are then
    only ever compared, never trusted).

    ``name_id`` and its qualifiers are as written: a ``NameID`` is an ``xs:string``
    and identifiers compare exactly, so no whitespace is taken off (``" alice\\n"`` is
    not ``"alice"``)."""

    response_signed: bool
    destination: str | None
    response_in_response_to: str | None
    issuers: tuple[str, ...]
    issue_instants: tuple[float, ...]
    name_id: str
    name_id_format: str | None
    name_qualifier: str | None
    sp_name_qualifier: str | None
    in_response_to: str
    audiences: tuple[tuple[str, ...], ...]
    not_before: float | None
    not_on_or_after: float | None
    unknown_conditions: bool
    confirmations: tuple[Confirmation, ...]
    authn_instant: float
    authn_context: str | None
    session_not_on_or_after: float | None


def _decode(saml_response: object) -> bytes:
    """The XML bytes: exactly these are parsed for the facts and handed to xmlsec1."""
    if not isinstance(saml_response, str | bytes) or not saml_response:
        raise Refusal(SAMLReason.MALFORMED, "empty")
    if len(saml_response) > MAX_RESPONSE_CHARS:
        raise Refusal(SAMLReason.MALFORMED, "too_large")
    text = (
        saml_response.decode("ascii", "replace")
        if isinstance(saml_response, bytes)
        else saml_response
    )
    try:
        raw = base64.b64decode(_WHITESPACE.sub("", text), validate=True)
        raw.decode("utf-8")  # SAML messages are UTF-8 (only checked: the bytes are kept)
    except (binascii.Error, ValueError):
        raise Refusal(SAMLReason.MALFORMED, "base64") from None
    return raw


def _parse(xml: bytes) -> Any:
    """The ``Response`` in ``xml``, parsed by expat (through defusedxml) with any
    ``<!DOCTYPE`` refused as soon as the parser meets it (detail ``dtd``), whatever the
    encoding, comments or processing instructions before it: the parser's own doctype
    event, not a search of the text."""
    try:
        tree = defused_fromstring(xml, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DTDForbidden:  # before any entity or external reference, which need a DTD
        raise Refusal(SAMLReason.MALFORMED, "dtd") from None
    except Exception:  # expat's ParseError, and whatever else hostile bytes raise
        raise Refusal(SAMLReason.MALFORMED, "xml") from None
    _check_shape(tree)
    try:
        response = create_class_from_element_tree(samlp.Response, tree)
    except Exception:  # pysaml2 raises many types for documents of the wrong shape
        raise Refusal(SAMLReason.MALFORMED, "xml") from None
    if response is None:
        raise Refusal(SAMLReason.MALFORMED, "not_a_response")
    return response


_PROTOCOL = "{urn:oasis:names:tc:SAML:2.0:protocol}"
_ASSERTION = "{urn:oasis:names:tc:SAML:2.0:assertion}"
_RESPONSE_TAG = _PROTOCOL + "Response"
_ASSERTION_TAG = _ASSERTION + "Assertion"
_SIGNATURE_TAG = "{http://www.w3.org/2000/09/xmldsig#}Signature"
#: Elements that carry a whole assertion or response inside another message.
_CONTAINERS = frozenset({_RESPONSE_TAG, _ASSERTION_TAG, _ASSERTION + "EncryptedAssertion"})


def _check_shape(root: Any) -> None:
    """Refuse any document whose signatures xmlsec1 and pysaml2 could read differently:
    see the module's docstring. Signature placement is ``invalid_signature``
    (``signature_placement``); a second assertion or response anywhere is ``malformed``
    (``nested_assertion``); a repeated ID ``malformed`` (``duplicate_id``)."""
    if root.tag != _RESPONSE_TAG:
        raise Refusal(SAMLReason.MALFORMED, "not_a_response")
    # The response's own assertions (one, or an encrypted one that is refused later).
    top = {id(child) for child in root if child.tag in _CONTAINERS}
    assertions = [child for child in root if child.tag == _ASSERTION_TAG]
    signed = [root, *assertions]  # where a signature may be: their direct children
    allowed = {id(child) for parent in signed for child in parent if child.tag == _SIGNATURE_TAG}
    ids: set[str] = set()
    for node in root.iter():
        if node.tag == _SIGNATURE_TAG and id(node) not in allowed:
            raise Refusal(SAMLReason.INVALID_SIGNATURE, "signature_placement")
        if node.tag in _CONTAINERS and node is not root and id(node) not in top:
            raise Refusal(SAMLReason.MALFORMED, "nested_assertion")
        value = node.get("ID")
        if value is not None:
            if value in ids:
                raise Refusal(SAMLReason.MALFORMED, "duplicate_id")
            ids.add(value)
    for parent in signed:
        # Its own signature, if any, is the first thing xmlsec1 meets in it: one only,
        # before every child that holds more than text (the assertion in a response).
        children = list(parent)
        signatures = [i for i, child in enumerate(children) if child.tag == _SIGNATURE_TAG]
        if len(signatures) > 1:
            raise Refusal(SAMLReason.INVALID_SIGNATURE, "signature_placement")
        if signatures and any(len(child) for child in children[: signatures[0]]):
            raise Refusal(SAMLReason.INVALID_SIGNATURE, "signature_placement")


def _status(response: Any) -> IdPStatus | None:
    """``None`` for Success, else what the IdP's error answer says."""
    outer = getattr(response.status, "status_code", None)
    code = getattr(outer, "value", None)
    if not isinstance(code, str):
        raise Refusal(SAMLReason.MALFORMED, "status")
    if code == samlp.STATUS_SUCCESS:
        return None
    # The second-level code says what happened (AuthnFailed, NoPassive...). The value is
    # unsigned text from the browser: keep it short enough to log.
    detail = getattr(getattr(outer, "status_code", None), "value", None) or code
    answers = response.in_response_to
    return IdPStatus(
        str(detail)[:MAX_STATUS_CHARS],
        answers if isinstance(answers, str) and answers else None,
    )


def _the_assertion(response: Any) -> Any:
    """The response's one plain assertion. The response and the assertion alike must say
    ``Version="2.0"`` (SAML core 2.3.3 and 3.2.2; 4.1 and 4.2: a message of a version
    this side does not support is refused): ``malformed``, detail ``version``."""
    if response.version != "2.0":
        raise Refusal(SAMLReason.MALFORMED, "version")
    if response.encrypted_assertion:
        raise Refusal(SAMLReason.MALFORMED, "encrypted_assertion")
    if len(response.assertion) != 1:
        raise Refusal(SAMLReason.MALFORMED, "assertion_count")
    assertion = response.assertion[0]
    if assertion.version != "2.0":
        raise Refusal(SAMLReason.MALFORMED, "version")
    subject = assertion.subject
    if subject is None or subject.encrypted_id is not None or subject.name_id is None:
        raise Refusal(SAMLReason.MALFORMED, "name_id")
    return assertion


def _strong(signature: Any) -> bool:
    info = getattr(signature, "signed_info", None)
    references = getattr(info, "reference", None) or []
    algorithms = [getattr(getattr(info, "signature_method", None), "algorithm", None)]
    algorithms += [getattr(r.digest_method, "algorithm", None) for r in references]
    return bool(references) and all(
        isinstance(a, str) and a.endswith(_STRONG_SUFFIXES) for a in algorithms
    )


def _verify(security: Any, element: Any, xml: bytes) -> None:
    if not _strong(element.signature):
        raise Refusal(SAMLReason.INVALID_SIGNATURE, "weak_algorithm")
    try:
        # Looks up the signing certificates of the element's issuer in the IdP metadata
        # only (only_use_keys_in_metadata) and runs xmlsec1 on the element by its ID,
        # in ``xml``: the very bytes the facts were parsed from (pysaml2 writes bytes to
        # xmlsec1's file as they are).
        security.check_signature(element, class_name(element), xml)
    except Exception:  # any failure to verify is a refusal, whatever pysaml2 raised
        raise Refusal(SAMLReason.INVALID_SIGNATURE, "signature") from None


#: xs:dateTime's lexical form (XML Schema 1.0 Part 2, 3.2.7.1), which SAML's times
#: take (SAML Core 1.3.3): ``datetime.fromisoformat`` also reads ISO 8601 forms that
#: are not it (``20240101T000000Z``, a space for the ``T``, week dates) and refuses
#: one that is (``24:00:00``, the end of a day).
_XS_DATETIME: Final = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(\.\d+)?"
    r"(Z|[+-](?:(?:0\d|1[0-3]):[0-5]\d|14:00))?",  # a zone is at most 14:00 away (3.2.7.3)
    re.ASCII,
)


def _time(value: object) -> float | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise Refusal(SAMLReason.MALFORMED, "time")
    text = value.strip()
    match = _XS_DATETIME.fullmatch(text)
    if match is None:
        raise Refusal(SAMLReason.MALFORMED, "time")
    fraction = match[7] or ""
    end_of_day = match.group(4, 5, 6) == ("24", "00", "00") and not fraction.strip(".0")
    if end_of_day:  # 24:00:00 is the first instant of the next day
        text = f"{text[:11]}00{text[13:]}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:  # a day or an hour out of range
        raise Refusal(SAMLReason.MALFORMED, "time") from None
    if parsed.tzinfo is None:  # SAML times are UTC; "Z" is usually but not always there
        parsed = parsed.replace(tzinfo=UTC)
    seconds = calendar.timegm(parsed.utctimetuple()) + parsed.microsecond / 1_000_000
    return seconds + 86_400 if end_of_day else seconds


def _text(element: Any) -> str | None:
    text = getattr(element, "text", None)
    return text.strip() if isinstance(text, str) and text.strip() else None


def _attribute(value: object) -> str | None:
    """An optional attribute's value, surrounding whitespace off; absent or empty: None."""
    if not isinstance(value, str):
        return None
    return value.strip() or None


def _exact(value: object) -> str | None:
    """An optional ``xs:string`` identifier (a ``NameID``'s qualifiers) as written:
    nothing is taken off, so it compares exactly; absent or empty: None."""
    return value if isinstance(value, str) and value else None


def _issue_instant(element: Any) -> float:
    """The required ``IssueInstant`` of a ``Response`` or an ``Assertion`` (SAML core
    2.3.3, 3.2.2): missing is ``malformed`` (``issue_instant``), not in xs:dateTime's
    form ``malformed`` (``time``). Only read here: the judge compares it with the
    request's issue time and the clock."""
    issued = _time(element.issue_instant)
    if issued is None:
        raise Refusal(SAMLReason.MALFORMED, "issue_instant")
    return issued


def _confirmations(subject: Any) -> tuple[Confirmation, ...]:
    found = []
    for confirmation in subject.subject_confirmation:
        if confirmation.method != SCM_BEARER:
            continue
        data = confirmation.subject_confirmation_data
        if data is None:
            continue
        found.append(
            Confirmation(
                recipient=data.recipient,
                in_response_to=data.in_response_to,
                not_before=_time(data.not_before),
                not_on_or_after=_time(data.not_on_or_after),
            )
        )
    return tuple(found)


def _in_response_to(confirmations: Iterable[Confirmation]) -> str:
    """The request id, from the signed assertion: one value, on every bearer confirmation."""
    values = {c.in_response_to for c in confirmations}
    if len(values) != 1:
        raise Refusal(SAMLReason.UNKNOWN_REQUEST, "in_response_to")
    (value,) = values
    if not value:
        raise Refusal(SAMLReason.UNKNOWN_REQUEST, "in_response_to")
    return value


def _issuer(issuer: Any) -> str:
    """An ``Issuer``'s text; its ``Format`` must be absent or the entity format (SAML
    profiles 4.1.4.2: an IdP names itself by its entity id, never by a user's name)."""
    written = _attribute(getattr(issuer, "format", None))
    if written is not None and written != NAMEID_FORMAT_ENTITY:
        raise Refusal(SAMLReason.MALFORMED, "issuer_format")
    return _text(issuer) or ""


def _facts(response: Any, assertion: Any, issue_instants: tuple[float, float]) -> SignedResponse:
    conditions = assertion.conditions
    audiences: tuple[tuple[str, ...], ...] = ()
    unknown_conditions = False
    if conditions is not None:
        audiences = tuple(
            tuple(text for a in restriction.audience if (text := _text(a)) is not None)
            for restriction in conditions.audience_restriction
        )
        unknown_conditions = bool(conditions.condition)
    if len(assertion.authn_statement) != 1:
        raise Refusal(SAMLReason.MALFORMED, "authn_statement")
    statement = assertion.authn_statement[0]
    authn_instant = _time(statement.authn_instant)
    if authn_instant is None:
        raise Refusal(SAMLReason.MALFORMED, "authn_instant")
    context = statement.authn_context
    name_id = assertion.subject.name_id
    confirmations = _confirmations(assertion.subject)
    issuers = [_issuer(assertion.issuer)]
    if response.issuer is not None:
        issuers.append(_issuer(response.issuer))
    return SignedResponse(
        response_signed=response.signature is not None,
        destination=response.destination,
        response_in_response_to=response.in_response_to,
        issuers=tuple(issuers),
        issue_instants=issue_instants,
        # As written: "" (no text) is refused by the judge, like any other NameID that
        # is not the session's.
        name_id=name_id.text if isinstance(name_id.text, str) else "",
        name_id_format=_attribute(name_id.format),
        name_qualifier=_exact(name_id.name_qualifier),
        sp_name_qualifier=_exact(name_id.sp_name_qualifier),
        in_response_to=_in_response_to(confirmations),
        audiences=audiences,
        not_before=_time(getattr(conditions, "not_before", None)),
        not_on_or_after=_time(getattr(conditions, "not_on_or_after", None)),
        unknown_conditions=unknown_conditions,
        confirmations=confirmations,
        authn_instant=authn_instant,
        authn_context=_text(getattr(context, "authn_context_class_ref", None)),
        session_not_on_or_after=_time(statement.session_not_on_or_after),
    )


def read_response(security: Any, saml_response: object) -> SignedResponse | IdPStatus:
    """The signed facts of ``saml_response`` (the base64 ``SAMLResponse`` form field),
    or the IdP's error status (:class:`IdPStatus`: nothing else of it is read); raises
    :class:`Refusal` when it cannot be used.

    ``security`` is the pysaml2 security context of the client built from the config.
    """
    xml = _decode(saml_response)
    response = _parse(xml)
    try:
        refused_by_idp = _status(response)
        if refused_by_idp is not None:
            return refused_by_idp
        assertion = _the_assertion(response)
        # Read before the signatures, like the other shape checks: pysaml2's schema
        # check, run with a signature's, would call a malformed one a bad signature.
        issue_instants = (_issue_instant(assertion), _issue_instant(response))
        if response.signature is None and assertion.signature is None:
            raise Refusal(SAMLReason.UNSIGNED, "no_signature")
        for element in (response, assertion):
            if element.signature is not None:
                _verify(security, element, xml)
        return _facts(response, assertion, issue_instants)
    except Refusal:
        raise
    except Exception:  # a parsed document of an unexpected shape: fail closed, typed
        raise Refusal(SAMLReason.MALFORMED, "structure") from None
