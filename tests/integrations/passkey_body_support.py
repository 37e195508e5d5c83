"""Shared by the three frameworks' tests of what a passkey endpoint reads (each
framework's ``test_passkey_bodies.py`` runs these with an adapter for its test app).

The rule, decided once in ``passkey_endpoint.posts_form``: a passkey endpoint's body is
JSON whatever its ``Content-Type`` says, except a browser's form (urlencoded or
multipart), which only the endpoints a page posts to read (the finish endpoints,
rename); a begin endpoint answers a form with 400 ``malformed``. The CSRF token is the
form's field, else the header, whatever the body's type. Before, Starlette took the
token from the header only for a type naming "json" (403 ``csrf`` to a script's
``text/plain``), read a form at a begin, and Flask's begin endpoints read the stream its
form parser had emptied, as ``{}``: a challenge issued for no action.

And the sign-in's second step, once nothing waits any more (the sign-in finished), is
told so (400 ``sign_in_expired``) with the session's valid token in every framework
(Starlette refused the token, 403 ``csrf``); a missing or wrong token while a sign-in
waits is still the 403 ``csrf``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import urlencode

from integrations.passkey_review15 import ORIGIN, Answer
from stepup.testing.webauthn import SoftAuthenticator

P = "/stepup"
REAUTH_BEGIN = P + "/reauth/passkey/begin"
REAUTH_FINISH = P + "/reauth/passkey/finish"
REGISTER_BEGIN = P + "/passkeys/register/begin"
SIGN_IN_BEGIN = P + "/2fa/verify/passkey/begin"
SIGN_IN_FINISH = P + "/2fa/verify/passkey/finish"
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
BOUNDARY = "stepupboundary"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"
UNKNOWN = {"action": "no.such.action"}


class Client(Protocol):
    """One browser of a framework's test app, signed in as alice, as a script sees it."""

    #: The CSRF header's name, and the form field's.
    header: str
    field: str
    user_id: str
    store: Any

    def token(self) -> str:
        """The CSRF token of the passkeys page."""

    def post(self, url: str, body: str, *, content_type: str, headers: Mapping[str, str]) -> Answer:
        """POST ``body`` as ``content_type`` (``""``: no ``Content-Type`` at all)."""

    def page(self, url: str) -> str: ...

    def grant(self) -> None:
        """Test plumbing: a fresh grant for adding a passkey."""

    def second_step(self) -> str:
        """Sign out and in again with the password: the sign-in waits for the passkey;
        the CSRF token of the second step's page."""


def _multipart(fields: Mapping[str, str]) -> str:
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in fields.items()
    ]
    return "".join(parts) + f"--{BOUNDARY}--\r\n"


def _urlencoded(fields: Mapping[str, str] | list[tuple[str, str]]) -> str:
    return urlencode(fields)


def _bodies(client: Client, token: str) -> dict[str, tuple[str, str, dict[str, str]]]:
    """The ways a begin is posted: name -> (body, content type, headers)."""
    asked = {"Accept": JSON}
    with_header = {**asked, client.header: token}
    as_json = json.dumps(UNKNOWN)
    return {
        "json": (as_json, JSON, with_header),
        "json as text/plain": (as_json, "text/plain", with_header),
        "json without a type": (as_json, "", with_header),
        "form, token in its field": (
            _urlencoded({**UNKNOWN, client.field: token}),
            FORM,
            asked,
        ),
        "form, token in the header": (_urlencoded(UNKNOWN), FORM, with_header),
        "multipart, token in the header": (_multipart(UNKNOWN), MULTIPART, with_header),
    }


#: What a begin answers each way it is posted: JSON is read whatever its type, a form
#: is malformed (its token accepted from the field or the header).
JSON_WAYS = ("json", "json as text/plain", "json without a type")
FORM_WAYS = (
    "form, token in its field",
    "form, token in the header",
    "multipart, token in the header",
)


def _error(answer: Answer) -> str:
    return str(answer.json().get("error", ""))


def register(client: Client, key: SoftAuthenticator, name: str = "Work laptop") -> str:
    """A passkey added through the JSON endpoints; its credential id."""
    client.grant()
    token = client.token()
    headers = {"Accept": JSON, client.header: token}
    options = client.post(REGISTER_BEGIN, "{}", content_type=JSON, headers=headers)
    assert options.status == 200, options.text
    body = json.dumps({"credential": key.create(options.json()), "name": name})
    done = client.post(P + "/passkeys/register/finish", body, content_type=JSON, headers=headers)
    assert done.status == 200, done.text
    return str(done.json()["passkey"]["id"])


def a_reauth_begin_reads_json_whatever_its_type(client: Client) -> None:
    register(client, SoftAuthenticator(origin=ORIGIN, counter=1))
    token = client.token()
    for way, (body, content_type, headers) in _bodies(client, token).items():
        answer = client.post(REAUTH_BEGIN, body, content_type=content_type, headers=headers)
        expected = "unknown_action" if way in JSON_WAYS else "malformed"
        assert (answer.status, _error(answer)) == (400, expected), (way, answer.text[:300])


