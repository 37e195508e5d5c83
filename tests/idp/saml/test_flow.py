"""The round trip through a real pysaml2 IdP: what is asked, what comes back."""

from __future__ import annotations

import math
import time
from dataclasses import replace
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from saml2.saml import AUTHN_PASSWORD, AUTHN_PASSWORD_PROTECTED
from saml2.server import Server

from idp.saml.saml_idp import (
    ALICE,
    RSA_SHA256,
    KeyPair,
    TestIdP,
    World,
    make_config,
    saml_subject,
)
from stepup.adapters.idp.saml import SAMLReason, SAMLServiceProvider
from stepup.adapters.storage import MemoryStore
from stepup.errors import MalformedInputError
from stepup.testing import SettableClock
from stepup.transactions import transaction_digest

pytestmark = pytest.mark.saml

MFA = "https://refeds.org/profile/mfa"


def test_happy_path_proves_a_fresh_login(world: World) -> None:
    subject = saml_subject()
    redirect = world.sp.start(subject, return_to="/settings/api-keys", action="api_key.read")
    request = world.idp.receive(redirect.url)
    outcome = world.sp.complete(subject, world.idp.answer(request, ALICE), request.relay_state)

    assert outcome.ok
    assert outcome.reason is SAMLReason.OK
    assert outcome.method == "saml"
    assert outcome.return_to == "/settings/api-keys"
    assert outcome.action == "api_key.read"
    assert outcome.authn_context == AUTHN_PASSWORD_PROTECTED
    assert outcome.authn_instant is not None
    assert abs(outcome.authn_instant - world.clock()) < 5
    assert redirect.expires_at == world.clock() + world.config.challenge_ttl


def test_the_request_forces_a_login_and_is_signed(world: World) -> None:
    redirect = world.sp.start(saml_subject(), return_to="/")
    query = parse_qs(urlsplit(redirect.url).query)
    assert query["SigAlg"] == [RSA_SHA256]
    assert "Signature" in query
    # The IdP requires signed requests: parsing succeeded, so the signature verified.
    request = world.idp.receive(redirect.url)
    assert request.force_authn
    assert request.id == redirect.request_id
    assert request.relay_state == redirect.request_id
    assert request.requested_contexts == []
    assert request.message.assertion_consumer_service_url == world.config.acs_url


def test_the_request_signature_covers_the_relay_state(world: World) -> None:
    redirect = world.sp.start(saml_subject(), return_to="/")
    forged = redirect.url.replace(f"RelayState={redirect.request_id}", "RelayState=_other")
    assert forged != redirect.url
    with pytest.raises(Exception, match="not signed correctly"):
        world.idp.receive(forged)


def test_every_request_has_a_new_id(world: World) -> None:
    ids = {world.sp.start(saml_subject(), return_to="/").request_id for _ in range(20)}
    assert len(ids) == 20


def test_requested_authn_context_is_sent_and_enforced(world: World) -> None:
    subject = saml_subject()
    redirect = world.sp.start(subject, return_to="/", authn_context=[MFA])
    request = world.idp.receive(redirect.url)
    assert request.requested_contexts == [MFA]
    met = world.sp.complete(subject, world.idp.answer(request, ALICE, class_ref=MFA))
    assert met.ok
    assert met.authn_context == MFA

    redirect = world.sp.start(subject, return_to="/", authn_context=MFA)
    request = world.idp.receive(redirect.url)
    weaker = world.idp.answer(request, ALICE, class_ref=AUTHN_PASSWORD)
    outcome = world.sp.complete(subject, weaker)
    assert outcome.reason is SAMLReason.AUTHN_CONTEXT_NOT_MET
    assert outcome.authn_context == AUTHN_PASSWORD
    assert outcome.return_to == "/"


def test_configured_authn_context_is_the_default(
    keys: dict[str, KeyPair], idp_server: Server
) -> None:
    store, clock = MemoryStore(), SettableClock(time.time())
    sp = SAMLServiceProvider(make_config(keys, authn_context=(MFA,)), store, clock=clock)
    idp = TestIdP(idp_server)
    subject = saml_subject()
    request = idp.receive(sp.start(subject, return_to="/").url)
    assert request.requested_contexts == [MFA]
    assert sp.complete(subject, idp.answer(request, ALICE)).reason is (
        SAMLReason.AUTHN_CONTEXT_NOT_MET
    )
    # A caller may ask for something else for one action.
    request = idp.receive(sp.start(subject, return_to="/", authn_context=()).url)
    assert request.requested_contexts == []
    assert sp.complete(subject, idp.answer(request, ALICE)).ok


