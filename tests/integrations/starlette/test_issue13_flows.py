"""Starlette and FastAPI, on the docs examples (docs/examples/starlette_app.py and
fastapi_app.py) and the test app: a sign-in that counts, the resumed form POST, the
status endpoint, the guard coverage check and the isolation contract."""

from __future__ import annotations

import re
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from integrations.resume_support import as_multidict, resume_form
from integrations.starlette.starlette_support import CHEAP, csrf_token, enrol, make_app
from integrations.starlette.test_docs import load_example
from stepup.adapters.storage.memory import MemoryStore
from stepup.errors import ConfigurationError
from stepup.integrations.views import default_policy
from stepup.records import Tenant
from stepup.testing import SettableClock
from stepup.testing.coverage import assert_guarded, starlette_routes
from stepup.testing.isolation import check_grant_isolation

FORM = [("name", "Alice A."), ("tag", "x"), ("tag", "y"), ("bio", "line 1\nline 2 <&>")]


def _profile_route(stepup: Any) -> Route:
    """A guarded form of the app's own, with fields, to be resumed."""

    @stepup.requires_reauth("user.update")
    async def profile(request: Request) -> Response:
        form = await request.form()
        if not await stepup.csrf_ok(request, form):
            return PlainTextResponse("csrf", 403)
        pairs = [[k, v] for k, v in form.multi_items() if k != "csrf_token"]
        return JSONResponse({"fields": pairs})

    return Route("/settings/profile", profile, methods=["POST"])


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock()


@pytest.fixture
def example(clock: SettableClock) -> Any:
    app = load_example("starlette_app").create_app(store=MemoryStore(), clock=clock, hasher=CHEAP)
    app.router.routes.insert(0, _profile_route(app.state.stepup))
    return app


def _flag_on(app: Any) -> None:
    store = app.state.stepup.store  # the example's MemoryStore: sync
    store.add_tenant(Tenant("acme"))
    store.patch_tenant("acme", {}, {"sensitive_actions_reauth": True})


def _sign_in(client: TestClient, user: str) -> Any:
    token = csrf_token(client.get("/login").text)
    data = {"username": user, "password": f"{user} password", "next": "/", "csrf_token": token}
    return client.post("/login", data=data)


def _reauth(client: TestClient, location: str, user: str) -> Any:
    page = client.get(location)
    data = {"csrf_token": csrf_token(page.text), "password": f"{user} password"}
    return client.post(location, data=data)


def _token(client: TestClient) -> str:
    return csrf_token(client.get("/").text)


# Nothing lost to a re-authentication --------------------------------------------------


def test_an_interrupted_form_post_resumes_with_a_fresh_csrf_token(example: Any) -> None:
    with TestClient(example, base_url="https://testserver", follow_redirects=False) as alice:
        _sign_in(alice, "alice")
        _flag_on(example)
        old = _token(alice)
        refused = alice.post("/settings/profile", data=as_multidict([*FORM, ("csrf_token", old)]))
        assert refused.status_code == 303
        assert "resume=" in refused.headers["location"]
        resumed = _reauth(alice, refused.headers["location"], "alice")
        assert resumed.status_code == 200
        target, fields = resume_form(resumed.text)
        assert target == "/settings/profile"
        assert [f for f in fields if f[0] != "csrf_token"] == FORM
        assert dict(fields)["csrf_token"] != old
        # The old token was bound to the session id the re-authentication renewed.
        stale = [*(f for f in fields if f[0] != "csrf_token"), ("csrf_token", old)]
        assert alice.post(target, data=as_multidict(stale)).status_code == 403
        done = alice.post(target, data=as_multidict(fields))
        assert done.status_code == 200
        assert done.json() == {"fields": [list(f) for f in FORM]}
        again = _reauth(alice, refused.headers["location"], "alice")
        assert again.status_code == 303  # used up


