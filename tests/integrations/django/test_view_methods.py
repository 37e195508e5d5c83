"""The methods of stepup's Django views: every GET view answers HEAD (the sign-in second
step too), a 405 names every method the path serves, and the second step's CSRF refusal
is JSON for a script, as every other form of stepup's."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import RequestFactory
from django.urls import URLPattern, URLResolver, get_resolver

from integrations.django.django_support import Browser, Site

VERIFY = "/stepup/2fa/verify/"


def _waiting_at_the_second_step(site: Site) -> Browser:
    alice = site.browser("alice")
    alice.enrol()
    alice.logout()
    assert alice.login("alice")["Location"] == VERIFY
    return alice


def test_the_second_step_answers_head(site: Site) -> None:
    alice = _waiting_at_the_second_step(site)
    assert alice.get(VERIFY).status_code == 200
    head = alice.client.head(VERIFY)
    assert head.status_code == 200
    assert head.content == b""


def test_the_second_step_405_names_its_methods(site: Site) -> None:
    refused = site.browser().client.put(VERIFY)
    assert refused.status_code == 405
    assert refused["Allow"] == "GET, HEAD, POST"


def test_adding_an_app_405_names_get_head_and_post(alice: Browser) -> None:
    refused = alice.client.put("/stepup/2fa/devices/add/")
    assert refused.status_code == 405
    assert refused["Allow"] == "GET, HEAD, POST"
    assert alice.client.head("/stepup/2fa/devices/add/").status_code != 405


def test_a_script_failing_csrf_at_the_second_step_gets_json(site: Site) -> None:
    alice = _waiting_at_the_second_step(site)
    refused = alice.post(VERIFY, {"code": "123456"}, HTTP_ACCEPT="application/json")
    assert refused.status_code == 403
    assert refused["Content-Type"].startswith("application/json")
    assert json.loads(refused.content)["error"] == "csrf"
    page = alice.post(VERIFY, {"code": "123456"})  # a browser: Django's CSRF failure page
    assert page.status_code == 403
    assert page["Content-Type"].startswith("text/html")
    assert alice.get("/home/").content.decode() == "home of nobody"  # nothing signed in


def _stepup_views() -> list[tuple[str, object, dict[str, str]]]:
    (stepup,) = [
        p
        for p in get_resolver().url_patterns
        if isinstance(p, URLResolver) and p.namespace == "stepup"
    ]
    return [
        (str(p.name), p.callback, dict.fromkeys(p.pattern.converters, "x"))
        for p in stepup.url_patterns
        if isinstance(p, URLPattern)
    ]


VIEWS = _stepup_views()


@pytest.mark.parametrize(("name", "view", "kwargs"), VIEWS, ids=[v[0] for v in VIEWS])
def test_every_view_answers_head_where_it_answers_get(
    site: Site, name: str, view: Any, kwargs: dict[str, str]
) -> None:
    """A PUT (served nowhere) is a 405 whose Allow lists the methods the view serves;
    wherever that includes GET it includes HEAD."""
    refused = view(RequestFactory().put(f"/stepup/{name}"), **kwargs)
    assert refused.status_code == 405
    allowed = {m.strip() for m in refused["Allow"].split(",")}
    if "GET" in allowed:
        assert "HEAD" in allowed
