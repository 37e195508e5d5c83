"""SAML: a RequestedAuthnContext goes out with Comparison="minimum" unless configured
otherwise (SAML core 3.3.2.2.1), and whatever the comparison, the answer's
AuthnContextClassRef must be one of the requested references: "minimum" lets the IdP
pick a stronger class, never lets a weaker one, or an unrequested one, through."""

from __future__ import annotations

import pytest
from saml2.saml import AUTHN_PASSWORD_PROTECTED

from idp.saml.saml_idp import ALICE, KeyPair, World, make_config, saml_subject
from stepup.adapters.idp.saml import SAMLReason, SAMLServiceProvider

pytestmark = pytest.mark.saml

MFA = "https://refeds.org/profile/mfa"
PHR = "urn:example:phishing-resistant"


def test_the_default_comparison_is_minimum(world: World) -> None:
    subject = saml_subject()
    request = world.idp.receive(world.sp.start(subject, return_to="/", authn_context=(MFA,)).url)
    assert request.requested_contexts == [MFA]
    assert request.message.requested_authn_context.comparison == "minimum"


def test_the_configured_default_contexts_go_out_with_minimum(
    world: World, keys: dict[str, KeyPair]
) -> None:
    sp = SAMLServiceProvider(
        make_config(keys, authn_context=(PHR, MFA)), world.store, clock=world.clock
    )
    request = world.idp.receive(sp.start(saml_subject(), return_to="/").url)
    assert request.requested_contexts == [PHR, MFA]
    assert request.message.requested_authn_context.comparison == "minimum"


def test_exact_can_still_be_asked_for(world: World, keys: dict[str, KeyPair]) -> None:
    sp = SAMLServiceProvider(
        make_config(keys, authn_comparison="exact"), world.store, clock=world.clock
    )
    request = world.idp.receive(sp.start(saml_subject(), return_to="/", authn_context=MFA).url)
    assert request.message.requested_authn_context.comparison == "exact"


def test_no_context_asked_sends_no_requested_authn_context(world: World) -> None:
    request = world.idp.receive(world.sp.start(saml_subject(), return_to="/").url)
    assert request.message.requested_authn_context is None


@pytest.mark.parametrize(
    ("answered", "reason"),
    [
        (MFA, SAMLReason.OK),  # one of those asked for
        (AUTHN_PASSWORD_PROTECTED, SAMLReason.AUTHN_CONTEXT_NOT_MET),  # weaker
        (PHR, SAMLReason.AUTHN_CONTEXT_NOT_MET),  # stronger, but not asked for
    ],
)
def test_with_minimum_only_a_requested_class_is_accepted(
    world: World, answered: str, reason: SAMLReason
) -> None:
    """The response side judges the class against the stored request, not against the
    comparison: the IdP's reading of "minimum" cannot make a weaker class pass."""
    subject = saml_subject()
    request = world.idp.receive(world.sp.start(subject, return_to="/", authn_context=MFA).url)
    assert request.message.requested_authn_context.comparison == "minimum"
    outcome = world.sp.complete(subject, world.idp.answer(request, ALICE, class_ref=answered))
    assert outcome.reason is reason
    assert outcome.authn_context == answered
