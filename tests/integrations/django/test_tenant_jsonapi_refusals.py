"""The tenant settings endpoint (``PATCH /stepup/tenants/<id>``, a JSON:API 1.1 resource)
answers every refusal as a JSON:API error document (``application/vnd.api+json``, an
``errors`` array, ``status`` a string), in Flask, Django and Starlette alike: the 401
asking for a re-authentication (it was the guarded JSON endpoints' ``{"error":
"reauth_required"}``), the 503 of a store outage at the grant read or at the write (one
code, ``Retry-After`` both), and the 405 of every other method (``Allow: PATCH``; it was
each framework's own HTML or text 405, and Flask's automatic OPTIONS).

(This module lives under django/ because Django is configured once per process there.)
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

import pytest
from django.http import HttpResponse as DjangoResponse
from starlette.responses import PlainTextResponse

from integrations.django.django_support import fresh_grant as django_grant
from integrations.django.django_support import running_site
from integrations.flask.flask_support import fresh_grant as flask_grant
from integrations.flask.flask_support import make_app as flask_app
from integrations.starlette.starlette_support import make_app as starlette_app
from integrations.tenant_answers import JSONAPI, only_error
from stepup.adapters.storage.memory import MemoryStore
from stepup.errors import StoreUnavailableError
from stepup.integrations.django.services import get_stepup
from stepup.integrations.http import RETRY_AFTER, SESSION_CHALLENGE
from stepup.testing import SettableClock

URL: Final = "/stepup/tenants/acme"
TENANT_PAGE: Final = "/settings/tenant"
BODY: Final = json.dumps(
    {
        "data": {
            "type": "tenant",
            "attributes": {"feature_flags": {"sensitive_actions_reauth": True}},
        }
    }
).encode()
# The Referer as a path (RFC 9110's partial-URI): on this site whatever host each
# framework's test client uses (a Referer on another origin is never followed).
HEADERS: Final = {"Content-Type": JSONAPI, "Referer": TENANT_PAGE}
OTHER_METHODS: Final = ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "TRACE", "CONNECT")
FRAMEWORKS: Final = ("flask", "django", "starlette")


class Outages(MemoryStore):
    """A memory store whose grant read, or whose tenant write, fails on demand."""

    grant_read_down = False
    write_down = False

    def get_grant(self, *args: Any, **kwargs: Any) -> Any:
        if self.grant_read_down:
            raise StoreUnavailableError("get_grant: the store is down")
        return super().get_grant(*args, **kwargs)

    def patch_tenant(self, *args: Any, **kwargs: Any) -> Any:
        if self.write_down:
            raise StoreUnavailableError("patch_tenant: the store is down")
        return super().patch_tenant(*args, **kwargs)


Answer = tuple[int, dict[str, str], bytes]


class Admin:
    """Alice, the tenant admin, signed in through one framework's test client."""

    store: Outages

    def send(self, method: str, body: bytes = b"", headers: dict[str, str] | None = None) -> Answer:
        raise NotImplementedError

    def grant(self) -> None:
        """A fresh re-authentication for this session (test plumbing)."""
        raise NotImplementedError

    def flag(self) -> bool:
        tenant = self.store.get_tenant("acme")
        return tenant is not None and tenant.flag("sensitive_actions_reauth")


class FlaskAdmin(Admin):
    def __init__(self, store: Outages, hook: Any = None, wtf: bool = False) -> None:
        self.store = store

        def setup(app: Any, stepup: Any) -> None:
            if hook is not None:
                stepup.response_handler(lambda decision, request: hook(decision))
            if wtf:
                from flask_wtf.csrf import CSRFProtect

                CSRFProtect(app)

        test_app = flask_app(store=store, clock=SettableClock(), setup=setup)
        self.browser = test_app.client()
        if not wtf:  # the sign-in form itself would need Flask-WTF's token
            assert self.browser.login("alice").status_code == 303

    def send(self, method: str, body: bytes = b"", headers: dict[str, str] | None = None) -> Answer:
        r = self.browser.client.open(URL, method=method, data=body, headers=headers or {})
        return r.status_code, {k.lower(): v for k, v in r.headers.items()}, r.get_data()

    def grant(self) -> None:
        flask_grant(self.browser)


