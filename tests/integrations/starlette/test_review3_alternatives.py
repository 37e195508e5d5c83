"""Review 3: the re-auth page for every alternative a rule may offer (Starlette).

A rule that accepts TOTP alone (``("otp",)``, issue 15: "TOTP alone can satisfy a rule
that allows it") is offered to a user who has TOTP: the page shows the code field alone
and its POST checks the code (the same verification and throttle as the password form's
code) and records ``otp``. The page showed no form at all, and a posted code was a 400.

A rule naming a passkey together with another method (``("primary", "phr")``) could
never be satisfied on the pages (they ask for one alternative in one step, a passkey's
ceremony is a step of its own): the policy refuses it at start-up, in code, in a policy
file and through a level's method sets."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from integrations.starlette.starlette_support import Browser, TestApp, csrf_token, enrol, make_app
from stepup.adapters.storage.memory import MemoryStore
from stepup.assurance import Level, Levels
from stepup.errors import ConfigurationError
from stepup.events import ReauthFailed, ReauthSucceeded
from stepup.integrations.views import default_policy
from stepup.policy import Policy, Rule, Sensitivity
from stepup.testing import SettableClock
from stepup.totp import TOTP

VAULT = "vault.open"
#: TOTP alone, else the sign-in method: a user with TOTP is offered the code.
RULE = Rule(Sensitivity.SENSITIVE, always=True, accept=(("otp",), ("primary",)), description="x")


def _policy() -> Policy:
    return default_policy().extend({VAULT: RULE})


def _routes(stepup: Any) -> list[Route]:
    @stepup.requires_reauth(VAULT)
    async def vault(request: Request) -> Response:
        return PlainTextResponse("vault open")

    return [Route("/vault", vault)]


@pytest.fixture
def test_app(clock: SettableClock) -> TestApp:
    return make_app(clock=clock, store=MemoryStore(), policy=_policy(), extra_routes=_routes)


@pytest.fixture
def with_totp(test_app: TestApp) -> Iterator[tuple[Browser, TOTP]]:
    browser = test_app.browser()
    assert browser.login("alice").status_code == 303
    totp, _ = enrol(browser)
    yield browser, totp
    browser.close()


def _page(browser: Browser) -> tuple[str, str]:
    """The guard's 303 to the re-auth page, and that page."""
    asked = browser.get("/vault")
    assert asked.status_code == 303
    location = asked.headers["location"]
    page = browser.get(location)
    assert page.status_code == 200
    return location, page.text


def test_the_page_shows_the_code_field_alone(with_totp: tuple[Browser, TOTP]) -> None:
    browser, _ = with_totp
    location, html = _page(browser)
    form = re.search(r'<form method="post" action="([^"]+)">(.*?)</form>', html, re.S)
    assert form is not None, "no form on the page"
    assert form.group(1).replace("&amp;", "&") == location  # where the password form posts
    fields = form.group(2)
    assert '<label for="stepup-code">' in fields
    assert 'autocomplete="one-time-code"' in fields
    assert "autofocus" in fields
    assert 'name="password"' not in fields
    assert "Use a passkey" not in html


def test_the_code_alone_confirms(test_app: TestApp, with_totp: tuple[Browser, TOTP]) -> None:
    browser, totp = with_totp
    location, html = _page(browser)
    test_app.clock.advance(30)  # the enrolment's code is spent
    data = {"csrf_token": csrf_token(html), "code": totp.at(test_app.clock())}
    done = browser.post(location, data=data)
    assert done.status_code == 303, done.text
    assert done.headers["location"] == "/vault"
    assert browser.get("/vault").text == "vault open"
    succeeded = [e for e in test_app.events if isinstance(e, ReauthSucceeded)]
    assert [e.method for e in succeeded] == ["otp"]


@pytest.mark.parametrize(
    ("code", "status", "reason", "says"),
    [
        ("000000", 400, "invalid", "That code is not right"),
        ("enrolment", 400, "replayed", "That code was already used"),
    ],
)
def test_a_refused_code_is_answered_as_the_combined_form_does(
    test_app: TestApp,
    with_totp: tuple[Browser, TOTP],
    code: str,
    status: int,
    reason: str,
    says: str,
) -> None:
    browser, totp = with_totp
    location, html = _page(browser)
    if code == "enrolment":  # the code the enrolment was confirmed with, this same step
        code = totp.at(test_app.clock())
    refused = browser.post(location, data={"csrf_token": csrf_token(html), "code": code})
    assert refused.status_code == status
    assert says in refused.text
    assert 'aria-invalid="true"' in refused.text.split('id="stepup-code"', 1)[1].split(">", 1)[0]
    failed = [e for e in test_app.events if isinstance(e, ReauthFailed)]
    assert [(e.method, e.reason) for e in failed] == [("otp", reason)]
    assert browser.get("/vault").status_code == 303  # nothing recorded


def test_guessing_is_throttled(test_app: TestApp, with_totp: tuple[Browser, TOTP]) -> None:
    browser, totp = with_totp
    location, html = _page(browser)
    statuses = []
    for _ in range(5):
        answer = browser.post(location, data={"csrf_token": csrf_token(html), "code": "000000"})
        statuses.append(answer.status_code)
    assert statuses[-1] == 429
    assert "Too many attempts" in answer.text
    test_app.clock.advance(1)  # still paused: even the right code waits
    right = {"csrf_token": csrf_token(html), "code": totp.at(test_app.clock() + 30)}
    assert browser.post(location, data=right).status_code == 429


