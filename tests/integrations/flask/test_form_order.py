"""Flask: a kept form comes back in the order it was sent, repeated names in their
places (``request.form`` groups them: item=a&qty=1&item=b came back item, item, qty),
also when something parsed the form before the guard (a decorator above it, Flask-WTF)."""

from __future__ import annotations

import pytest
from flask import Flask, request
from flask_wtf.csrf import CSRFProtect
from hypothesis import HealthCheck, given, settings

from integrations.flask.flask_support import TENANT, Browser, TestApp, make_app, set_flag
from integrations.form_order_support import MULTIPART, URLENCODED, body, fields
from integrations.resume_support import resume_form
from stepup.adapters.storage.memory import MemoryStore
from stepup.integrations.flask import Stepup
from stepup.records import Tenant


def _order_form(app: Flask, stepup: Stepup) -> None:
    @app.post("/order")
    @stepup.reauth_required("api_key.regenerate", return_to="/home")
    def order() -> str:
        return repr(list(request.form.items(multi=True)))

    @app.post("/order-parsed-first")
    @stepup.csrf_protect  # reads request.form before the guard runs
    @stepup.reauth_required("api_key.regenerate", return_to="/home")
    def order_parsed_first() -> str:
        return "ok"


def _signed_in(test_app: TestApp) -> Browser:
    alice = test_app.client()
    assert alice.login("alice").status_code == 303
    assert set_flag(alice).status_code == 200
    return alice


TEST_APP = make_app(store=MemoryStore(), setup=_order_form)
ALICE = _signed_in(TEST_APP)


def _kept_and_resumed(
    alice: Browser, url: str, pairs: list[tuple[str, str]], kind: str
) -> list[tuple[str, str]]:
    token = alice.csrf()
    data = body([("csrf_token", token), *pairs], kind)
    content_type = URLENCODED if kind == URLENCODED else MULTIPART
    refused = alice.client.post(url, data=data, content_type=content_type)
    assert refused.status_code == 303
    resumed = alice.reauth(refused.headers["Location"], "correct horse")
    _, sent_again = resume_form(resumed.get_data(as_text=True))
    with TEST_APP.app.app_context():  # asked again for the next example
        TEST_APP.stepup.reauth.password_changed("alice")
    return [field for field in sent_again if field[0] != "csrf_token"]


@settings(max_examples=25, suppress_health_check=[HealthCheck.too_slow])
@given(fields)
@pytest.mark.parametrize("kind", [URLENCODED, MULTIPART])
@pytest.mark.parametrize("url", ["/order", "/order-parsed-first"])
def test_a_kept_form_comes_back_in_the_order_it_was_sent(
    url: str, kind: str, pairs: list[tuple[str, str]]
) -> None:
    assert _kept_and_resumed(ALICE, url, pairs, kind) == pairs


def test_with_flask_wtf_too() -> None:
    protect = CSRFProtect()

    def setup(app: Flask, stepup: Stepup) -> None:
        protect.init_app(app)  # its check reads request.form before every view
        _order_form(app, stepup)

    test_app = make_app(store=MemoryStore(), setup=setup)
    protect.exempt(test_app.app.view_functions["login"])
    alice = test_app.client()
    alice.login("alice")
    flag = {"feature_flags": {"sensitive_actions_reauth": True}}
    with test_app.app.app_context():
        test_app.stepup.store.put_tenant(Tenant(TENANT, flag))
    pairs = [("item", "a"), ("qty", "1"), ("item", "b"), ("qty", "2")]
    data = body([("csrf_token", alice.csrf()), *pairs], URLENCODED)
    refused = alice.client.post("/order", data=data, content_type=URLENCODED)
    resumed = alice.reauth(refused.headers["Location"], "correct horse")
    _, sent_again = resume_form(resumed.get_data(as_text=True))
    assert [f for f in sent_again if f[0] != "csrf_token"] == pairs
