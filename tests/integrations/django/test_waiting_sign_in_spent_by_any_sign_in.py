"""Django: every sign-in in the browser spends the sign-in it had waiting for a second
factor, with or without a second step of its own: stepup's ``begin_sign_in`` (also when
it answers ``None``), the app's own ``login()`` (with or without
``SECOND_STEP_FOR_EVERY_SIGN_IN``) and the same user signed in again. Django's
``login()`` keeps the session's data, so without that a copy of a signed session cookie
taken while bob waited would finish bob's sign-in after alice signed in."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest
from django.http import HttpRequest, HttpResponse
from django.test import override_settings
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt

from integrations.django.django_support import Browser, Site
from integrations.django.test_waiting_sign_in_once import (
    EXPIRED,
    SIGNED_COOKIES,
    VERIFY,
    Copy,
    _enrolled_bob,
    _refused_as_expired,
    _site,
    _waiting,
    _who,
)
from stepup.testing import SettableClock

ALICE = {"username": "alice", "password": "correct horse", "next": "/home/"}


@csrf_exempt
def begin_only(request: HttpRequest) -> HttpResponse:
    """A login view's first half: ``begin_sign_in`` for a user without a second factor,
    who is not signed in (yet)."""
    answer = request.stepup.begin_sign_in(request.POST["user_id"])
    return HttpResponse("no second step" if answer is None else "second step")


urlpatterns = [
    path("begin-only/", begin_only),
    path("", include("integrations.django.testapp.urls")),
]


@pytest.fixture
def site(clock: SettableClock) -> Iterator[Site]:
    with override_settings(ROOT_URLCONF=sys.modules[__name__]), _site(SIGNED_COOKIES, clock) as s:
        yield s


def _alice_pk() -> str:
    from django.contrib.auth import get_user_model

    return str(get_user_model()._default_manager.get(username="alice").pk)


def _bob_finishes_from_a_copy_refused(site: Site, copy: Copy, secret: str) -> None:
    _refused_as_expired(copy.post({"code": site.totp_code(secret)}), copy.browser)


@pytest.mark.parametrize("url", ["/login/", "/login/elsewhere/"])
def test_a_sign_in_without_a_second_step_spends_the_waiting_one(site: Site, url: str) -> None:
    """alice (no second factor) signs in where bob waited: through the login view
    (``begin_sign_in`` answers ``None``, then ``login()``) or another app's ``login()``."""
    secret, _ = _enrolled_bob(site)
    owner = _waiting(site)
    copy = Copy(site, owner)
    assert owner.client.post(url, {**ALICE, "to": "/home/"}).status_code in (302, 303)
    assert _who(owner) == "alice"
    assert owner.get(VERIFY).status_code == 400  # nothing waits in her session
    _bob_finishes_from_a_copy_refused(site, copy, secret)


def test_without_a_second_step_for_every_sign_in_login_spends_it_too(
    clock: SettableClock,
) -> None:
    with (
        override_settings(ROOT_URLCONF=sys.modules[__name__]),
        _site(SIGNED_COOKIES, clock, SECOND_STEP_FOR_EVERY_SIGN_IN=False) as site,
    ):
        secret, _ = _enrolled_bob(site)
        owner = _waiting(site)
        copy = Copy(site, owner)
        assert owner.client.post("/login/elsewhere/", {**ALICE, "to": "/home/"}).status_code == 302
        assert _who(owner) == "alice"
        _bob_finishes_from_a_copy_refused(site, copy, secret)


def test_begin_sign_in_answering_none_spends_it(site: Site) -> None:
    """The app has not signed alice in yet: her sign-in began, bob's is abandoned."""
    secret, _ = _enrolled_bob(site)
    owner = _waiting(site)
    copy = Copy(site, owner)
    began = owner.client.post("/begin-only/", {"user_id": _alice_pk()})
    assert began.content == b"no second step"
    assert owner.get(VERIFY).status_code == 400
    _bob_finishes_from_a_copy_refused(site, copy, secret)


def test_the_same_user_signed_in_again_spends_it(site: Site) -> None:
    """alice is signed in; bob types his password in her browser and waits; alice's
    sign-in made again (a view that renews it) stands, and bob's is spent."""
    secret, _ = _enrolled_bob(site)
    owner = Browser(site)
    assert owner.client.post("/login/", ALICE).status_code == 303
    bob = {"username": "bob", "password": "battery staple", "next": "/home/"}
    assert owner.client.post("/login/", bob)["Location"] == VERIFY
    copy = Copy(site, owner)
    assert owner.get("/login/again/").content == b"renewed"
    assert _who(owner) == "alice"
    answer = copy.post({"code": site.totp_code(secret)})
    assert (answer.status_code, EXPIRED in answer.content.decode()) == (400, True)
    assert _who(copy.browser) == "alice"  # the copy holds alice's session, never bob's


def test_a_sign_in_spends_a_held_sign_in_of_another_user(site: Site) -> None:
    """bob's ``login()`` elsewhere was held for his code; alice (no second factor) signs
    in: bob's held sign-in is spent (only bob signed in again keeps it)."""
    secret, _ = _enrolled_bob(site)
    owner = Browser(site)
    bob = {"username": "bob", "password": "battery staple", "to": "/home/"}
    assert owner.client.post("/login/elsewhere/", bob)["Location"] == VERIFY
    copy = Copy(site, owner)
    assert owner.client.post("/login/elsewhere/", {**ALICE, "to": "/home/"}).status_code == 302
    assert _who(owner) == "alice"
    _bob_finishes_from_a_copy_refused(site, copy, secret)


def test_bob_still_finishes_his_own_waiting_sign_in(site: Site) -> None:
    """Nobody else signed in: the waiting sign-in is untouched and completes."""
    secret, _ = _enrolled_bob(site)
    owner = _waiting(site)
    done: Any = owner.form(VERIFY, {"code": site.totp_code(secret)}, page=VERIFY)
    assert done.status_code == 303
    assert _who(owner) == "bob"