def test_a_user_without_totp_confirms_with_the_password(test_app: TestApp) -> None:
    browser = test_app.browser()
    assert browser.login("bob").status_code == 303
    location, html = _page(browser)
    assert 'name="password"' in html
    assert 'name="code"' not in html
    done = browser.reauth(location, "bob's long passphrase")
    assert done.status_code == 303
    assert browser.get("/vault").text == "vault open"
    browser.close()


def test_a_user_with_totp_is_not_let_in_by_the_password(
    test_app: TestApp, with_totp: tuple[Browser, TOTP]
) -> None:
    """The core offers the code to a user who has TOTP, and a password grant would not
    satisfy the rule for her: the page offers no other way, and a password posted to it
    is a refused code, recording nothing."""
    browser, _ = with_totp
    location, html = _page(browser)
    data = {"csrf_token": csrf_token(html), "password": "alice's long passphrase"}
    assert browser.post(location, data=data).status_code == 400
    assert browser.get("/vault").status_code == 303


# a passkey together with another method is refused at start-up ------------------------

_MIXED = [(("primary", "phr"),), (("otp", "phr"),), (("pwd", "hwk"), ("otp", "swk"))]


@pytest.mark.parametrize("accept", _MIXED)
def test_a_passkey_with_another_method_is_refused_in_code(accept: Any) -> None:
    rule = Rule(Sensitivity.SENSITIVE, accept=accept)
    with pytest.raises(ConfigurationError, match=r"vault\.mix: accept names .*passkey"):
        default_policy().extend({"vault.mix": rule})


def test_a_passkey_with_another_method_is_refused_in_a_policy_file(tmp_path: Any) -> None:
    path = tmp_path / "policy.toml"
    path.write_text('[actions."vault.mix"]\naccept = [["primary", "phr"]]\n')
    with pytest.raises(ConfigurationError) as refused:
        default_policy().load_toml(path)
    message = str(refused.value)
    assert message.startswith(f"{path}: actions.vault.mix: accept names ['primary', 'phr']")
    assert "use ('phr',)" in message


def test_a_level_proved_by_a_passkey_with_another_method_is_refused() -> None:
    levels = Levels(
        (Level("basic", methods=(("pwd",),)), Level("strong", methods=(("pwd", "hwk"),)))
    )
    policy = default_policy().with_levels(levels)
    with pytest.raises(ConfigurationError, match=r"vault\.mix: level 'strong' is proved only"):
        policy.extend({"vault.mix": Rule(Sensitivity.SENSITIVE, level="strong")})


@pytest.mark.parametrize(
    "accept",
    [
        (("phr",),),
        (("hwk", "user"), ("primary", "otp")),
        (("otp",), ("primary",)),
        # a pair a bearer token's amr proves (RFC 8176), beside a way the pages ask for
        (("phr",), ("pwd", "hwk")),
        (("pwd", "hwk"), ("primary", "otp")),
    ],
)
def test_a_passkey_alone_and_other_methods_together_stay_allowed(accept: Any) -> None:
    default_policy().extend({"vault.ok": Rule(Sensitivity.SENSITIVE, accept=accept)})


def test_a_session_is_never_offered_a_passkey_paired_with_another_method() -> None:
    """A rule may keep ``("pwd", "hwk")`` (a token proves it) beside ``("pwd", "otp")``;
    a session whose user has both a device-bound passkey and TOTP is offered the pair
    the pages can ask for, never the one they cannot (the page would loop)."""
    from stepup.adapters.storage.memory import MemoryStore
    from stepup.reauth import Reauth, ReauthRequired
    from stepup.records import Credential, Passkey, Tenant
    from stepup.subject import Subject
    from stepup.testing import SettableClock

    rule = Rule(Sensitivity.SENSITIVE, always=True, accept=(("pwd", "hwk"), ("pwd", "otp")))
    policy = default_policy().extend({"vault.mix": rule})
    store = MemoryStore()
    store.put_tenant(Tenant("acme", {"feature_flags": {"sensitive_actions_reauth": True}}))
    reauth = Reauth(store, policy, clock=SettableClock())
    subject = Subject("alice", "s1")
    before = reauth.check(subject, "vault.mix", "acme")
    assert isinstance(before, ReauthRequired)
    assert set(before.methods) == {"pwd", "otp"}  # nothing enrolled: the askable way
    assert before.enrol == ("otp",)
    store.put_credential(Credential("alice", "totp-alice", "sealed", confirmed=True))
    device_bound = Passkey(
        user_id="alice",
        credential_id="cred-1",
        credential_data="AAAA",
        name="Key",
        sign_count=0,
        backup_eligible=False,
        backup_state=False,
        user_verified=True,
        created_at=1.0,
        transports=(),
    )
    store.add_passkey(device_bound, 10)
    enrolled = reauth.check(subject, "vault.mix", "acme")
    assert isinstance(enrolled, ReauthRequired)
    assert set(enrolled.methods) == {"pwd", "otp"}  # not ("hwk", "pwd"), though provable
    assert not enrolled.enrol
