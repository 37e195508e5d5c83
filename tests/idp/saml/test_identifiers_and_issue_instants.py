"""Three things of a signed answer that were not compared as SAML means them (review of
the SAML answer checks, a1):

- The ``NameID`` is an ``xs:string``, and identifiers compare exactly. Its text was
  stripped of whitespace first, so the IdP's signed ``" alice-7f3a\\n"`` (another
  account, at an IdP that lets a name carry spaces) re-authenticated alice. It is now
  ``wrong_subject`` (``name_id``); so is a NameID qualifier that differs from the
  expected one by whitespace only.
- ``SPNameQualifier`` (SAML core 2.2.2) was never read: a NameID qualified for another
  service provider is in another namespace, whatever its text. One that is present
  and not this SP's entity id is now ``wrong_subject`` (``sp_name_qualifier``).
- ``IssueInstant``, of the ``Response`` and of the ``Assertion``, was never read: an
  answer issued a year before the request, or a year ahead, was ``ok``. Either is now
  ``invalid_conditions`` (``issue_instant_before_request``, ``issue_instant_in_future``)
  with ``max_skew`` either side; a missing or malformed one is ``malformed``.

The forgeries are the real pysaml2 IdP's unsigned answer, changed, then signed with the
IdP's own key, as a compromised or buggy IdP would send them. Times are the injected
clock's: the world's clock is frozen when the test starts and never moves here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from saml2 import class_name, samlp
from saml2.sigver import pre_signature_part
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

from idp.saml.saml_idp import (
    ALICE,
    IDP_ID,
    OTHER_SP_ID,
    SP_ID,
    Request,
    World,
    decode,
    encode,
    saml_subject,
)
from stepup.adapters.idp.saml import SAMLReason

pytestmark = pytest.mark.saml

Change = Callable[[Any, Any], None]  # (response, assertion) -> None


def begin(world: World) -> Request:
    return world.idp.receive(world.sp.start(saml_subject(), return_to="/x").url)


def signed_after(world: World, request: Request, change: Change, *, sign: str = "assertion") -> str:
    """The IdP's answer to ``request`` for ALICE changed by ``change``, then signed with
    the IdP's key: the assertion only, or (``sign="response"``) the response only."""
    unsigned = world.idp.answer(request, ALICE, sign_response=False, sign_assertion=False)
    response = samlp.response_from_string(decode(unsigned))
    change(response, response.assertion[0])
    element = response.assertion[0] if sign == "assertion" else response
    security = world.idp.server.sec
    element.signature = pre_signature_part(
        element.id, security.my_cert, 1, digest_alg=DIGEST_SHA256, sign_alg=SIG_RSA_SHA256
    )
    xml = security.sign_statement(str(response), class_name(element), node_id=element.id)
    return encode(xml if isinstance(xml, str) else xml.decode("utf-8"))


def still_pending(world: World, request: Request) -> bool:
    """True if the honest answer to ``request`` is still accepted (nothing consumed it)."""
    return world.sp.complete(saml_subject(), world.idp.answer(request, ALICE)).ok


def unchanged(response: Any, assertion: Any) -> None:
    pass


def written(seconds: float) -> str:
    """``seconds`` as an IdP writes an instant: whole seconds, UTC."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize("sign", ["assertion", "response"])
def test_the_forging_helper_signs_what_the_sp_accepts(world: World, sign: str) -> None:
    request = begin(world)
    outcome = world.sp.complete(saml_subject(), signed_after(world, request, unchanged, sign=sign))
    assert outcome.ok, outcome


# The NameID, exactly as written ---------------------------------------------------------


@pytest.mark.parametrize(
    "name_id",
    [f" {ALICE}\n", f"{ALICE} ", f"\t{ALICE}", f"\n{ALICE}\n", f"{ALICE}\u00a0"],
    ids=["space_newline", "trailing_space", "tab", "newlines", "nbsp"],
)
def test_a_name_id_that_differs_by_whitespace_is_another_subject(
    world: World, name_id: str
) -> None:
    """The IdP's genuine, signed answer for ``name_id``: the first four were ``ok``."""
    request = begin(world)
    outcome = world.sp.complete(saml_subject(), world.idp.answer(request, name_id))
    assert not outcome.ok
    assert (outcome.reason, outcome.detail) == (SAMLReason.WRONG_SUBJECT, "name_id")
    assert outcome.return_to == "/x"  # the request was this session's: it is used up


