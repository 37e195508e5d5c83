"""Django: a kept form comes back in the order it was sent, repeated names in their
places (``request.POST`` groups them: item=a&qty=1&item=b came back item, item, qty),
urlencoded or multipart, after the CSRF middleware parsed it."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings

from integrations.django.django_support import Site, set_flag
from integrations.form_order_support import MULTIPART, URLENCODED, body, fields
from integrations.resume_support import resume_form
from stepup.integrations.django.services import get_stepup

CSRF = "csrfmiddlewaretoken"


@settings(
    max_examples=20,
    deadline=None,
    # One site for every example: each revokes the grant it made before the next.
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(urlencoded=fields, multipart=fields)
def test_a_kept_form_comes_back_in_the_order_it_was_sent(
    site: Site, urlencoded: list[tuple[str, str]], multipart: list[tuple[str, str]]
) -> None:
    alice = site.browser("alice")
    assert set_flag(alice).status_code == 200
    user = str(alice.client.session["_auth_user_id"])
    for pairs, kind in ((urlencoded, URLENCODED), (multipart, MULTIPART)):
        token = alice.fields("/stepup/2fa/")[CSRF]
        content_type = URLENCODED if kind == URLENCODED else MULTIPART
        data = body([(CSRF, token), *pairs], kind)
        refused = alice.client.post("/profile/update/", data, content_type=content_type)
        assert refused.status_code == 303
        resumed = alice.reauth(refused["Location"], "correct horse")
        _, sent_again = resume_form(resumed.content.decode())
        assert [field for field in sent_again if field[0] != CSRF] == pairs
        get_stepup().reauth.password_changed(user)  # asked again for the next form


def test_without_djangos_part_reader_the_form_is_kept_in_djangos_order(
    site: Site, monkeypatch: Any
) -> None:
    """The names' order is read with Django's multipart parser, which is no public API:
    when it fails (another Django), the form is still kept, in ``request.POST``'s order,
    never an error."""
    import django.http.multipartparser as multipart
    from django.test import RequestFactory

    from stepup.integrations.django._request import fields_in_order

    pairs = [("item", "a"), ("qty", "1"), ("item", "b")]
    request = RequestFactory().post("/x", body(pairs, MULTIPART), content_type=MULTIPART)
    request.body  # noqa: B018 (kept, as the middleware keeps it)
    assert fields_in_order(request) == pairs  # Django's reader: the order sent

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("this Django reads parts another way")

    monkeypatch.setattr(multipart, "Parser", broken)
    assert fields_in_order(request) == [("item", "a"), ("item", "b"), ("qty", "1")]


def test_a_body_the_client_stopped_sending_is_left_to_the_view(site: Site) -> None:
    """The middleware reads a small multipart body early; a client that went away
    mid-body made that read raise out of the middleware (a 500 on any view), where
    Django's CSRF middleware lets the view answer."""
    import io

    from django.core.handlers.wsgi import WSGIRequest

    from stepup.integrations.django._request import read_form_body
    from stepup.resume import MAX_BYTES

    class GoneAway(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            raise OSError("connection reset by peer")

    request = WSGIRequest(
        {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": "/upload",
            "SERVER_NAME": "testserver",
            "SERVER_PORT": "80",
            "wsgi.url_scheme": "http",
            "CONTENT_TYPE": "multipart/form-data; boundary=XX",
            "CONTENT_LENGTH": "1000",
            "wsgi.input": GoneAway(),
        }
    )
    read_form_body(request, MAX_BYTES)  # no error: the view's own read answers
