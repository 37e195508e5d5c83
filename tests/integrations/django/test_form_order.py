"""Django: a kept form comes back in the order it was sent, repeated names in their
places (``request.POST`` groups them: item=a&qty=1&item=b came back item, item, qty),
urlencoded or multipart, after the CSRF middleware parsed it."""

from __future__ import annotations

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