@pytest.mark.parametrize("text", ["", "   "], ids=["empty", "blank"])
def test_an_empty_name_id_is_still_refused(world: World, text: str) -> None:
    def change(response: Any, assertion: Any) -> None:
        assertion.subject.name_id.text = text

    request = begin(world)
    outcome = world.sp.complete(saml_subject(), signed_after(world, request, change))
    assert (outcome.reason, outcome.detail) == (SAMLReason.WRONG_SUBJECT, "name_id")


def test_the_session_name_id_is_still_accepted(world: World) -> None:
    request = begin(world)
    assert world.sp.complete(saml_subject(), world.idp.answer(request, ALICE)).ok


# SPNameQualifier -------------------------------------------------------------------------


def qualified(**attributes: str) -> Change:
    def change(response: Any, assertion: Any) -> None:
        for name, value in attributes.items():
            setattr(assertion.subject.name_id, name, value)

    return change


@pytest.mark.parametrize(
    "value",
    [OTHER_SP_ID, "urn:example:affiliation", f" {SP_ID}", f"{SP_ID}/", SP_ID.upper()],
    ids=["other_sp", "an_affiliation", "padded", "longer", "other_case"],
)
def test_a_name_id_qualified_for_another_sp_is_refused(world: World, value: str) -> None:
    """SAML core 2.2.2: the id another SP (or an affiliation this one is not configured
    with) knows the person by. Every one of these was ``ok``."""
    request = begin(world)
    forged = signed_after(world, request, qualified(sp_name_qualifier=value))
    assert "SPNameQualifier=" in decode(forged)
    outcome = world.sp.complete(saml_subject(), forged)
    assert not outcome.ok
    assert (outcome.reason, outcome.detail) == (SAMLReason.WRONG_SUBJECT, "sp_name_qualifier")
    assert outcome.return_to == "/x"


def test_a_name_id_qualified_for_this_sp_is_accepted(world: World) -> None:
    request = begin(world)
    change = qualified(name_qualifier=IDP_ID, sp_name_qualifier=SP_ID)
    outcome = world.sp.complete(saml_subject(), signed_after(world, request, change))
    assert outcome.ok, outcome


@pytest.mark.parametrize("value", [f" {IDP_ID}", f"{IDP_ID}\n"], ids=["leading", "trailing"])
def test_a_name_qualifier_is_compared_as_written(world: World, value: str) -> None:
    """Like the NameID's text: the IdP's entity id with whitespace around it is another
    qualifier (both were ``ok``)."""
    request = begin(world)
    outcome = world.sp.complete(
        saml_subject(), signed_after(world, request, qualified(name_qualifier=value))
    )
    assert (outcome.reason, outcome.detail) == (SAMLReason.WRONG_SUBJECT, "name_qualifier")


# IssueInstant ---------------------------------------------------------------------------


def issued(at: Callable[[World], float], *, of: str) -> Callable[[World], Change]:
    """A change that sets the ``IssueInstant`` of the assertion, the response or both
    (``of``) to ``at(world)``, written as an IdP writes it."""

    def for_world(world: World) -> Change:
        def change(response: Any, assertion: Any) -> None:
            value = written(at(world))
            if of in ("assertion", "both"):
                assertion.issue_instant = value
            if of in ("response", "both"):
                response.issue_instant = value

        return change

    return for_world


def skew(world: World) -> float:
    return float(world.config.max_skew)


def request_second(world: World) -> float:
    """The request was issued at the world's (frozen) clock; IdPs write whole seconds."""
    return math.floor(world.clock())


