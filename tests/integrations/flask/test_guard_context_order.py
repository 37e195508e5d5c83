"""Flask's guards answer a request nobody signed in to (no bearer token, a signed-out
browser) before they call the app's ``context``: a hook that looks the target up would
tell a stranger which targets exist (404 against 401), and costs a look-up per request."""

from __future__ import annotations

from typing import Any

from flask import Flask, abort, g

from api.tokens_support import T0, guard, sign
from integrations.flask.flask_support import app_policy, make_app
from stepup.integrations.flask import Stepup
from stepup.integrations.flask.bearer import bearer_required
from stepup.policy import Rule, Sensitivity
from stepup.testing import SettableClock

WORKSPACES = {"prod": "full"}


def _lookup(calls: list[str], name: str) -> dict[str, str]:
    calls.append(name)
    if name not in WORKSPACES:
        abort(404)
    return {"workspace_type": WORKSPACES[name]}


def _bearer_app(calls: list[str]) -> Flask:
    app = Flask(__name__)

    @app.delete("/w/<name>")
    @bearer_required(
        guard(SettableClock(T0)), "workspace.delete", context=lambda name: _lookup(calls, name)
    )
    def delete(name: str) -> dict[str, str]:
        return {"by": g.stepup_token.subject}

    return app


def test_a_bearer_request_without_a_token_never_reaches_the_context() -> None:
    calls: list[str] = []
    client = _bearer_app(calls).test_client()
    for name in ("prod", "nope"):
        answer = client.delete(f"/w/{name}")
        assert (answer.status_code, answer.headers["WWW-Authenticate"]) == (
            401,
            'Bearer realm="api"',
        )
        malformed = client.delete(f"/w/{name}", headers={"Authorization": "Bearer a b"})
        assert malformed.status_code == 400
        invalid = client.delete(f"/w/{name}", headers={"Authorization": "Bearer x.y.z"})
        assert invalid.status_code == 401
    assert calls == []
    token = {"Authorization": f"Bearer {sign()}"}
    assert client.delete("/w/nope", headers=token).status_code == 404
    assert client.delete("/w/prod", headers=token).get_json() == {"by": "alice"}
    assert calls == ["nope", "prod"]


def test_another_scheme_and_an_empty_first_header_answer_as_everywhere() -> None:
    client = _bearer_app([]).test_client()
    digest = 'Digest username="Mufasa", realm="api", nonce="abc", response="66"'
    answer = client.delete("/w/prod", headers={"Authorization": digest})
    assert (answer.status_code, answer.headers["WWW-Authenticate"]) == (401, 'Bearer realm="api"')
    several = [("Authorization", ""), ("Authorization", f"Bearer {sign()}")]
    assert client.delete("/w/prod", headers=several).status_code == 400


def _session_app(calls: list[str], mode: str) -> Any:
    policy = app_policy().extend(
        {"payment.send": Rule(Sensitivity.CRITICAL, lifetime=300.0, bind_transaction=True)}
    )

    def setup(app: Flask, stepup: Stepup) -> None:
        if mode == "flask_login":
            app.login_manager.login_view = "login"  # type: ignore[attr-defined]

        @app.post("/w/<name>/delete")
        @stepup.reauth_required(
            "workspace.delete", context=lambda request: _lookup(calls, request.view_args["name"])
        )
        def delete(name: str) -> str:
            return "deleted"

        def target(request: Any) -> Any:
            calls.append("transaction")
            abort(404)

        @app.post("/pay")
        @stepup.reauth_required("payment.send", transaction=target)
        def pay() -> str:
            return "paid"

    return make_app(mode, policy=policy, setup=setup)


def test_a_signed_out_browser_goes_to_sign_in_before_the_context() -> None:
    calls: list[str] = []
    client = _session_app(calls, "flask_login").app.test_client()
    for path in ("/w/prod/delete", "/w/nope/delete", "/pay"):
        answer = client.post(path)
        assert answer.status_code == 302
        assert "/login" in answer.headers["Location"]
        script = client.post(path, headers={"Accept": "application/json"})
        assert script.status_code == 401
    assert calls == []


def test_signed_in_the_context_is_read_and_may_refuse() -> None:
    calls: list[str] = []
    client = _session_app(calls, "subject_loader").app.test_client()
    assert client.post("/w/nope/delete").status_code == 401  # nobody: no look-up
    assert calls == []
    api = {"Authorization": "Bearer token-alice"}  # the test app's signed-in API client
    assert client.post("/w/nope/delete", headers=api).status_code == 404
    assert client.post("/pay", headers=api).status_code == 404
    assert calls == ["nope", "transaction"]