def test_an_idp_that_ignores_force_authn_is_caught(world: World) -> None:
    subject = saml_subject()
    world.idp.log_in(ALICE, at=time.time() - 3600)  # signed in at the IdP an hour ago
    request = world.idp.receive(world.sp.start(subject, return_to="/").url)
    assert request.force_authn
    response = world.idp.answer(request, ALICE, honour_force_authn=False)
    outcome = world.sp.complete(subject, response)
    assert outcome.reason is SAMLReason.STALE_AUTHN_INSTANT
    assert not outcome
    assert outcome.authn_instant is not None
    assert outcome.authn_instant < world.clock() - 3000
    assert outcome.return_to == "/"


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(offset=st.integers(min_value=-400, max_value=30))
@example(offset=-60)
@example(offset=-61)
def test_authn_instant_may_precede_the_request_by_the_skew_only(
    keys: dict[str, KeyPair], idp_server: Server, offset: int
) -> None:
    clock = SettableClock(float(int(time.time())))  # whole seconds, like AuthnInstant
    sp = SAMLServiceProvider(make_config(keys, max_skew=60), MemoryStore(), clock=clock)
    idp = TestIdP(idp_server)
    subject = saml_subject()
    request = idp.receive(sp.start(subject, return_to="/").url)
    idp.log_in(ALICE, at=clock() + offset)
    outcome = sp.complete(subject, idp.answer(request, ALICE, honour_force_authn=False))
    expected = SAMLReason.OK if offset >= -60 else SAMLReason.STALE_AUTHN_INSTANT
    assert outcome.reason is expected


@pytest.mark.parametrize(
    ("fraction", "login_offset", "expected"),
    [
        (0.75, 0, SAMLReason.OK),  # same whole second as the request, just after it
        (0.999, 0, SAMLReason.OK),
        (0.0, 0, SAMLReason.OK),
        (0.75, -1, SAMLReason.STALE_AUTHN_INSTANT),  # the second before: before the request
        (0.0, -1, SAMLReason.STALE_AUTHN_INSTANT),
    ],
)
def test_whole_second_authn_instant_is_compared_at_its_resolution_at_skew_0(
    keys: dict[str, KeyPair],
    idp_server: Server,
    fraction: float,
    login_offset: int,
    expected: SAMLReason,
) -> None:
    """AuthnInstant comes in whole seconds (as from SimpleSAMLphp): a login in the same
    second as a request made at a fraction of it is after the request, not stale."""
    second = math.floor(time.time()) - 5  # a moment ago, so nothing is in the future
    clock = SettableClock(second + fraction)
    sp = SAMLServiceProvider(make_config(keys, max_skew=0), MemoryStore(), clock=clock)
    idp = TestIdP(idp_server)
    subject = saml_subject()
    request = idp.receive(sp.start(subject, return_to="/").url)
    idp.log_in(ALICE, at=second + login_offset)
    response = idp.answer(request, ALICE, honour_force_authn=False)
    clock.set(time.time())  # the answer arrives now: its validity window is the IdP's real time
    outcome = sp.complete(subject, response)
    assert outcome.reason is expected, outcome
    assert outcome.authn_instant == second + login_offset


@pytest.mark.parametrize(
    ("sign_response", "sign_assertion"), [(True, False), (False, True), (True, True)]
)
def test_either_signature_is_enough(
    world: World, sign_response: bool, sign_assertion: bool
) -> None:
    subject = saml_subject()
    request = world.idp.receive(world.sp.start(subject, return_to="/").url)
    response = world.idp.answer(
        request, ALICE, sign_response=sign_response, sign_assertion=sign_assertion
    )
    assert world.sp.complete(subject, response).ok


def test_unsigned_requests_work_when_not_configured_to_sign(
    keys: dict[str, KeyPair], idp_server: Server
) -> None:
    config = make_config(keys, sign_requests=False, sp_key_file=None, sp_cert_file=None)
    sp = SAMLServiceProvider(config, MemoryStore(), clock=SettableClock(time.time()))
    url = sp.start(saml_subject(), return_to="/").url
    assert "Signature" not in parse_qs(urlsplit(url).query)
    # Our test IdP demands signed requests, as IdPs may: it refuses this one.
    with pytest.raises(Exception, match="signed"):
        TestIdP(idp_server).receive(url)


EU = transaction_digest("workspace.destroy", {"workspace": "prod-eu"})
US = transaction_digest("workspace.destroy", {"workspace": "prod-us"})