@pytest.mark.parametrize("forged", [[], [("csrf_token", "forged")]], ids=["none", "wrong"])
def test_a_forged_form_is_not_laundered_by_the_reauthentication(
    example: Any, forged: list[tuple[str, str]]
) -> None:
    """Another site's form (no token, or a wrong one) is interrupted like any other, but
    its replay carries no fresh token: the app's own check refuses it after the
    re-authentication as it would have before."""
    with TestClient(example, base_url="https://testserver", follow_redirects=False) as alice:
        _sign_in(alice, "alice")
        _flag_on(example)
        refused = alice.post("/settings/profile", data=as_multidict([*FORM, *forged]))
        assert refused.status_code == 303
        resumed = _reauth(alice, refused.headers["location"], "alice")
        target, fields = resume_form(resumed.text)
        assert fields == FORM  # no csrf_token at all
        replay = alice.post(target, data=as_multidict(fields))
        assert (replay.status_code, replay.text) == (403, "csrf")


def test_two_tabs_each_resume_their_own_form(example: Any) -> None:
    """Two tabs each had a form interrupted; tab A re-authenticates first (the session id
    is renewed), then tab B (its page reloaded for the renewed CSRF token): B's form
    comes back too, each tab its own."""
    with TestClient(example, base_url="https://testserver", follow_redirects=False) as alice:
        _sign_in(alice, "alice")
        _flag_on(example)
        token = _token(alice)
        tab_a = alice.post("/settings/profile", data={"name": "A", "csrf_token": token})
        tab_b = alice.post("/settings/profile", data={"name": "B", "csrf_token": token})
        for tab, name in ((tab_a, "A"), (tab_b, "B")):
            resumed = _reauth(alice, tab.headers["location"], "alice")
            assert resumed.status_code == 200, name
            target, fields = resume_form(resumed.text)
            assert [f for f in fields if f[0] == "name"] == [("name", name)]
            done = alice.post(target, data=as_multidict(fields))
            assert done.json() == {"fields": [["name", name]]}


def test_files_are_not_kept(example: Any) -> None:
    with TestClient(example, base_url="https://testserver", follow_redirects=False) as alice:
        _sign_in(alice, "alice")
        _flag_on(example)
        refused = alice.post(
            "/settings/profile",
            data={"csrf_token": _token(alice)},
            files={"avatar": ("a.gif", b"GIF89a", "image/gif")},
        )
        assert refused.status_code == 303
        assert "resume=" not in refused.headers["location"]


def test_another_session_cannot_take_the_kept_request(example: Any) -> None:
    with (
        TestClient(example, base_url="https://testserver", follow_redirects=False) as alice,
        TestClient(example, base_url="https://testserver", follow_redirects=False) as elsewhere,
    ):
        _sign_in(alice, "alice")
        _sign_in(elsewhere, "alice")
        _flag_on(example)
        refused = alice.post("/settings/profile", data={"name": "x", "csrf_token": _token(alice)})
        assert _reauth(elsewhere, refused.headers["location"], "alice").status_code == 303
        assert _reauth(alice, refused.headers["location"], "alice").status_code == 303


# The status endpoint and the helper --------------------------------------------------


def test_the_status_endpoint_and_the_helper(example: Any) -> None:
    with TestClient(example, base_url="https://testserver", follow_redirects=False) as alice:
        assert alice.get("/stepup/reauth/status?action=api_key.read").status_code == 401
        _sign_in(alice, "alice")
        assert alice.get("/stepup/reauth/status?action=api_key.read").json()["required"] is False
        assert alice.get("/stepup/reauth/status?action=nope").status_code == 400
        _flag_on(example)
        needed = alice.get("/stepup/reauth/status?action=api_key.read").json()
        assert needed["required"] is True
        assert needed["methods"] == ["pwd"]
        url = needed["reauth_url"]
        assert url == "/stepup/reauth?next=%2Fstepup%2Freauth%2Fdone&action=api_key.read"
        assert _reauth(alice, url, "alice").headers["location"] == "/stepup/reauth/done"
        done = alice.get("/stepup/reauth/done").text
        token = re.search(r'data-csrf-token="([^"]+)"', done)
        assert token
        # The token the done page hands over works for the renewed session.
        ok = alice.post("/settings/profile", data={"name": "n", "csrf_token": token.group(1)})
        assert ok.status_code == 200
        assert alice.get("/stepup/reauth/status?action=api_key.read").json()["required"] is False
        script = alice.get("/stepup/stepup-reauth.js")
        assert script.headers["content-type"].startswith("text/javascript")
        assert "window.stepup" in script.text


