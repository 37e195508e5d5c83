"""Flask, on docs/examples/flask_app.py: a sign-in that counts, the resumed form POST,
the status endpoint and helper script, the guard coverage check and the isolation
contract."""

from __future__ import annotations

import importlib.util
import io
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from flask import Flask, request
from flask.testing import FlaskClient
from flask_login import login_user

from integrations.resume_support import as_multidict, resume_form
from stepup import TOTP
from stepup.errors import ConfigurationError
from stepup.integrations.marks import mark
from stepup.reauth import SignInCounted
from stepup.testing import SettableClock
from stepup.testing.coverage import assert_guarded, check_guards, flask_routes
from stepup.testing.isolation import check_grant_isolation

EXAMPLE = Path(__file__).resolve().parents[3] / "docs" / "examples" / "flask_app.py"
#: What the example declares: its sensitive routes and the state-changing ones that need
#: no re-authentication.
SENSITIVE = {
    "GET /settings/api-key": "api_key.read",
    "POST /settings/api-key/regenerate": "api_key.regenerate",
}
PUBLIC = {"POST /login", "POST /logout"}


@pytest.fixture(scope="module")
def example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("stepup_docs_flask_app_issue13", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock()


def _app(example: ModuleType, clock: SettableClock, **config: Any) -> Flask:
    app: Flask = example.create_app(
        {"TESTING": True, "STEPUP_STORE": "memory://", "STEPUP_CLOCK": clock, **config}
    )
    stepup = example.stepup

    # A guarded form of the app's own, with fields, to be resumed.
    @stepup.csrf_protect
    @stepup.reauth_required("user.update", return_to="/")
    def profile() -> Any:
        pairs = request.form.items(multi=True)
        return {"fields": [[name, value] for name, value in pairs if name != "csrf_token"]}

    app.add_url_rule("/settings/profile", "profile", profile, methods=["POST"])

    # The same with the decorators the other way round: the guard sees a forged form first.
    @stepup.reauth_required("user.update", return_to="/")
    @stepup.csrf_protect
    def profile_guard_first() -> Any:
        pairs = request.form.items(multi=True)
        return {"fields": [[name, value] for name, value in pairs if name != "csrf_token"]}

    app.add_url_rule("/settings/profile-2", "profile_2", profile_guard_first, methods=["POST"])
    return app


@pytest.fixture
def app(example: ModuleType, clock: SettableClock) -> Flask:
    return _app(example, clock)


def _flag_on(app: Flask) -> None:
    with app.app_context():
        app.extensions["stepup"].store.patch_tenant("acme", {}, {"sensitive_actions_reauth": True})


def _hidden(client: FlaskClient, page: str) -> dict[str, str]:
    body = client.get(page).get_data(as_text=True)
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', body))


def _sign_in(client: FlaskClient, user: str) -> Any:
    token = _hidden(client, "/login")["csrf_token"]
    data = {"username": user, "password": f"{user} password", "next": "/", "csrf_token": token}
    return client.post("/login", data=data)


def _reauth(client: FlaskClient, location: str, user: str) -> Any:
    form = _hidden(client, location)
    return client.post("/stepup/reauth/password", data={**form, "password": f"{user} password"})


def _token(client: FlaskClient) -> str:
    return _hidden(client, "/")["csrf_token"]


# A sign-in that counts -----------------------------------------------------------------


def _enrolled(client: FlaskClient, clock: SettableClock) -> TOTP:
    enrol = client.post("/stepup/2fa/enrol", data=_hidden(client, "/stepup/2fa"))
    secret = re.search(r'id="stepup-manual-key">([^<]+)</code>', enrol.get_data(as_text=True))
    assert secret
    totp = TOTP(secret.group(1).replace(" ", ""))
    form = _hidden(client, "/stepup/2fa")
    confirmed = client.post("/stepup/2fa/confirm", data={**form, "code": totp.at(clock())})
    assert confirmed.status_code == 200
    client.post("/logout", data={"csrf_token": _token(client)})
    return totp


@pytest.mark.parametrize("counts", [False, True])
def test_a_two_factor_sign_in_counts_only_when_the_policy_says_so(
    example: ModuleType, clock: SettableClock, tmp_path: Path, counts: bool
) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(f"sign_in_counts = {'true' if counts else 'false'}\n")
    app = _app(example, clock, STEPUP_POLICY_FILE=str(policy))
    _flag_on(app)
    bob = app.test_client()
    _sign_in(bob, "bob")
    totp = _enrolled(bob, clock)
    assert _sign_in(bob, "bob").headers["Location"] == "/stepup/2fa/verify"
    clock.advance(30)
    form = _hidden(bob, "/stepup/2fa/verify")
    assert (
        bob.post("/stepup/2fa/verify", data={**form, "code": totp.at(clock())}).status_code == 303
    )
    clock.advance(60)  # a minute later
    key = bob.get("/settings/api-key")
    assert key.status_code == (200 if counts else 303)
    if counts:  # signed with pwd+otp at the sign-in's time: it lasts the lifetime from then
        clock.advance(6 * 3600 - 60)  # six hours after the sign-in
        assert bob.get("/settings/api-key").status_code == 303


def test_an_app_records_its_own_sign_in(
    example: ModuleType, clock: SettableClock, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text("sign_in_counts = true\n")
    app = _app(example, clock, STEPUP_POLICY_FILE=str(policy))
    outcomes: list[Any] = []

    def sso_login() -> Any:  # as an app's own login view would, after its password check
        login_user(example.User("alice"))
        outcomes.append(example.stepup.record_sign_in(("pwd",)))
        return "signed in"

    app.add_url_rule("/test-login", "test_login", sso_login, methods=["GET"])
    _flag_on(app)
    alice = app.test_client()
    assert alice.get("/test-login").status_code == 200
    assert isinstance(outcomes[0], SignInCounted)
    assert alice.get("/settings/api-key").status_code == 200
    # Another browser of alice's signed in without recording: asked.
    other = app.test_client()
    _sign_in(other, "alice")
    assert other.get("/settings/api-key").status_code == 303


# Nothing lost to a re-authentication --------------------------------------------------

FORM = [("name", "Alice A."), ("tag", "x"), ("tag", "y"), ("bio", "line 1\nline 2 <b>&</b>")]


@pytest.mark.parametrize("forged", [[], [("csrf_token", "forged")]], ids=["none", "wrong"])
def test_a_forged_form_is_not_laundered_by_the_reauthentication(
    app: Flask, forged: list[tuple[str, str]]
) -> None:
    """A view whose guard runs before its CSRF check sees another site's form first: it
    is kept like any other, but its replay carries no fresh token, so the check refuses
    it after the re-authentication as it would have before. A genuine form still gets
    one."""
    _flag_on(app)
    alice = app.test_client()
    _sign_in(alice, "alice")
    refused = alice.post("/settings/profile-2", data=as_multidict([*FORM, *forged]))
    assert refused.status_code == 303
    target, fields = resume_form(_reauth(alice, refused.headers["Location"], "alice").text)
    assert fields == FORM  # no csrf_token
    assert alice.post(target, data=as_multidict(fields)).status_code == 403

    genuine = alice.post(
        "/settings/profile-2", data=as_multidict([*FORM, ("csrf_token", _token(alice))])
    )
    assert genuine.status_code == 200  # the grant is fresh now: nothing to keep


def test_an_interrupted_form_post_resumes_with_its_fields_and_a_fresh_csrf_token(
    app: Flask,
) -> None:
    _flag_on(app)
    alice = app.test_client()
    _sign_in(alice, "alice")
    old_token = _token(alice)
    refused = alice.post("/settings/profile", data=as_multidict([*FORM, ("csrf_token", old_token)]))
    assert refused.status_code == 303
    location = refused.headers["Location"]
    assert "resume=" in location
    assert "next=%2F&" in location  # Cancel, or a lost resume, goes where it did before

    resumed = _reauth(alice, location, "alice")
    assert resumed.status_code == 200
    assert resumed.headers["Cache-Control"] == "no-store"
    body = resumed.get_data(as_text=True)
    assert '<script src="/stepup/stepup-reauth.js"></script>' in body
    target, fields = resume_form(body)
    assert target == "/settings/profile"
    sent = dict(fields)
    assert sent["csrf_token"] != old_token  # renewed with the session
    assert [f for f in fields if f[0] != "csrf_token"] == FORM

    # The replay is a new POST: the app's CSRF check runs on it, then the view.
    done = alice.post(target, data=as_multidict(fields))
    assert done.status_code == 200
    assert done.json == {"fields": [list(f) for f in FORM]}
    # The old token is worthless now, and the kept request was used up.
    assert (
        alice.post(target, data=as_multidict([*FORM, ("csrf_token", old_token)])).status_code == 403
    )
    again = _reauth(alice, location, "alice")
    assert again.status_code == 303  # nothing to resume: back to `next`
    assert again.headers["Location"] == "/"


def test_two_tabs_each_resume_their_own_form(app: Flask) -> None:
    """Two tabs each had a form interrupted; tab A re-authenticates first (the session id
    is renewed), then tab B (its page reloaded for the renewed CSRF token): B's form
    comes back too, each tab its own."""
    _flag_on(app)
    alice = app.test_client()
    _sign_in(alice, "alice")
    token = _token(alice)
    tab_a = alice.post("/settings/profile", data={"name": "A", "csrf_token": token})
    tab_b = alice.post("/settings/profile", data={"name": "B", "csrf_token": token})
    for tab, name in ((tab_a, "A"), (tab_b, "B")):
        resumed = _reauth(alice, tab.headers["Location"], "alice")
        assert resumed.status_code == 200, name
        target, fields = resume_form(resumed.get_data(as_text=True))
        assert [f for f in fields if f[0] == "name"] == [("name", name)]
        assert alice.post(target, data=as_multidict(fields)).json == {"fields": [["name", name]]}


def test_a_forged_replay_without_the_fresh_token_is_refused(app: Flask) -> None:
    _flag_on(app)
    alice = app.test_client()
    _sign_in(alice, "alice")
    refused = alice.post(
        "/settings/profile", data=as_multidict([*FORM, ("csrf_token", _token(alice))])
    )
    target, fields = resume_form(
        _reauth(alice, refused.headers["Location"], "alice").get_data(as_text=True)
    )
    without = [f for f in fields if f[0] != "csrf_token"]
    assert alice.post(target, data=as_multidict(without)).status_code == 403


def test_a_kept_request_never_resumes_in_another_session(app: Flask) -> None:
    _flag_on(app)
    alice, elsewhere = app.test_client(), app.test_client()
    _sign_in(alice, "alice")
    _sign_in(elsewhere, "alice")
    refused = alice.post(
        "/settings/profile", data=as_multidict([*FORM, ("csrf_token", _token(alice))])
    )
    stolen = _reauth(elsewhere, refused.headers["Location"], "alice")
    assert stolen.status_code == 303  # re-authenticated, but nothing resumed
    # ... and it is gone for alice too (single use, whoever tried).
    assert _reauth(alice, refused.headers["Location"], "alice").status_code == 303


@pytest.mark.parametrize(
    "data",
    [
        {"name": "x", "avatar": (io.BytesIO(b"GIF89a"), "a.gif")},  # a file
        {"name": "x", "new_password": "hunter2"},  # a secret
        {"name": "x" * (64 * 1024 + 1)},  # too large
    ],
)
def test_files_secrets_and_large_forms_are_not_kept(app: Flask, data: dict[str, Any]) -> None:
    _flag_on(app)
    alice = app.test_client()
    _sign_in(alice, "alice")
    refused = alice.post("/settings/profile", data={**data, "csrf_token": _token(alice)})
    assert refused.status_code == 303
    assert "resume=" not in refused.headers["Location"]  # the old behaviour: back to the page


def test_the_apps_own_secret_names_are_never_kept(
    example: ModuleType, clock: SettableClock
) -> None:
    app = _app(example, clock, STEPUP_RESUME_SECRET_FIELDS=["kontonummer"])
    _flag_on(app)
    alice = app.test_client()
    _sign_in(alice, "alice")
    data = {"name": "x", "neue_kontonummer": "DE0012", "csrf_token": _token(alice)}
    refused = alice.post("/settings/profile", data=data)
    assert refused.status_code == 303
    assert "resume=" not in refused.headers["Location"]
    kept = alice.post("/settings/profile", data={"name": "x", "csrf_token": _token(alice)})
    assert "resume=" in kept.headers["Location"]  # an ordinary form still waits


def test_a_secret_name_setting_that_is_one_string_stops_the_app(
    example: ModuleType, clock: SettableClock
) -> None:
    with pytest.raises(ConfigurationError):
        _app(example, clock, STEPUP_RESUME_SECRET_FIELDS="kontonummer")


def test_json_requests_get_their_401_and_nothing_is_kept(app: Flask) -> None:
    _flag_on(app)
    alice = app.test_client()
    _sign_in(alice, "alice")
    answer = alice.post(
        "/settings/profile", json={"name": "x"}, headers={"X-CSRF-Token": _token(alice)}
    )
    assert answer.status_code == 401
    assert "resume=" not in answer.json["reauth_url"]


# The status endpoint and the helper --------------------------------------------------


def test_the_status_endpoint_answers_without_performing_anything(app: Flask) -> None:
    alice = app.test_client()
    assert alice.get("/stepup/reauth/status?action=api_key.read").status_code == 401
    _sign_in(alice, "alice")
    off = alice.get("/stepup/reauth/status?action=api_key.read")
    assert off.status_code == 200
    assert off.json["required"] is False
    assert off.json["reason"] == "flag_off"
    assert off.headers["Cache-Control"] == "no-store"
    assert alice.get("/stepup/reauth/status?action=nope").status_code == 400

    _flag_on(app)
    needed = alice.get("/stepup/reauth/status?action=api_key.read").json
    assert needed["required"] is True
    assert needed["methods"] == ["pwd"]
    assert needed["max_age"] == 6 * 3600
    assert (
        needed["reauth_url"] == "/stepup/reauth?next=%2Fstepup%2Freauth%2Fdone&action=api_key.read"
    )
    # Asking twice changes nothing; the re-auth page the answer names comes back to done.
    assert alice.get("/stepup/reauth/status?action=api_key.read").json == needed
    done = _reauth(alice, needed["reauth_url"], "alice")
    assert done.headers["Location"] == "/stepup/reauth/done"
    page = alice.get("/stepup/reauth/done").get_data(as_text=True)
    assert "data-stepup-reauth-done" in page
    assert re.search(r'data-csrf-token="[^"]+"', page)
    now = alice.get("/stepup/reauth/status?action=api_key.read").json
    assert now["required"] is False
    assert now["valid_until"] is not None


def test_the_helper_script_is_served() -> None:
    from stepup.integrations.resume import script

    assert b"window.stepup" in script()


def test_the_helper_script_route(app: Flask) -> None:
    answer = app.test_client().get("/stepup/stepup-reauth.js")
    assert answer.status_code == 200
    assert answer.mimetype == "text/javascript"
    assert b"reauth_required" in answer.data


# Did I guard everything? ---------------------------------------------------------------


def test_the_example_is_guarded_as_declared(app: Flask) -> None:
    with app.app_context():
        policy = app.extensions["stepup"].policy
    routes = assert_guarded(
        app, policy, sensitive={**SENSITIVE, "POST /settings/profile": "user.update"}, public=PUBLIC
    )
    assert any(r.path == "/settings/api-key" and r.actions == ("api_key.read",) for r in routes)


def test_an_unguarded_sensitive_route_is_caught(app: Flask) -> None:
    def delete_key() -> str:  # forgot @stepup.reauth_required
        return "deleted"

    app.add_url_rule("/settings/api-key/delete", "delete_key", delete_key, methods=["POST"])
    with app.app_context():
        policy = app.extensions["stepup"].policy
    declared = {**SENSITIVE, "POST /settings/profile": "user.update"}
    with pytest.raises(AssertionError) as caught:
        assert_guarded(app, policy, sensitive=declared, public=PUBLIC)
    assert (
        "POST /settings/api-key/delete (delete_key): can change something but has no stepup guard"
        in str(caught.value)
    )
    # Declared sensitive, it is named for its action.
    declared["POST /settings/api-key/delete"] = "api_key.regenerate"
    with pytest.raises(
        AssertionError,
        match=r"is for the sensitive action 'api_key\.regenerate' but has no stepup guard",
    ):
        assert_guarded(app, policy, sensitive=declared, public=PUBLIC)


def test_wrong_and_unknown_actions_and_stale_declarations_are_caught(app: Flask) -> None:
    def export() -> str:
        return "data"

    mark(export, "data.export")  # a guard for an action the policy does not know
    app.add_url_rule("/export", "export", export, methods=["GET"])
    with app.app_context():
        policy = app.extensions["stepup"].policy
    problems = [
        str(p)
        for p in check_guards(
            flask_routes(app),
            policy,
            sensitive={
                "GET /settings/api-key": "api_key.regenerate",  # guarded for another action
                "POST /gone": "user.update",  # no such route
            },
            public={*PUBLIC, "POST /settings/profile", "POST /settings/api-key/regenerate"},
        )
    ]
    assert (
        "GET /settings/api-key (example.api_key): is for 'api_key.regenerate' but is guarded for 'api_key.read'"
        in problems
    )
    assert "POST /gone: is declared sensitive but no route matches it" in problems
    assert "GET /export (export): is guarded for 'data.export', an unknown action" in problems
    assert len(problems) == 3


# A proof never grants another user or session ------------------------------------------


def _isolation(app: Flask, **extra: Any) -> None:
    def sign_in(user: str) -> FlaskClient:
        client = app.test_client()
        _sign_in(client, user)
        client.user = user  # type: ignore[attr-defined]
        return client

    def reauthenticate(client: FlaskClient) -> None:
        refused = client.get("/settings/api-key")
        _reauth(client, refused.headers["Location"], client.user)  # type: ignore[attr-defined]

    check_grant_isolation(
        sign_in=sign_in,
        reauthenticate=reauthenticate,
        allowed=lambda c: c.get("/settings/api-key").status_code == 200,
        users=("alice", "bob"),
        sign_in_again=lambda c, user: _sign_in(c, user),
        **extra,
    )


def test_the_example_passes_the_isolation_contract(app: Flask) -> None:
    _flag_on(app)
    _isolation(app, sign_out=lambda c: c.post("/logout", data={"csrf_token": _token(c)}))


def test_the_contract_catches_a_session_id_shared_by_every_browser(
    example: ModuleType, clock: SettableClock
) -> None:
    app = _app(example, clock)
    _flag_on(app)
    from flask_login import current_user

    from stepup.subject import Subject

    @example.stepup.subject_loader
    def shared() -> Subject | None:  # the bug: one "session" for every browser of a user
        return Subject(current_user.id, "same") if current_user.is_authenticated else None

    try:
        with pytest.raises(AssertionError, match="another session of 'alice'"):
            _isolation(app)
    finally:
        example.stepup.hooks.subject_loader = None


def test_an_oidc_sign_in_counts_from_the_providers_auth_time(
    example: ModuleType, clock: SettableClock, tmp_path: Path
) -> None:
    from stepup.subject import Identity, LoginMethod

    policy = tmp_path / "policy.toml"
    policy.write_text("sign_in_counts = true\n")
    app = _app(example, clock, STEPUP_POLICY_FILE=str(policy))
    outcomes: list[Any] = []

    def oidc_login() -> str:  # the app's own OIDC sign-in, after checking the ID token
        login_user(example.User("alice"))
        identity = Identity(LoginMethod.OIDC, "https://idp.example", "alice-sub", "corp")
        auth_time = clock() - 3600  # the user logged in at the provider an hour ago
        outcomes.append(
            example.stepup.note_sign_in(identity, methods=("oidc",), authenticated_at=auth_time)
        )
        return "signed in"

    app.add_url_rule("/test-oidc-login", "test_oidc_login", oidc_login)
    _flag_on(app)
    alice = app.test_client()
    assert alice.get("/test-oidc-login").status_code == 200
    assert isinstance(outcomes[0], SignInCounted)
    assert outcomes[0].grant.authenticated_at == clock() - 3600
    assert alice.get("/settings/api-key").status_code == 200
    clock.advance(5 * 3600)  # six hours after the provider's login, not the app's
    refused = alice.get("/settings/api-key")
    assert refused.status_code == 303


def test_the_sliding_window_from_the_policy_file(
    example: ModuleType, clock: SettableClock, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text('sliding_max = "12h"\n')
    app = _app(example, clock, STEPUP_POLICY_FILE=str(policy))
    _flag_on(app)
    alice = app.test_client()
    _sign_in(alice, "alice")
    _reauth(alice, alice.get("/settings/api-key").headers["Location"], "alice")
    for _ in range(2):  # each use renews the 6-hour lifetime ...
        clock.advance(5 * 3600)
        assert alice.get("/settings/api-key").status_code == 200
    clock.advance(2 * 3600)  # ... up to 12 hours after the password was typed
    assert alice.get("/settings/api-key").status_code == 303


def test_polling_the_status_renews_no_sliding_window(
    example: ModuleType, clock: SettableClock, tmp_path: Path
) -> None:
    """The status endpoint looks (``Reauth.peek``): a page that polls it does not keep
    an idle session's grant alive; only a sensitive action renews it."""
    policy = tmp_path / "policy.toml"
    policy.write_text('sliding_max = "12h"\n')
    app = _app(example, clock, STEPUP_POLICY_FILE=str(policy))
    _flag_on(app)
    alice = app.test_client()
    _sign_in(alice, "alice")
    _reauth(alice, alice.get("/settings/api-key").headers["Location"], "alice")
    status = "/stepup/reauth/status?action=api_key.read"
    for _ in range(19):  # every half hour for 9.5 hours, no sensitive action
        clock.advance(1800)
        alice.get(status)
    assert alice.get(status).get_json()["required"] is True
    assert alice.get("/settings/api-key").status_code == 303