def test_each_request_hands_back_its_own_transaction(world: World) -> None:
    """Two requests in one session (two tabs): each outcome carries the digest its own
    start was given, whichever started last."""
    subject = saml_subject()
    eu = world.sp.start(subject, return_to="/", action="workspace.destroy", transaction=EU)
    us = world.sp.start(subject, return_to="/", action="workspace.destroy", transaction=US)
    plain = world.sp.start(subject, return_to="/", action="workspace.destroy")
    found = []
    for redirect in (eu, us, plain):
        request = world.idp.receive(redirect.url)
        answer = world.idp.answer(request, ALICE)
        outcome = world.sp.complete(subject, answer, request.relay_state)
        found.append((outcome.reason, outcome.action, outcome.transaction))
    assert found == [
        (SAMLReason.OK, "workspace.destroy", EU),
        (SAMLReason.OK, "workspace.destroy", US),
        (SAMLReason.OK, "workspace.destroy", ""),
    ]


@pytest.mark.parametrize("stored", [None, "not a digest", 42])
def test_a_request_stored_without_a_valid_transaction_reads_as_none(
    world: World, stored: object
) -> None:
    """A request kept before transactions rode with it has no key; a mangled one
    confirms nothing either."""
    subject = saml_subject()
    redirect = world.sp.start(subject, return_to="/", action="workspace.destroy", transaction=EU)
    challenge = world.store.take_challenge(redirect.request_id, 0.0)
    assert challenge is not None
    assert challenge.data["transaction"] == EU
    data = {k: v for k, v in challenge.data.items() if k != "transaction"}
    if stored is not None:
        data["transaction"] = stored
    world.store.put_challenge(replace(challenge, data=data))
    request = world.idp.receive(redirect.url)
    outcome = world.sp.complete(subject, world.idp.answer(request, ALICE), request.relay_state)
    assert (outcome.reason, outcome.transaction) == (SAMLReason.OK, "")


@pytest.mark.parametrize("bad", ["abc", EU.upper(), EU + "0", " " + EU, 42, None])
def test_a_malformed_transaction_is_refused_at_start(world: World, bad: object) -> None:
    with pytest.raises(MalformedInputError, match="transaction"):
        world.sp.start(saml_subject(), return_to="/", transaction=bad)  # type: ignore[arg-type]


def test_each_request_hands_back_its_own_suspended_form(world: World) -> None:
    """Two requests in one session (two tabs), each for a suspended form: each outcome
    carries the token its own start was given, whichever started last."""
    subject = saml_subject()
    first = world.sp.start(subject, return_to="/", action="api_key.regenerate", resume="tab-a")
    second = world.sp.start(subject, return_to="/", action="api_key.regenerate", resume="tab-b")
    plain = world.sp.start(subject, return_to="/", action="api_key.regenerate")
    found = []
    for redirect in (first, second, plain):
        request = world.idp.receive(redirect.url)
        answer = world.idp.answer(request, ALICE)
        outcome = world.sp.complete(subject, answer, request.relay_state)
        assert "tab-" not in repr(outcome)
        found.append((outcome.reason, outcome.resume))
    assert found == [(SAMLReason.OK, "tab-a"), (SAMLReason.OK, "tab-b"), (SAMLReason.OK, "")]


@pytest.mark.parametrize("stored", [None, "not a token", 42])
def test_a_request_stored_without_a_valid_resume_token_reads_as_none(
    world: World, stored: object
) -> None:
    subject = saml_subject()
    redirect = world.sp.start(subject, return_to="/", action="api_key.regenerate", resume="t")
    challenge = world.store.take_challenge(redirect.request_id, 0.0)
    assert challenge is not None
    assert challenge.data["resume"] == "t"
    data = {k: v for k, v in challenge.data.items() if k != "resume"}
    if stored is not None:
        data["resume"] = stored
    world.store.put_challenge(replace(challenge, data=data))
    request = world.idp.receive(redirect.url)
    outcome = world.sp.complete(subject, world.idp.answer(request, ALICE), request.relay_state)
    assert (outcome.reason, outcome.resume) == (SAMLReason.OK, "")


@pytest.mark.parametrize("bad", ["a b", "x" * 65, "é", 42, None])
def test_a_malformed_resume_token_is_refused_at_start(world: World, bad: object) -> None:
    with pytest.raises(MalformedInputError, match="resume"):
        world.sp.start(saml_subject(), return_to="/", resume=bad)  # type: ignore[arg-type]