def a_register_begin_refuses_a_form(client: Client) -> None:
    """The action is not read here: JSON gets the options, a form its 400."""
    client.grant()
    token = client.token()
    for way, (body, content_type, headers) in _bodies(client, token).items():
        answer = client.post(REGISTER_BEGIN, body, content_type=content_type, headers=headers)
        if way in JSON_WAYS:
            assert answer.status == 200, (way, answer.text[:300])
            assert "challenge" in answer.json()["publicKey"]
        else:
            assert (answer.status, _error(answer)) == (400, "malformed"), (way, answer.text[:300])


def a_sign_in_begin_refuses_a_form(client: Client) -> None:
    register(client, SoftAuthenticator(origin=ORIGIN, counter=1))
    token = client.second_step()
    for way, (body, content_type, headers) in _bodies(client, token).items():
        answer = client.post(SIGN_IN_BEGIN, body, content_type=content_type, headers=headers)
        if way in JSON_WAYS:
            assert answer.status == 200, (way, answer.text[:300])
            assert "challenge" in answer.json()["publicKey"]
        else:
            assert (answer.status, _error(answer)) == (400, "malformed"), (way, answer.text[:300])


def a_form_without_a_token_is_refused_first(client: Client) -> None:
    """A form at a begin with no token anywhere: the 403 ``csrf``, before its body."""
    register(client, SoftAuthenticator(origin=ORIGIN, counter=1))
    answer = client.post(
        REAUTH_BEGIN, _urlencoded(UNKNOWN), content_type=FORM, headers={"Accept": JSON}
    )
    assert (answer.status, _error(answer)) == (403, "csrf"), answer.text[:300]


def a_reauth_finish_reads_json_whatever_its_type(client: Client) -> None:
    """A finish takes the page's form, and JSON under any other type (answered as JSON)."""
    register(client, SoftAuthenticator(origin=ORIGIN, counter=1))
    headers = {"Accept": JSON, client.header: client.token()}
    body = json.dumps({**UNKNOWN, "credential": {}})
    for content_type in ("text/plain", ""):
        answer = client.post(REAUTH_FINISH, body, content_type=content_type, headers=headers)
        assert (answer.status, _error(answer)) == (400, "unknown_action"), answer.text[:300]


def a_finished_sign_in_is_told_expired(client: Client) -> None:
    """While the sign-in waits, a missing or wrong token is the 403 ``csrf``; once it
    finished, the signed-in session's own token is told it expired (400), at both steps."""
    key = SoftAuthenticator(origin=ORIGIN, counter=1)
    register(client, key)
    token = client.second_step()
    for forged in ({}, {client.header: "forged"}):
        refused = client.post(
            SIGN_IN_BEGIN, "{}", content_type=JSON, headers={"Accept": JSON, **forged}
        )
        assert (refused.status, _error(refused)) == (403, "csrf"), refused.text[:300]
    headers = {"Accept": JSON, client.header: token}
    options = client.post(SIGN_IN_BEGIN, "{}", content_type=JSON, headers=headers)
    assert options.status == 200, options.text
    body = json.dumps({"credential": key.get(options.json())})
    done = client.post(SIGN_IN_FINISH, body, content_type=JSON, headers=headers)
    assert done.status == 200, done.text
    renewed = {"Accept": JSON, client.header: done.json()["csrf_token"]}
    for url, sent in ((SIGN_IN_BEGIN, "{}"), (SIGN_IN_FINISH, body)):
        answer = client.post(url, sent, content_type=JSON, headers=renewed)
        assert (answer.status, _error(answer)) == (400, "sign_in_expired"), (url, answer.text)


def a_name_sent_twice_is_no_name(client: Client) -> None:
    """A browser form's ``name`` sent twice (rename, and the registration's form): no
    name, as in every framework, never the first or the last value."""
    credential_id = register(client, SoftAuthenticator(origin=ORIGIN, counter=1))
    token = client.token()
    twice = _urlencoded([("name", "Desk"), ("name", "Other"), (client.field, token)])
    client.post(
        f"{P}/passkeys/{credential_id}/rename",
        twice,
        content_type=FORM,
        headers={"Accept": "text/html"},
    )
    client.grant()
    token = client.token()
    key = SoftAuthenticator(origin=ORIGIN, counter=1)
    headers = {"Accept": JSON, client.header: token}
    options = client.post(REGISTER_BEGIN, "{}", content_type=JSON, headers=headers)
    assert options.status == 200, options.text
    credential = json.dumps(key.create(options.json()))
    fields = [("credential", credential), ("name", "Desk"), ("name", "Other")]
    client.post(
        P + "/passkeys/register/finish",
        _urlencoded([*fields, (client.field, token)]),
        content_type=FORM,
        headers={"Accept": "text/html"},
    )
    names = {passkey.name for passkey in client.store.list_passkeys(client.user_id)}
    assert len(client.store.list_passkeys(client.user_id)) == 2, names
    assert not names & {"Desk", "Other"}, names
