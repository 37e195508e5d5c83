"""Two SAML rules the IdP's signature does not enforce for us (review 3, issue 5).

- SAML profiles 4.1.4.2: a bearer ``SubjectConfirmationData`` MUST NOT contain a
  ``NotBefore`` attribute. One that did was accepted as long as the time had come; it
  is now no confirmation at all (``invalid_conditions``,
  ``subject_confirmation_not_before`` when that is all it lacks), while another bearer
  confirmation that holds still suffices (profiles 4.1.4.3 allows several).
- SAML core 2.3.3: an assertion's ``Version`` is ``"2.0"``, and a message of a version
  this side does not support is refused (4.1, 4.2). Only the response's version was
  checked: an assertion saying ``Version="1.1"`` was accepted. It is now ``malformed``
  (``version``), and, like every malformed answer, consumes nothing.

The forgeries are the real pysaml2 IdP's unsigned answer, changed, then signed with the
IdP's own key, as a compromised or buggy IdP would send them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from saml2 import class_name, samlp
from saml2.saml import subject_confirmation_from_string
from saml2.sigver import pre_signature_part
from saml2.time_util import instant
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

from idp.saml.saml_idp import ALICE, Request, World, decode, encode, saml_subject
from stepup.adapters.idp.saml import SAMLReason

pytestmark = pytest.mark.saml


def begin(world: World) -> Request:
    return world.idp.receive(world.sp.start(saml_subject(), return_to="/x").url)


def signed_after(world: World, request: Request, change: Callable[[Any], None]) -> str:
    """The IdP's answer to ``request`` for ALICE with its assertion changed by
    ``change``, then signed (the assertion only) with the IdP's key."""
    unsigned = world.idp.answer(request, ALICE, sign_response=False, sign_assertion=False)
    response = samlp.response_from_string(decode(unsigned))
    assertion = response.assertion[0]
    change(assertion)
    security = world.idp.server.sec
    assertion.signature = pre_signature_part(
        assertion.id, security.my_cert, 1, digest_alg=DIGEST_SHA256, sign_alg=SIG_RSA_SHA256
    )
    xml = security.sign_statement(str(response), class_name(assertion), node_id=assertion.id)
    return encode(xml if isinstance(xml, str) else xml.decode("utf-8"))


def still_pending(world: World, request: Request) -> bool:
    """True if the honest answer to ``request`` is still accepted (nothing consumed it)."""
    return world.sp.complete(saml_subject(), world.idp.answer(request, ALICE)).ok


def unchanged(assertion: Any) -> None:
    pass


def test_the_forging_helper_signs_what_the_sp_accepts(world: World) -> None:
    """Without a change, the re-signed answer is an honest one: ``ok``."""
    request = begin(world)
    outcome = world.sp.complete(saml_subject(), signed_after(world, request, unchanged))
    assert outcome.ok, outcome


# NotBefore on a bearer confirmation -----------------------------------------------------


def confirmations(assertion: Any) -> list[Any]:
    return list(assertion.subject.subject_confirmation)


def bearer(count: int, *not_before: int) -> Callable[[Any], None]:
    """``count`` copies of the IdP's one bearer confirmation, those at the positions
    ``not_before`` given ``NotBefore`` = now."""

    def change(assertion: Any) -> None:
        first = confirmations(assertion)[0]
        for _ in range(count - 1):
            copy = subject_confirmation_from_string(str(first))
            assertion.subject.subject_confirmation.append(copy)
        for index in not_before:
            confirmations(assertion)[index].subject_confirmation_data.not_before = instant()
        assert len(confirmations(assertion)) == count

    return change


@pytest.mark.parametrize(
    "change", [bearer(1, 0), bearer(2, 0, 1)], ids=["the_one", "every_one_of_two"]
)
def test_a_bearer_confirmation_with_not_before_is_refused(
    world: World, change: Callable[[Any], None]
) -> None:
    """The reviewer's forgery (``the_one``) was ``ok``."""
    request = begin(world)
    outcome = world.sp.complete(saml_subject(), signed_after(world, request, change))
    assert not outcome.ok
    assert (outcome.reason, outcome.detail) == (
        SAMLReason.INVALID_CONDITIONS,
        "subject_confirmation_not_before",
    )
    assert outcome.return_to == "/x"  # the request was this session's: consumed, as before


def test_not_before_in_the_past_is_refused_too(world: World) -> None:
    def change(assertion: Any) -> None:
        data = confirmations(assertion)[0].subject_confirmation_data
        data.not_before = assertion.issue_instant  # the moment the IdP issued it

    request = begin(world)
    world.clock.advance(30)
    outcome = world.sp.complete(saml_subject(), signed_after(world, request, change))
    assert (outcome.reason, outcome.detail) == (
        SAMLReason.INVALID_CONDITIONS,
        "subject_confirmation_not_before",
    )


@pytest.mark.parametrize("change", [bearer(2, 0), bearer(2, 1)], ids=["first", "second"])
def test_another_bearer_confirmation_that_holds_still_suffices(
    world: World, change: Callable[[Any], None]
) -> None:
    """Profiles 4.1.4.3: one bearer confirmation that holds is enough; the one that
    carries ``NotBefore`` (first or second) is not counted."""
    request = begin(world)
    outcome = world.sp.complete(saml_subject(), signed_after(world, request, change))
    assert outcome.ok, outcome


def test_a_confirmation_for_another_recipient_keeps_its_detail(world: World) -> None:
    """What is wrong besides ``NotBefore`` is named as before."""

    def change(assertion: Any) -> None:
        data = confirmations(assertion)[0].subject_confirmation_data
        data.recipient = "https://elsewhere.example/acs"
        data.not_before = instant()

    request = begin(world)
    outcome = world.sp.complete(saml_subject(), signed_after(world, request, change))
    assert (outcome.reason, outcome.detail) == (
        SAMLReason.INVALID_CONDITIONS,
        "subject_confirmation",
    )


# the assertion's Version ----------------------------------------------------------------


@pytest.mark.parametrize("version", ["1.1", "1.0", "2.1", "3.0", "2.0 ", None])
def test_an_assertion_of_another_version_is_malformed_and_consumes_nothing(
    world: World, version: str | None
) -> None:
    """``1.1`` was ``ok``. (``None``: no ``Version`` attribute at all.)"""

    def change(assertion: Any) -> None:
        assertion.version = version

    request = begin(world)
    forged = signed_after(world, request, change)
    if version is None:
        assert 'Version="2.0"' in decode(forged)  # the response's; the assertion has none
        assert decode(forged).count("Version=") == 1
    outcome = world.sp.complete(saml_subject(), forged)
    assert not outcome.ok
    assert (outcome.reason, outcome.detail) == (SAMLReason.MALFORMED, "version")
    assert outcome.return_to is None
    assert still_pending(world, request)
