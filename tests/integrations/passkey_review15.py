"""Passkey review 15, the journeys every framework must answer the same way (each
framework's ``test_passkey_review15.py`` runs them with an adapter for its test app):

- a crafted attestation statement is the 400 ``invalid``, never a 500;
- after a passkey re-authentication the JSON answer hands over the renewed session's
  CSRF token, the old one is refused, the new one works;
- a script's CSRF failure is the JSON 403 ``csrf`` (a browser's stays a page);
- a rule asking for a device-bound passkey offers and accepts only those;
- a user at the passkey limit gets 409 ``limit`` before any ceremony, and the page says
  why instead of offering the form."""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass
from typing import Any, Protocol

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from stepup.passkeys import Passkeys, RelyingParty
from stepup.policy import Policy, Rule, Sensitivity
from stepup.subject import Subject
from stepup.testing.webauthn import SoftAuthenticator

ORIGIN = "http://localhost"
P = "/stepup"
#: Device-bound first, else the password: a synced passkey must not be offered for it.
VAULT_OPEN = "vault.open"
#: Only a device-bound passkey: a user with none is told so, not shown a picker.
VAULT_SEAL = "vault.seal"
FORM = "application/x-www-form-urlencoded"


def rules() -> dict[str, Rule]:
    return {
        VAULT_OPEN: Rule(
            Sensitivity.SENSITIVE,
            always=True,
            accept=(("hwk", "user"), ("primary",)),
            description="Opening the vault",
        ),
        VAULT_SEAL: Rule(
            Sensitivity.SENSITIVE, always=True, accept=(("hwk", "user"),), description="Sealing"
        ),
    }


def with_vault(base: Policy) -> Policy:
    """A framework's test catalog with the two vault rules."""
    return base.extend(rules())


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    text: str

    def json(self) -> Any:
        assert "json" in self.content_type, (self.status, self.content_type, self.text[:200])
        return json.loads(self.text)


class Client(Protocol):
    """One signed-in browser of a framework's test app (alice), as a script sees it."""

    user_id: str
    store: Any

    def token(self) -> str:
        """The CSRF token of the passkeys page, as a single-page app is given it."""

    def post(
        self, url: str, body: str, token: str, *, content_type: str, accept: str
    ) -> Answer: ...

    def page(self, url: str) -> str: ...

    def grant(self) -> None:
        """Test plumbing: a fresh grant for adding and removing passkeys."""


def post_json(client: Client, url: str, body: Any, token: str) -> Answer:
    return client.post(
        P + url, json.dumps(body), token, content_type="application/json", accept="application/json"
    )


def register(client: Client, key: SoftAuthenticator, name: str = "Key") -> Answer:
    client.grant()
    token = client.token()
    options = post_json(client, "/passkeys/register/begin", {}, token)
    assert options.status == 200, options.text
    body = {"credential": key.create(options.json()), "name": name}
    return post_json(client, "/passkeys/register/finish", body, token)


