"""Decide on a verified response against its pending request: pure, clock passed in.

The order matters: the request is matched first (it has been consumed by then), then
who answered, then whether the assertion holds now, then whether it is fresh.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ....records import Challenge
from ....resume import is_resume_token
from ....subject import Subject
from ....transactions import is_transaction_digest
from .._freshness import earliest_fresh_login
from ._read import Confirmation, SignedResponse
from .config import NAMEID_FORMAT_UNSPECIFIED
from .outcome import SAMLOutcome, SAMLReason

__all__ = ["Expectation", "judge", "judge_idp_error"]


@dataclass(frozen=True, slots=True)
class Expectation:
    """What this service provider requires of every response. ``name_id_format`` is the
    ``NameIDPolicy`` format requested (``None``: none)."""

    sp_entity_id: str
    acs_url: str
    idp_entity_id: str
    max_skew: float
    name_id_format: str | None = None


def _broken_condition(
    expect: Expectation, facts: SignedResponse, now: float, issued_at: float
) -> str | None:
    """The first of destination, audience, validity window, issue instants and bearer
    confirmation that does not hold now, or ``None``. Of several bearer confirmations
    one that holds is enough; when none does, ``subject_confirmation_not_before`` if one
    fails only by carrying ``NotBefore``, else ``subject_confirmation``.

    ``issued_at`` is when the request was issued: the response and the assertion answer
    it, so neither can have been issued before it (at the IdP's whole-second
    resolution, less the skew: ``issue_instant_before_request``) nor later than now
    (more than the skew ahead: ``issue_instant_in_future``)."""
    skew = expect.max_skew
    if facts.destination is not None and facts.destination != expect.acs_url:
        return "destination"
    if facts.response_signed and facts.destination is None:
        return "destination"  # SAML bindings 3.5.5.2: a signed POSTed response names it
    if not facts.audiences or any(expect.sp_entity_id not in group for group in facts.audiences):
        return "audience"
    if facts.unknown_conditions:
        return "condition"  # a condition we do not understand makes the assertion invalid
    if facts.not_before is not None and now + skew < facts.not_before:
        return "not_before"
    if facts.not_on_or_after is not None and now - skew >= facts.not_on_or_after:
        return "not_on_or_after"
    if facts.session_not_on_or_after is not None and now - skew >= facts.session_not_on_or_after:
        return "session_not_on_or_after"
    if facts.authn_instant > now + skew:
        return "authn_instant_in_future"  # nonsense, not freshness
    if any(instant > now + skew for instant in facts.issue_instants):
        return "issue_instant_in_future"
    # The same rounding as AuthnInstant's freshness: an IdP stamps whole seconds.
    earliest = earliest_fresh_login(issued_at, skew)
    if any(instant < earliest for instant in facts.issue_instants):
        return "issue_instant_before_request"
    faults = [_bearer_fault(expect, c, now) for c in facts.confirmations]
    if None in faults:
        return None  # one bearer confirmation that holds is enough (profiles 4.1.4.3)
    if "subject_confirmation_not_before" in faults:
        return "subject_confirmation_not_before"
    return "subject_confirmation"


def _bearer_fault(expect: Expectation, confirmation: Confirmation, now: float) -> str | None:
    """Why this bearer confirmation does not hold now (``None``: it does). It must name
    this ACS as its ``Recipient`` and carry a ``NotOnOrAfter`` not yet passed, and no
    ``NotBefore``: SAML profiles 4.1.4.2 says a bearer ``SubjectConfirmationData`` MUST
    NOT contain one (``subject_confirmation_not_before``, when that is all it lacks)."""
    if (
        confirmation.recipient != expect.acs_url
        or confirmation.not_on_or_after is None
        or now - expect.max_skew >= confirmation.not_on_or_after
    ):
        return "subject_confirmation"
    if confirmation.not_before is not None:
        return "subject_confirmation_not_before"
    return None


def _other_identifier(expect: Expectation, facts: SignedResponse) -> str | None:
    """``name_qualifier`` when the NameID is qualified by another IdP than the issuer,
    ``sp_name_qualifier`` when it is qualified for another service provider than this
    one (SAML core 2.2.2: a persistent or pairwise id made for another SP or
    affiliation), ``name_id_format`` when its Format is not the one requested (SAML core
    3.4.1.1: identical unless "unspecified" was requested; an absent Format is
    "unspecified"), or ``None``: the same text in another namespace is not the same
    identifier. Qualifiers compare exactly, as written."""
    if facts.name_qualifier is not None and facts.name_qualifier != expect.idp_entity_id:
        return "name_qualifier"
    if facts.sp_name_qualifier is not None and facts.sp_name_qualifier != expect.sp_entity_id:
        return "sp_name_qualifier"
    wanted = expect.name_id_format
    if wanted not in (None, NAMEID_FORMAT_UNSPECIFIED) and facts.name_id_format != wanted:
        return "name_id_format"
    return None


def _stored(challenge: Challenge, subject: Subject) -> dict[str, Any] | None:
    """What was stored with the request, as :class:`SAMLOutcome` fields, when it is a
    SAML request of this very session (``None``: it is not)."""
    data = challenge.data
    if (
        data.get("protocol") != "saml"
        or challenge.user_id != subject.user_id
        or challenge.session_id != subject.session_id
    ):
        return None
    return_to = data.get("return_to")
    action = data.get("action")
    # A request stored before transactions rode with the trip has no key: none.
    transaction = data.get("transaction", "")
    resume = data.get("resume", "")  # likewise for a suspended form's token
    return {
        "return_to": return_to if isinstance(return_to, str) else None,
        "action": action if isinstance(action, str) else "",
        "transaction": transaction if is_transaction_digest(transaction) else "",
        "resume": resume if is_resume_token(resume) else "",
        # Likewise for a code proved at the start: only JSON true proves it, and it was
        # proved when the request was issued (a request stored before the time rode
        # with it was issued in the very request that checked the code).
        "otp_proved": (proved := data.get("otp_proved", False) is True),
        "otp_proved_at": _proved_at(data.get("otp_proved_at"), challenge) if proved else None,
    }


def _proved_at(value: object, challenge: Challenge) -> float:
    """When the request's code was proved: the time kept with it, never later than the
    request's issue (a number from the store that says otherwise is not believed)."""
    issued = challenge.issued_at
    if isinstance(value, int | float) and not isinstance(value, bool) and value <= issued:
        return float(value)
    return issued


