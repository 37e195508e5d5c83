"""The demo while stepup's store is down, without a browser: stepup's store is a real
Redis (its own ``redis-server``, started and stopped here) and the demo's data stays in
SQLite. Signing in says "try again", never "wrong password"; signing out signs out; the
demo's pages that read the store answer stepup's "try again" page, not a server error.
And the Tenant page's re-authentication cancels back to the Tenant page."""

from __future__ import annotations

import re
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from starlette.testclient import TestClient

from e2e.demo_server import START
from e2e.journeys import ADMIN, MEMBER, PASSWORDS
from e2e.test_demo_app import csrf, sign_in
from stepup.adapters.idp.password import CHEAPEST
from stepup.adapters.storage.redis import AsyncRedisStore
from stepup.demo import DemoSettings, create_app
from stepup.i18n import translate
from stepup.integrations.views import TEXT
from stepup.testing import SettableClock
from storage.redis_cluster import RedisServer, need_redis_binaries

TRY_AGAIN = "This cannot be done right now. Try again in a moment."
WRONG = "Wrong email or password."
#: Where this module's own redis-server listens: the first free port of these.
PORTS = range(18600, 18651)


def spare_port() -> int:
    for port in PORTS:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {PORTS}")


class Outage:
    """The demo with stepup's store on a redis-server that ``down()`` stops and ``up()``
    starts again on the same port."""

    def __init__(self, client: TestClient, redis: RedisServer) -> None:
        self.client = client
        self.redis = redis

    def down(self) -> None:
        self.redis.kill()

    def up(self) -> None:
        self.redis.start()

    def audit(self, user_id: str) -> list[str]:
        """The names of the user's audit entries, oldest first."""
        demo = self.client.app.state.demo  # type: ignore[attr-defined]
        self.client.portal.call(demo.audit.flush)  # type: ignore[union-attr]
        rows = self.client.portal.call(  # type: ignore[union-attr]
            lambda: demo.data.audit(user_id=user_id, limit=500)
        )
        return [row.name for row in reversed(rows)]


@pytest.fixture
def outage(tmp_path: Path) -> Iterator[Outage]:
    need_redis_binaries()
    redis = RedisServer(tmp_path / "redis", spare_port())
    try:
        redis.start()
        store = AsyncRedisStore(redis.url, prefix=f"demo-outage-{uuid.uuid4().hex}:", timeout=2.0)
        settings = DemoSettings(db_path=tmp_path / "demo.sqlite3")
        hasher = PasswordHasher.from_parameters(CHEAPEST)
        app = create_app(settings, clock=SettableClock(START), hasher=hasher, store=store)
        with TestClient(app, follow_redirects=False) as client:
            yield Outage(client, redis)
            client.portal.call(store.aclose)
    finally:
        redis.kill()


def _login_error(html: str) -> str:
    match = re.search(r'<p class="error" role="alert" id="login-error">([^<]*)</p>', html)
    assert match is not None, "no error on the sign-in page"
    return match.group(1)


def test_the_right_password_while_the_store_is_down_says_try_again(outage: Outage) -> None:
    client = outage.client
    outage.down()
    answer = sign_in(client, MEMBER)
    assert answer.status_code == 503  # not 401: the password was never checked
    assert answer.headers["retry-after"] == "5"
    assert _login_error(answer.text) == TRY_AGAIN  # stepup's own words for an outage
    assert WRONG not in answer.text
    # The same answer for a wrong password and for nobody's email: it tells no account apart.
    for email, password in ((MEMBER, "wrong"), ("nobody@acme.test", "whatever")):
        other = sign_in(client, email, password)
        assert (other.status_code, _login_error(other.text)) == (503, TRY_AGAIN)
    # In the sign-in page's language, English (the demo's own pages are), whatever the
    # browser asks for: one language on the page (WCAG 3.1.2).
    page = client.get("/login")
    german = client.post(
        "/login",
        data={"csrf_token": csrf(page.text), "email": MEMBER, "password": PASSWORDS[MEMBER]},
        headers={"Accept-Language": "de"},
    )
    assert german.status_code == 503
    assert '<html lang="en">' in german.text
    assert _login_error(german.text) == TRY_AGAIN
    assert translate(TEXT["unavailable"], "de") not in german.text
    # No failed sign-in is audited: nobody got a password wrong.
    assert "SignInFailed" not in outage.audit("member")
    outage.up()
    assert sign_in(client, MEMBER).headers["location"] == "/account"
    assert outage.audit("member") == ["SignedIn"]


def test_a_wrong_password_with_the_store_up_is_still_wrong(outage: Outage) -> None:
    answer = sign_in(outage.client, MEMBER, "wrong")
    assert (answer.status_code, _login_error(answer.text)) == (401, WRONG)
    assert outage.audit("member") == ["SignInFailed"]


def test_sign_out_while_the_store_is_down_signs_out(outage: Outage) -> None:
    client = outage.client
    assert sign_in(client, ADMIN).headers["location"] == "/account"
    page = client.get("/account").text
    outage.down()
    out = client.post("/logout", data={"csrf_token": csrf(page)})
    assert out.status_code == 303
    assert out.headers["location"] == "/login"
    assert client.get("/account").headers["location"].startswith("/login")
    outage.up()  # the store is back: the old session does not come back with it
    assert client.get("/account").headers["location"].startswith("/login")
    assert outage.audit("admin")[-1] == "SignedOut"


@pytest.mark.parametrize("path", ["/security", "/users"])
def test_a_demo_page_that_reads_the_store_says_try_again(outage: Outage, path: str) -> None:
    client = outage.client
    sign_in(client, ADMIN)
    assert client.get(path).status_code == 200
    outage.down()
    page = client.get(path)
    assert page.status_code == 503  # stepup's "try again" page, not a server error
    assert page.headers["retry-after"] == "5"
    assert TRY_AGAIN in page.text
    assert 'data-state="unavailable"' in page.text  # the demo's banner says so too


def _cancel(prompt: str) -> str:
    match = re.search(r'<a class="stepup-cancel" href="([^"]*)"', prompt)
    assert match is not None, "no Cancel on the prompt"
    return match.group(1)


def test_cancel_on_the_tenant_prompt_goes_back_to_the_tenant_page(
    app_client: tuple[Any, SettableClock],
) -> None:
    """The button without JavaScript (the script sends the prompt to the same place)."""
    client, _ = app_client
    sign_in(client, ADMIN)
    tenant = "http://testserver/tenant"
    page = client.get("/tenant").text
    assert 'data-return="/tenant/flag"' in page  # where the script's prompt comes back
    asked = client.post(
        "/tenant/flag", data={"csrf_token": csrf(page), "on": "true"}, headers={"Referer": tenant}
    )
    assert asked.status_code == 303
    location = asked.headers["location"]
    assert "next=%2Ftenant%2Fflag" in location
    # The browser follows the redirect with the Tenant page as its Referer.
    prompt = client.get(location, headers={"Referer": tenant})
    assert _cancel(prompt.text) == "/tenant"
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', prompt.text))
    wrong = client.post(location, data={**fields, "password": "wrong"})
    assert _cancel(wrong.text) == "/tenant"  # still, after a wrong password
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', wrong.text))
    done = client.post(location, data={**fields, "password": PASSWORDS[ADMIN]})
    assert '<form method="post" action="/tenant/flag" id="stepup-resume">' in done.text
    # Where the prompt comes back to when it kept no form (the script's PATCH): the
    # Tenant page, through the flag's address.
    back = client.get("/tenant/flag")
    assert (back.status_code, back.headers["location"]) == (303, "/tenant")