# A sign-in that counts -----------------------------------------------------------------


@pytest.mark.parametrize("counts", [False, True])
def test_a_two_factor_sign_in_counts_only_when_the_policy_says_so(
    clock: SettableClock, counts: bool
) -> None:
    policy = default_policy().with_sign_in_counts(counts)
    test_app = make_app(clock=clock, store=MemoryStore(), policy=policy)
    alice = test_app.browser()
    try:
        assert alice.login("alice").status_code == 303
        totp, _ = enrol(alice)
        assert alice.patch_tenant(True).status_code == 200
        alice.logout()
        assert alice.login("alice").headers["location"] == "/stepup/2fa/verify"
        clock.advance(30)
        assert alice.form("/stepup/2fa/verify", {"code": totp.at(clock())}).status_code == 303
        clock.advance(60)
        assert alice.get("/api-key").status_code == (200 if counts else 303)
    finally:
        alice.close()


# Did I guard everything? ---------------------------------------------------------------

STARLETTE_PUBLIC = {"POST /login", "POST /logout"}


def test_the_starlette_example_is_guarded_as_declared(example: Any) -> None:
    policy = example.state.stepup.policy
    sensitive = {"/api-key": "api_key.read", "/settings/profile": "user.update"}
    routes = assert_guarded(example, policy, sensitive=sensitive, public=STARLETTE_PUBLIC)
    assert any(r.stepup_own and r.path == "/stepup/reauth" for r in routes)


def test_an_unguarded_sensitive_starlette_route_is_caught(example: Any) -> None:
    async def delete_key(request: Request) -> Response:  # forgot requires_reauth
        return PlainTextResponse("deleted")

    example.router.routes.insert(0, Route("/api-key/delete", delete_key, methods=["POST"]))
    policy = example.state.stepup.policy
    sensitive = {"/api-key": "api_key.read", "/settings/profile": "user.update"}
    with pytest.raises(AssertionError) as caught:
        assert_guarded(example, policy, sensitive=sensitive, public=STARLETTE_PUBLIC)
    assert "POST /api-key/delete (delete_key): can change something but has no stepup guard" in str(
        caught.value
    )


def test_the_fastapi_example_dependencies_count_as_guards(clock: SettableClock) -> None:
    from fastapi import Depends

    app = load_example("fastapi_app").create_app(store=MemoryStore(), clock=clock, hasher=CHEAP)
    stepup = app.state.stepup
    sensitive = {
        "GET /api/key": "api_key.read",
        "POST /api/key/regenerate": "api_key.regenerate",
        "DELETE /api/workspaces/{name}": "workspace.delete",
    }
    routes = assert_guarded(app, stepup.policy, sensitive=sensitive, public=STARLETTE_PUBLIC)
    assert {r.path for r in routes} >= {"/api/key", "/openapi.json"}

    @app.post("/api/key/revoke", dependencies=[Depends(stepup.csrf_protected())])
    async def revoke_key() -> dict[str, str]:  # forgot Depends(stepup.require_reauth(...))
        return {}

    with pytest.raises(AssertionError, match=r"POST /api/key/revoke \(revoke_key\): can change"):
        assert_guarded(app, stepup.policy, sensitive=sensitive, public=STARLETTE_PUBLIC)
    # Declared, it is named for its action too.
    sensitive["POST /api/key/revoke"] = "api_key.regenerate"
    with pytest.raises(AssertionError, match=r"sensitive action 'api_key\.regenerate'"):
        assert_guarded(app, stepup.policy, sensitive=sensitive, public=STARLETTE_PUBLIC)