def judge_idp_error(challenge: Challenge, subject: Subject, idp_status: str | None) -> SAMLOutcome:
    """The IdP answered the (already consumed) ``challenge`` with an error status (the
    person cancelled, the login failed): nothing is granted, but when the request is
    this session's, what was stored with it comes back, so trying again keeps the
    action, the suspended form and the way back (another session's: nothing does)."""
    stored = _stored(challenge, subject) or {}
    return SAMLOutcome(SAMLReason.IDP_ERROR, idp_status=idp_status, detail="status", **stored)


def judge(
    expect: Expectation,
    facts: SignedResponse,
    challenge: Challenge,
    subject: Subject,
    now: float,
) -> SAMLOutcome:
    """The verdict on ``facts`` for the (already consumed) ``challenge``."""
    data = challenge.data
    stored = _stored(challenge, subject)
    if stored is None:
        return SAMLOutcome(SAMLReason.UNKNOWN_REQUEST, detail="other_session")

    def verdict(
        reason: SAMLReason,
        detail: str = "",
        authn_instant: float | None = None,
        authn_context: str | None = None,
    ) -> SAMLOutcome:
        # The request is this session's: hand back what was stored with it.
        return SAMLOutcome(
            reason,
            authn_instant=authn_instant,
            authn_context=authn_context,
            detail=detail,
            **stored,
        )

    deadline = data.get("deadline")
    if not isinstance(deadline, int | float) or now >= deadline:
        return verdict(SAMLReason.EXPIRED)
    if any(issuer != expect.idp_entity_id for issuer in facts.issuers):
        return verdict(SAMLReason.WRONG_SUBJECT, "issuer")
    if (
        not facts.name_id
        or facts.name_id != subject.identity.subject
        or facts.name_id != data.get("name_id")
    ):
        return verdict(SAMLReason.WRONG_SUBJECT, "name_id")
    other = _other_identifier(expect, facts)
    if other is not None:
        return verdict(SAMLReason.WRONG_SUBJECT, other)
    broken = _broken_condition(expect, facts, now, challenge.issued_at)
    if broken is not None:
        return verdict(SAMLReason.INVALID_CONDITIONS, broken)
    if facts.authn_instant < earliest_fresh_login(challenge.issued_at, expect.max_skew):
        return verdict(SAMLReason.STALE_AUTHN_INSTANT, authn_instant=facts.authn_instant)
    wanted = data.get("authn_context") or []
    if wanted and facts.authn_context not in wanted:
        return verdict(SAMLReason.AUTHN_CONTEXT_NOT_MET, authn_context=facts.authn_context)
    return verdict(
        SAMLReason.OK, authn_instant=facts.authn_instant, authn_context=facts.authn_context
    )
