"""SAML levels of assurance against the real pysaml2 IdP: the request names every
AuthnContextClassRef that reaches the level with comparison "minimum"; a weaker
assertion is AUTHN_CONTEXT_NOT_MET; the one that reaches it proves the level."""

from __future__ import annotations

import time

import pytest
from saml2.saml import AUTHN_PASSWORD_PROTECTED
from saml2.server import Server

from idp.saml.saml_idp import ALICE, KeyPair, TestIdP, make_config, saml_subject
from stepup.adapters.idp.saml import SAMLReason, SAMLServiceProvider
from stepup.adapters.storage import MemoryStore
from stepup.assurance import Level, Levels
from stepup.errors import ConfigurationError
from stepup.policy import Policy, Rule, Sensitivity
from stepup.reauth import Reauth
from stepup.records import Tenant
from stepup.testing import SettableClock

pytestmark = pytest.mark.saml

MFA = "https://refeds.org/profile/mfa"
PHR = "urn:example:phishing-resistant"
LEVELS = Levels(
    (
        Level("password", saml=(AUTHN_PASSWORD_PROTECTED,), methods=(("pwd",),)),
        Level("mfa", saml=(MFA,), methods=(("pwd", "otp"),)),
        Level("phishing_resistant", saml=(PHR,), methods=(("phr",),)),
    )
)


def test_a_level_is_requested_with_minimum_and_checked(
    keys: dict[str, KeyPair], idp_server: Server
) -> None:
    clock = SettableClock(time.time())
    store = MemoryStore()
    store.put_tenant(Tenant("t", {"feature_flags": {"sensitive_actions_reauth": True}}))
    sp = SAMLServiceProvider(make_config(keys, authn_comparison="minimum"), store, clock=clock)
    policy = Policy(
        {"billing.pay": Rule(Sensitivity.SENSITIVE, methods=frozenset({"saml"}), level="mfa")},
        levels=LEVELS,
    )
    reauth = Reauth(store, policy, clock=clock)
    idp = TestIdP(idp_server)
    subject = saml_subject()

    decision = reauth.check(subject, "billing.pay", "t")
    assert not decision.ok
    assert decision.level == "mfa"  # type: ignore[union-attr]
    wanted = LEVELS.saml_class_refs("mfa")
    assert wanted == (PHR, MFA)  # the most preferred first (SAML core 3.3.2.2.1)

    request = idp.receive(sp.start(subject, return_to="/", authn_context=wanted).url)
    assert request.requested_contexts == [PHR, MFA]
    assert request.message.requested_authn_context.comparison == "minimum"
    weaker = sp.complete(subject, idp.answer(request, ALICE, class_ref=AUTHN_PASSWORD_PROTECTED))
    assert weaker.reason is SAMLReason.AUTHN_CONTEXT_NOT_MET  # its own typed reason

    request = idp.receive(sp.start(subject, return_to="/", authn_context=wanted).url)
    met = sp.complete(subject, idp.answer(request, ALICE, class_ref=PHR))
    assert met.ok
    level = LEVELS.for_saml(met.authn_context)
    assert level == "phishing_resistant"
    reauth.record(subject, ["saml"], authenticated_at=met.authn_instant, level=level)
    assert reauth.check(subject, "billing.pay", "t").ok


def test_the_comparison_is_checked_at_start_up(keys: dict[str, KeyPair]) -> None:
    with pytest.raises(ConfigurationError, match="authn_comparison"):
        make_config(keys, authn_comparison="better")