def _rsa_attestation_certificate() -> bytes:
    """A self-signed RSA certificate with the subject packed attestation asks for."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Test"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Authenticator Attestation"),
            x509.NameAttribute(NameOID.COMMON_NAME, "x"),
        ]
    )
    start = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.DER)


# the journeys ---------------------------------------------------------------------------


def a_crafted_attestation_is_refused(client: Client) -> None:
    """An ES256 packed statement over an RSA certificate (python-fido2 raises an
    AssertionError there): 400 ``invalid``, nothing stored."""
    statement = {"alg": -7, "sig": b"\x30\x00", "x5c": [_rsa_attestation_certificate()]}
    key = SoftAuthenticator(origin=ORIGIN, attestation="packed", attestation_statement=statement)
    answer = register(client, key)
    assert answer.status == 400, answer.text
    assert answer.json()["error"] == "invalid"
    assert client.store.list_passkeys(client.user_id) == ()


def the_renewed_csrf_token_is_handed_over(client: Client) -> None:
    """The single-page journey of docs/passkeys.md: adding a second passkey asks for a
    re-authentication with the first; its answer carries the renewed session's token,
    which the next call sends (the page's old token is refused, as JSON)."""
    key = SoftAuthenticator(origin=ORIGIN, counter=1)
    assert register(client, key).status == 200
    token = client.token()  # what the single-page app was given
    asked = post_json(client, "/passkeys/register/begin", {}, token)
    assert asked.status == 401
    assert asked.json()["error"] == "reauth_required"
    options = post_json(client, "/reauth/passkey/begin", {"action": "passkey.add"}, token)
    assert options.status == 200, options.text
    body = {"action": "passkey.add", "credential": key.get(options.json())}
    done = post_json(client, "/reauth/passkey/finish", body, token)
    assert done.status == 200, done.text
    renewed = done.json()["csrf_token"]
    assert renewed
    assert renewed != token
    stale = post_json(client, "/passkeys/register/begin", {}, token)
    assert (stale.status, stale.json()["error"]) == (403, "csrf")
    assert "security token" in stale.json()["title"]
    fresh = post_json(client, "/passkeys/register/begin", {}, renewed)
    assert fresh.status == 200, fresh.text
    assert "challenge" in fresh.json()["publicKey"]


def a_scripts_csrf_failure_is_json(client: Client) -> None:
    """A script's request with a bad token: the JSON 403 ``csrf``, whatever its body's
    type; a browser's form post with one still gets a page."""
    for content_type, body in (("application/json", "{}"), (FORM, "action=api_key.read")):
        answer = client.post(
            P + "/reauth/passkey/begin",
            body,
            "forged",
            content_type=content_type,
            accept="application/json",
        )
        assert answer.status == 403, (content_type, answer.status, answer.text[:200])
        assert answer.json()["error"] == "csrf"
    page = client.post(
        P + "/passkeys/register/finish", "name=x", "forged", content_type=FORM, accept="text/html"
    )
    assert page.status in (400, 403)
    assert "text/html" in page.content_type


def _allowed(options: Answer) -> list[str]:
    return [c["id"] for c in options.json()["publicKey"]["allowCredentials"]]


def a_device_bound_rule_takes_only_device_bound_passkeys(client: Client) -> None:
    """``vault.open`` offers a device-bound passkey: only that one is listed, and the
    synced one's answer is refused with the reason (nothing recorded: asked again)."""
    device = SoftAuthenticator(origin=ORIGIN, counter=1, backup_eligible=False)
    synced = SoftAuthenticator(origin=ORIGIN, backup_eligible=True)
    assert register(client, device, "Key").status == 200
    assert register(client, synced, "Phone").status == 200
    token = client.token()
    begin = {"action": VAULT_OPEN}
    options = post_json(client, "/reauth/passkey/begin", begin, token)
    assert options.status == 200, options.text
    device_id = options.json()["publicKey"]["allowCredentials"][0]["id"]
    assert _allowed(options) == [device_id]
    body = {"action": VAULT_OPEN, "credential": synced.get(options.json())}
    refused = post_json(client, "/reauth/passkey/finish", body, token)
    assert refused.status == 400, refused.text
    assert refused.json()["error"] == "needs_device_bound"
    assert "single device" in refused.json()["title"]
    options = post_json(client, "/reauth/passkey/begin", begin, token)
    assert _allowed(options) == [device_id]  # still asked: nothing was recorded
    body = {"action": VAULT_OPEN, "credential": device.get(options.json())}
    done = post_json(client, "/reauth/passkey/finish", body, token)
    assert done.status == 200, done.text


def no_device_bound_passkey_is_said_so(client: Client) -> None:
    """``vault.seal`` takes only a device-bound passkey and the user has only a synced
    one: the begin says which kind to add (409), it offers no picker."""
    synced = SoftAuthenticator(origin=ORIGIN, backup_eligible=True)
    assert register(client, synced).status == 200
    answer = post_json(client, "/reauth/passkey/begin", {"action": VAULT_SEAL}, client.token())
    assert answer.status == 409, answer.text
    assert answer.json()["error"] == "no_device_bound_passkey"
    assert "publicKey" not in answer.json()


def fill_up(client: Client, limit: int = 10) -> None:
    """Test plumbing: the user gets ``limit`` passkeys straight through the core."""
    core = Passkeys(client.store, RelyingParty(id="localhost", name="x", origins=(ORIGIN,)))
    subject = Subject(client.user_id, "plumbing-session")
    for _ in range(limit):
        key = SoftAuthenticator(origin=ORIGIN)
        assert core.finish_registration(
            subject, key.create(core.begin_registration(subject, "alice"))
        )


def the_limit_is_refused_before_any_ceremony(client: Client) -> None:
    fill_up(client)
    client.grant()
    answer = post_json(client, "/passkeys/register/begin", {}, client.token())
    assert answer.status == 409, answer.text
    assert answer.json()["error"] == "limit"
    assert "publicKey" not in answer.json()
    page = client.page(P + "/passkeys")
    assert 'data-stepup-passkey="register"' not in page
    assert "You have as many passkeys as allowed" in page


def below_the_limit_the_form_is_offered(client: Client) -> None:
    fill_up(client, 9)
    page = client.page(P + "/passkeys")
    assert 'data-stepup-passkey="register"' in page
    assert "You have as many passkeys as allowed" not in page


def a_store_failure_while_recording_is_a_503(client: Client) -> None:
    """The passkey was right but the grant could not be stored: a typed 503 the script
    can retry (it was a 500 in Flask and Django), nothing recorded."""
    from stepup.errors import StoreUnavailableError

    key = SoftAuthenticator(origin=ORIGIN, counter=1)
    assert register(client, key).status == 200
    token = client.token()
    options = post_json(client, "/reauth/passkey/begin", {"action": "passkey.add"}, token)
    assert options.status == 200, options.text
    body = {"action": "passkey.add", "credential": key.get(options.json())}

    def down(*args: Any, **kwargs: Any) -> None:
        raise StoreUnavailableError("put_grant: the store is down")

    client.store.put_grant = down
    try:
        done = post_json(client, "/reauth/passkey/finish", body, token)
    finally:
        del client.store.put_grant
    assert done.status == 503, done.text
    assert done.json()["error"] == "unavailable"
