"""SAML level downgrades against the real pysaml2 IdP: an assertion proves a level only
through the one AuthnContextClassRef of its one signed AuthnStatement, and only a class
reference the request named counts."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
import saml2.saml
from saml2.assertion import Assertion
from saml2.saml import AUTHN_PASSWORD_PROTECTED, AuthnContextClassRef, AuthnContextDeclRef
from saml2.server import Server

from idp.saml.saml_idp import ALICE, KeyPair, TestIdP, decode, encode, make_config, saml_subject
from stepup.adapters.idp.saml import SAMLReason, SAMLServiceProvider
from stepup.adapters.storage import MemoryStore
from stepup.assurance import Level, Levels
from stepup.integrations.views import sso_answer
from stepup.policy import Policy, Rule, Sensitivity
from stepup.reauth import Reauth, ReauthRequired
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
POLICY = Policy(
    {"billing.pay": Rule(Sensitivity.SENSITIVE, lifetime=600.0, level="mfa")}, levels=LEVELS
)


class Setup:
    def __init__(self, keys: dict[str, KeyPair], idp_server: Server) -> None:
        self.clock = SettableClock(time.time())
        self.store = MemoryStore()
        self.store.put_tenant(Tenant("t", {"feature_flags": {"sensitive_actions_reauth": True}}))
        config = make_config(keys, authn_comparison="minimum")
        self.sp = SAMLServiceProvider(config, self.store, clock=self.clock)
        self.reauth = Reauth(self.store, POLICY, clock=self.clock)
        self.idp = TestIdP(idp_server)
        self.subject = saml_subject()

    def start(self) -> Any:
        decision = self.reauth.check(self.subject, "billing.pay", "t")
        assert isinstance(decision, ReauthRequired)
        wanted = LEVELS.saml_class_refs(decision.level)
        url = self.sp.start(self.subject, return_to="/", action="billing.pay", authn_context=wanted)
        return self.idp.receive(url.url)

    def finish(self, saml_response: str) -> Any:
        outcome = self.sp.complete(self.subject, saml_response)
        answer = sso_answer(outcome, False, POLICY)
        if answer.ok:
            self.reauth.record(
                self.subject,
                answer.methods,
                authenticated_at=answer.authenticated_at,
                level=answer.level,
            )
        return outcome

    def allowed(self) -> bool:
        return self.reauth.check(self.subject, "billing.pay", "t").ok


@pytest.fixture
def setup(keys: dict[str, KeyPair], idp_server: Server) -> Setup:
    return Setup(keys, idp_server)


@pytest.fixture
def extra_statement(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Class references of further AuthnStatements the IdP puts in (and signs)."""
    extra: list[str] = []
    construct = Assertion.construct

    def with_more(self: Assertion, *args: Any, **kwargs: Any) -> Any:
        assertion = construct(self, *args, **kwargs)
        first = assertion.authn_statement[0]
        for ref in extra:
            statement = saml2.saml.authn_statement_from_string(str(first))
            statement.authn_context.authn_context_class_ref = AuthnContextClassRef(text=ref)
            assertion.authn_statement.append(statement)
        return assertion

    monkeypatch.setattr(Assertion, "construct", with_more)
    return extra


@pytest.mark.parametrize(("first", "second"), [(AUTHN_PASSWORD_PROTECTED, MFA), (MFA, PHR)])
def test_several_authn_statements_are_malformed(
    setup: Setup, extra_statement: list[str], first: str, second: str
) -> None:
    extra_statement.append(second)
    request = setup.start()
    response = setup.idp.answer(request, ALICE, class_ref=first)
    assert len(re.findall(r"<[\w.-]+:AuthnStatement[ >]", decode(response))) == 2
    outcome = setup.finish(response)
    assert (outcome.reason, outcome.detail) == (SAMLReason.MALFORMED, "authn_statement")
    assert not setup.allowed()


def test_a_lower_class_ref_is_refused(setup: Setup) -> None:
    request = setup.start()
    outcome = setup.finish(setup.idp.answer(request, ALICE, class_ref=AUTHN_PASSWORD_PROTECTED))
    assert outcome.reason is SAMLReason.AUTHN_CONTEXT_NOT_MET
    assert not setup.allowed()


@pytest.mark.parametrize(
    "class_ref",
    [
        "urn:example:stronger-than-anything",  # not in the mapping: never a level
        MFA.upper(),
        MFA + "/",
        "urn:oasis:names:tc:SAML:2.0:ac:classes:unspecified",
    ],
)
def test_a_class_ref_the_request_did_not_name_is_refused(setup: Setup, class_ref: str) -> None:
    request = setup.start()
    outcome = setup.finish(setup.idp.answer(request, ALICE, class_ref=class_ref))
    assert outcome.reason is SAMLReason.AUTHN_CONTEXT_NOT_MET
    assert not setup.allowed()


def test_a_decl_ref_instead_of_a_class_ref_proves_nothing(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    construct = Assertion.construct

    def decl_only(self: Assertion, *args: Any, **kwargs: Any) -> Any:
        assertion = construct(self, *args, **kwargs)
        context = assertion.authn_statement[0].authn_context
        context.authn_context_class_ref = None
        context.authn_context_decl_ref = AuthnContextDeclRef(text=MFA)
        return assertion

    monkeypatch.setattr(Assertion, "construct", decl_only)
    request = setup.start()
    response = setup.idp.answer(request, ALICE, class_ref=MFA)
    assert "AuthnContextDeclRef" in decode(response)
    assert "AuthnContextClassRef" not in decode(response)
    outcome = setup.finish(response)
    assert outcome.reason is SAMLReason.AUTHN_CONTEXT_NOT_MET
    assert not setup.allowed()


@pytest.mark.parametrize("signed", ["response", "assertion", "both"])
def test_a_class_ref_raised_after_signing_breaks_the_signature(setup: Setup, signed: str) -> None:
    request = setup.start()
    response = setup.idp.answer(
        request,
        ALICE,
        class_ref=AUTHN_PASSWORD_PROTECTED,
        sign_response=signed in ("response", "both"),
        sign_assertion=signed in ("assertion", "both"),
    )
    xml = decode(response)
    assert xml.count(AUTHN_PASSWORD_PROTECTED) == 1
    outcome = setup.finish(encode(xml.replace(AUTHN_PASSWORD_PROTECTED, MFA)))
    assert outcome.reason is SAMLReason.INVALID_SIGNATURE
    assert not setup.allowed()


def test_a_tampered_comparison_changes_nothing(setup: Setup) -> None:
    """The request's comparison is the IdP's business; stepup checks the answer against
    the class references it stored, whatever the comparison became on the way."""
    request = setup.start()
    request.message.requested_authn_context.comparison = "maximum"
    outcome = setup.finish(setup.idp.answer(request, ALICE, class_ref=AUTHN_PASSWORD_PROTECTED))
    assert outcome.reason is SAMLReason.AUTHN_CONTEXT_NOT_MET
    assert not setup.allowed()


def test_the_level_asked_for_is_granted_and_lasts_the_rule_lifetime(setup: Setup) -> None:
    request = setup.start()
    outcome = setup.finish(setup.idp.answer(request, ALICE, class_ref=MFA))
    assert outcome.ok
    assert setup.allowed()
    grant = setup.store.get_grant(setup.subject.user_id, setup.subject.session_id)
    assert grant is not None
    assert (grant.methods, grant.level) == (frozenset({"saml"}), "mfa")
    setup.clock.advance(600)
    decision = setup.reauth.check(setup.subject, "billing.pay", "t")
    assert isinstance(decision, ReauthRequired)
    assert decision.stale
