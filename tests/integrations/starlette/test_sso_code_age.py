"""A code proved at the SSO start view dates the grant by when it was typed, not by the
provider's later ``auth_time``: a grant is never fresher than its parts.

A CRITICAL rule (lifetime 300 s) that also asks for a code; the code is typed at the
start view at T0+30, the person takes 470 s at the real OpenID provider (``challenge_ttl``
is 600), the callback comes at T0+500. The grant ``oidc`` + ``otp`` is dated T0+30, so
the action is allowed 290 s after the code and asked for again 310 s after it (the old
code dated it T0+500 and let it through for 800 s after the code).
"""

from __future__ import annotations

import html
import math
import re
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlencode

import pytest

from idp.oidc.harness import ALICE, REDIRECT_URI, Provider, launch_provider, make_config
from idp.oidc.useragent import UserAgent
from integrations.starlette.starlette_support import csrf_token, enrol, make_app
from stepup.adapters.idp.oidc import AsyncOIDCReauth
from stepup.adapters.storage.memory import MemoryStore
from stepup.events import ReauthSucceeded
from stepup.integrations.views import default_policy
from stepup.policy import CRITICAL
from stepup.testing import SettableClock

pytestmark = pytest.mark.oidc

_SSO_FORM = re.compile(r'<form method="post" action="([^"]+/oidc/start[^"]*)">')


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    started = launch_provider(Path(tmp_path_factory.mktemp("op")) / "provider.log")
    yield started
    started.stop()


def test_the_code_typed_before_the_trip_dates_the_grant(provider: Provider) -> None:
    policy = default_policy().extend({"api_key.read": replace(CRITICAL, second_factor=True)})
    real_now = math.floor(time.time())
    t0 = real_now - 500  # the app's clock starts 500 s before the provider's login
    clock = SettableClock(t0)
    store = MemoryStore()
    oidc = AsyncOIDCReauth(make_config(provider), store, clock=clock)
    app = make_app(clock=clock, store=store, oidc=oidc, teardown=oidc.aclose, policy=policy)
    agent = UserAgent(REDIRECT_URI)
    browser = app.browser()
    try:
        signed_in = browser.login_sso("alice", "oidc", provider.issuer, ALICE[0], "test-op")
        assert signed_in.status_code == 303
        assert browser.patch_tenant(True).status_code == 200
        totp, _ = enrol(browser)

        clock.advance(30)
        location = browser.get("/api-key").headers["location"]
        page = browser.get(location)
        form = _SSO_FORM.search(page.text)
        assert form is not None, page.text
        code_at = clock()
        to_op = browser.post(
            html.unescape(form.group(1)),
            data={"csrf_token": csrf_token(page.text), "code": totp.at(code_at)},
        )
        assert to_op.status_code == 303, to_op.text

        clock.set(real_now)  # 470 s at the provider, whose auth_time is its real time
        answer = agent.authorize(to_op.headers["location"], login=ALICE[0], password=ALICE[1])
        back = browser.get(f"/stepup/oidc/callback?{urlencode(answer)}")
        assert back.status_code == 303, back.text
        grant = [e for e in app.events if isinstance(e, ReauthSucceeded)][-1]
        assert grant.method == "oidc,otp"

        clock.set(code_at + 290)
        assert browser.get("/api-key").status_code == 200
        for later in (310, 760):
            clock.set(code_at + later)
            assert browser.get("/api-key").status_code == 303, later  # asked again
    finally:
        browser.close()
        agent.close()