class DjangoAdmin(Admin):
    def __init__(self, store: Outages, site: Any) -> None:
        self.store = store
        self.browser = site.browser("alice")

    def send(self, method: str, body: bytes = b"", headers: dict[str, str] | None = None) -> Answer:
        extra = {
            "HTTP_" + name.upper().replace("-", "_"): value
            for name, value in (headers or {}).items()
            if name != "Content-Type"
        }
        content_type = (headers or {}).get("Content-Type", "application/octet-stream")
        r = self.browser.client.generic(method, URL, body, content_type, **extra)
        return r.status_code, {k.lower(): v for k, v in r.headers.items()}, r.content

    def grant(self) -> None:
        django_grant(self.browser)


class StarletteAdmin(Admin):
    def __init__(self, store: Outages, hook: Any = None) -> None:
        self.store = store
        options = {} if hook is None else {"reauth_response": lambda request, d: hook(d)}
        self.browser = starlette_app(clock=SettableClock(), store=store, **options).browser()
        assert self.browser.login("alice").status_code in (302, 303)

    def send(self, method: str, body: bytes = b"", headers: dict[str, str] | None = None) -> Answer:
        r = self.browser.client.request(method, URL, content=body, headers=headers or {})
        return r.status_code, {k.lower(): v for k, v in r.headers.items()}, r.content

    def grant(self) -> None:
        assert self.browser.client.post("/_test/grant", data={"method": ["pwd"]}).status_code < 400


@contextmanager
def signed_in_admin(framework: str, hook: Any = None) -> Iterator[Admin]:
    """Alice in ``framework``; ``hook(decision)``: the app's own re-authentication answer
    (a response, or ``None`` for stepup's)."""
    store = Outages()
    if framework == "flask":
        yield FlaskAdmin(store, hook)
    elif framework == "django":
        extra = {} if hook is None else {"REAUTH_RESPONSE": lambda request, d: hook(d)}
        with running_site(store, SettableClock(), **extra) as site:
            get_stepup().tenant_settings.ensure("acme")
            yield DjangoAdmin(store, site)
    else:
        starlette = StarletteAdmin(store, hook)
        try:
            yield starlette
        finally:
            starlette.browser.close()


@pytest.fixture(params=FRAMEWORKS)
def admin(request: pytest.FixtureRequest) -> Iterator[Admin]:
    with signed_in_admin(request.param) as signed_in:
        yield signed_in


def _error(answer: Answer, status: int) -> dict[str, Any]:
    """The one error object of a JSON:API refusal with ``status``."""
    got, headers, body = answer
    assert got == status, body
    assert headers["content-type"] == JSONAPI
    assert headers["cache-control"] == "no-store"
    error = only_error(json.loads(body))
    assert error["status"] == str(status)
    assert isinstance(error["title"], str)
    assert error["title"]
    return error


def test_no_fresh_reauthentication_is_a_jsonapi_401(admin: Admin) -> None:
    answer = admin.send("PATCH", BODY, HEADERS)
    error = _error(answer, 401)
    assert error["code"] == "reauth_required"
    assert error["title"] == "Confirm your identity to continue."
    meta = error["meta"]
    assert error["links"] == {"about": meta["reauth_url"]}
    # Every field the guarded JSON endpoints' body carries, in meta.
    assert set(meta) >= {
        "action",
        "sensitivity",
        "methods",
        "alternatives",
        "max_age",
        "last_reauth_at",
        "reauth_url",
    }
    assert meta["action"] == "tenant.settings.update"
    assert meta["methods"] == ["pwd"]
    prompt = urlsplit(meta["reauth_url"])
    assert prompt.path.rstrip("/") == "/stepup/reauth"
    assert parse_qs(prompt.query) == {
        "next": [TENANT_PAGE],
        "action": ["tenant.settings.update"],
    }
    assert answer[1]["www-authenticate"] == SESSION_CHALLENGE
    assert admin.flag() is False