WHOSE = ["assertion", "response", "both"]


@pytest.mark.parametrize("of", WHOSE)
@pytest.mark.parametrize("sign", ["assertion", "response"])
@pytest.mark.parametrize(
    ("at", "detail"),
    [
        (lambda w: request_second(w) - 365 * 86_400, "issue_instant_before_request"),
        (lambda w: request_second(w) - skew(w) - 1, "issue_instant_before_request"),
        (lambda w: request_second(w) + 365 * 86_400, "issue_instant_in_future"),
        (lambda w: request_second(w) + skew(w) + 1, "issue_instant_in_future"),
    ],
    ids=["a_year_before", "just_before", "a_year_ahead", "just_ahead"],
)
def test_an_answer_issued_outside_the_request_window_is_refused(
    world: World, at: Callable[[World], float], detail: str, of: str, sign: str
) -> None:
    """The reviewer's forgeries (a year either way) were ``ok``. The window runs from
    the request's second less ``max_skew`` to now plus ``max_skew``."""
    request = begin(world)
    forged = signed_after(world, request, issued(at, of=of)(world), sign=sign)
    outcome = world.sp.complete(saml_subject(), forged)
    assert not outcome.ok
    assert (outcome.reason, outcome.detail) == (SAMLReason.INVALID_CONDITIONS, detail)
    assert outcome.return_to == "/x"  # judged after the request was taken: used up


@pytest.mark.parametrize("of", WHOSE)
@pytest.mark.parametrize(
    "at",
    [lambda w: request_second(w) - skew(w), lambda w: request_second(w) + skew(w)],
    ids=["earliest", "latest"],
)
def test_an_answer_issued_at_the_edges_of_the_window_is_accepted(
    world: World, at: Callable[[World], float], of: str
) -> None:
    request = begin(world)
    outcome = world.sp.complete(
        saml_subject(), signed_after(world, request, issued(at, of=of)(world))
    )
    assert outcome.ok, outcome


def test_the_window_starts_at_the_request_not_at_the_answer(world: World) -> None:
    """An answer posted a while after its request may have been issued any time since
    the request; one issued before its request is refused however recent it is."""
    first_request = request_second(world)
    request = begin(world)
    world.clock.advance(120)  # the person took two minutes at the IdP
    since = issued(lambda w: first_request + 30, of="both")(world)  # 90 s ago
    assert world.sp.complete(saml_subject(), signed_after(world, request, since)).ok
    second = begin(world)  # issued now, two minutes after the first
    before = issued(lambda w: request_second(w) - skew(w) - 1, of="assertion")(world)
    outcome = world.sp.complete(saml_subject(), signed_after(world, second, before))
    assert (outcome.reason, outcome.detail) == (
        SAMLReason.INVALID_CONDITIONS,
        "issue_instant_before_request",
    )


@pytest.mark.parametrize("sign", ["assertion", "response"])
@pytest.mark.parametrize("of", ["assertion", "response"])
@pytest.mark.parametrize(
    ("value", "detail"),
    [("yesterday", "time"), ("2026-13-01T00:00:00Z", "time"), (None, "issue_instant")],
    ids=["words", "no_such_month", "missing"],
)
def test_a_malformed_or_missing_issue_instant_is_malformed_and_consumes_nothing(
    world: World, value: str | None, detail: str, of: str, sign: str
) -> None:
    """Before the signatures are checked: a signed element's was ``invalid_signature``
    (pysaml2's schema check), an unsigned response's ``ok``."""

    def change(response: Any, assertion: Any) -> None:
        (assertion if of == "assertion" else response).issue_instant = value

    request = begin(world)
    forged = signed_after(world, request, change, sign=sign)
    if value is None:
        assert decode(forged).count("IssueInstant=") == 1  # the other one's only
    outcome = world.sp.complete(saml_subject(), forged)
    assert not outcome.ok
    assert (outcome.reason, outcome.detail) == (SAMLReason.MALFORMED, detail)
    assert outcome.return_to is None
    assert still_pending(world, request)