def test_the_test_apps_guards_are_all_seen(clock: SettableClock) -> None:
    test_app = make_app(clock=clock, store=MemoryStore())
    routes = {r.path: r for r in starlette_routes(test_app.app)}
    assert routes["/api-key/regenerate"].actions == ("api_key.regenerate",)
    assert routes["/workspaces/{kind}"].actions == ("workspace.delete",)
    assert routes["/stepup/2fa/remove"].stepup_own


# A proof never grants another user or session ------------------------------------------


def test_the_starlette_example_passes_the_isolation_contract(example: Any) -> None:
    clients: list[TestClient] = []

    def sign_in(user: str) -> TestClient:
        client = TestClient(example, base_url="https://testserver", follow_redirects=False)
        client.__enter__()
        clients.append(client)
        _sign_in(client, user)
        client.user = user  # type: ignore[attr-defined]
        return client

    def reauthenticate(client: TestClient) -> None:
        refused = client.get("/api-key")
        _reauth(client, refused.headers["location"], client.user)  # type: ignore[attr-defined]

    try:
        _flag_on(example)
        check_grant_isolation(
            sign_in=sign_in,
            reauthenticate=reauthenticate,
            allowed=lambda c: c.get("/api-key").status_code == 200,
            users=("alice", "bob"),
            sign_in_again=_sign_in,
            sign_out=lambda c: c.post("/logout", data={"csrf_token": _token(c)}),
        )
    finally:
        for client in clients:
            client.__exit__(None, None, None)


def test_a_fastapi_dependency_refusal_of_a_form_post_is_answered_not_kept(
    clock: SettableClock,
) -> None:
    """The middleware answers a dependency's refusal after FastAPI read the body: the
    form cannot be kept there, and the answer is the plain 303 (never a 500)."""
    app = load_example("fastapi_app").create_app(store=MemoryStore(), clock=clock, hasher=CHEAP)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as alice:
        token = csrf_token(alice.get("/login").text)
        data = {"username": "alice", "password": "alice password", "csrf_token": token}
        assert alice.post("/login", data=data).status_code == 303
        _flag_on(app)
        token = alice.get("/api/csrf-token").json()["csrf_token"]
        refused = alice.post("/api/key/regenerate", data={"note": "x", "csrf_token": token})
        assert refused.status_code == 303
        assert refused.headers["location"].startswith("/stepup/reauth?next=")
        assert "resume=" not in refused.headers["location"]


async def test_the_apps_own_secret_names_are_never_kept() -> None:
    """``Stepup(resume_secret_fields=...)`` reaches the kept forms' judge."""
    from stepup.integrations.starlette import Stepup
    from stepup.resume import NotSuspended, SuspendReason
    from stepup.subject import Subject

    stepup = Stepup(
        store=MemoryStore(),
        secret_key="a test key of sixteen or more",
        subject_loader=lambda request: None,
        tenant_loader=lambda request: "acme",
        resume_secret_fields=["kontonummer"],
    )
    alice = Subject("alice", "s1")
    fields = [("name", "x"), ("neue_kontonummer", "DE0012")]
    kept = await stepup.suspensions.suspend(alice, "a", "POST", "/p", fields, csrf_checked=True)
    assert kept == NotSuspended(SuspendReason.SECRET_FIELD)
    with pytest.raises(ConfigurationError):
        Stepup(
            store=MemoryStore(),
            secret_key="a test key of sixteen or more",
            subject_loader=lambda request: None,
            tenant_loader=lambda request: "acme",
            resume_secret_fields="kontonummer",  # type: ignore[arg-type]
        )