def test_a_grant_read_outage_is_a_jsonapi_503(admin: Admin) -> None:
    admin.store.grant_read_down = True
    answer = admin.send("PATCH", BODY, HEADERS)
    error = _error(answer, 503)
    assert error["code"] == "unavailable"
    assert error["meta"] == {"action": "tenant.settings.update"}
    assert answer[1]["retry-after"] == RETRY_AFTER
    admin.store.grant_read_down = False
    assert admin.flag() is False


def test_a_write_outage_is_the_same_503(admin: Admin) -> None:
    admin.grant()
    admin.store.write_down = True
    answer = admin.send("PATCH", BODY, HEADERS)
    error = _error(answer, 503)
    assert error["code"] == "unavailable"
    assert answer[1]["retry-after"] == RETRY_AFTER
    admin.store.write_down = False
    assert admin.flag() is False


def test_the_outage_titles_are_one_and_translated(admin: Admin) -> None:
    admin.store.grant_read_down = True
    read = _error(admin.send("PATCH", BODY, {**HEADERS, "Accept-Language": "de"}), 503)
    admin.store.grant_read_down = False
    admin.grant()
    admin.store.write_down = True
    write = _error(admin.send("PATCH", BODY, {**HEADERS, "Accept-Language": "de"}), 503)
    assert read["title"] == write["title"]
    assert read["title"] == "Die Einstellungen des Mandanten können gerade nicht geändert werden"


@pytest.mark.parametrize("method", OTHER_METHODS)
def test_every_other_method_is_a_jsonapi_405(admin: Admin, method: str) -> None:
    admin.grant()  # even a session that could PATCH
    status, headers, body = admin.send(method, BODY, HEADERS)
    assert status == 405, body
    assert headers["allow"] == "PATCH"
    assert headers["content-type"] == JSONAPI
    if method != "HEAD":
        error = _error((status, headers, body), 405)
        assert error["code"] == "method_not_allowed"
    assert admin.flag() is False


def test_the_405_needs_no_session_and_no_json(admin: Admin) -> None:
    admin.store.grant_read_down = True  # nothing is read: a 405, not a 503
    answer = admin.send("POST", b"on=true", {"Content-Type": "application/x-www-form-urlencoded"})
    error = _error(answer, 405)
    assert error["code"] == "method_not_allowed"
    assert answer[1]["allow"] == "PATCH"


#: The app's own answer in each framework's response type.
TEAPOTS: Final[dict[str, Any]] = {
    "flask": lambda: ("ask again", 418),
    "django": lambda: DjangoResponse("ask again", status=418),
    "starlette": lambda: PlainTextResponse("ask again", 418),
}


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_the_apps_own_reauthentication_answer_still_wins(framework: str) -> None:
    asked: list[str] = []

    def teapot(decision: Any) -> Any:
        asked.append(decision.action)
        return TEAPOTS[framework]()

    with signed_in_admin(framework, teapot) as admin:
        status, _, body = admin.send("PATCH", BODY, HEADERS)
    assert (status, body) == (418, b"ask again")
    assert asked == ["tenant.settings.update"]


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_an_app_answer_of_none_keeps_the_jsonapi_401(framework: str) -> None:
    with signed_in_admin(framework, lambda decision: None) as admin:
        error = _error(admin.send("PATCH", BODY, HEADERS), 401)
    assert error["code"] == "reauth_required"


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_flask_wtf_does_not_refuse_the_405_first(method: str) -> None:
    """The app's CSRFProtect checks POST, PUT, PATCH and DELETE: the 405 view changes
    nothing, so it is exempt, as from stepup's own check."""
    admin = FlaskAdmin(Outages(), wtf=True)
    status, headers, body = admin.send(method, b"{}", {"Content-Type": JSONAPI})
    assert (status, headers["allow"]) == (405, "PATCH"), body
    assert only_error(json.loads(body))["code"] == "method_not_allowed"
