"""Hostile input, configuration, metadata, stores that fail, the async API, reprs."""

from __future__ import annotations

import base64
import re
import socket
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from saml2.server import Server

from idp.saml.saml_idp import (
    ACS_URL,
    ALICE,
    ASSERTION_NS,
    DSIG_NS,
    IDP_ID,
    METADATA_NS,
    PROTOCOL_NS,
    SP_ID,
    KeyPair,
    TestIdP,
    World,
    decode,
    element,
    encode,
    idp_metadata,
    make_config,
    qname,
    saml_subject,
)
from stepup.adapters.idp.saml import (
    AsyncSAMLServiceProvider,
    SAMLReason,
    SAMLServiceProvider,
    SAMLServiceProviderConfig,
)
from stepup.adapters.storage import MemoryStore
from stepup.adapters.storage.redis import AsyncRedisStore, RedisStore
from stepup.errors import ConfigurationError, StoreUnavailableError
from stepup.records import Challenge
from stepup.testing import SettableClock
from support import REDIS_URL, need, port_open

pytestmark = pytest.mark.saml

BOMB = (
    '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa">'
    '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>'
    '<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol">&c;</samlp:Response>'
)
EXTERNAL = (
    '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    '<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol">&x;</samlp:Response>'
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    junk=st.one_of(
        st.text(max_size=200),
        st.binary(max_size=200).map(lambda b: base64.b64encode(b).decode()),
        st.text(max_size=200).map(lambda t: base64.b64encode(t.encode()).decode()),
        st.sampled_from(["", "====", "PD94", "<Response/>", encode("<a>"), encode(BOMB)]),
    )
)
def test_junk_is_malformed_never_an_exception(world: World, junk: str) -> None:
    outcome = world.sp.complete(saml_subject(), junk)
    assert not outcome.ok
    assert outcome.reason is SAMLReason.MALFORMED


@pytest.mark.parametrize("xml", [BOMB, EXTERNAL])
def test_entity_tricks_are_refused(world: World, xml: str) -> None:
    outcome = world.sp.complete(saml_subject(), encode(xml))
    assert outcome.reason is SAMLReason.MALFORMED
    assert outcome.detail == "dtd"  # entities need a DTD, refused before they are read


def test_oversized_and_non_string_input_is_malformed(world: World) -> None:
    huge = "A" * (600 * 1024)
    for value in (huge, None, 42, b""):
        outcome = world.sp.complete(saml_subject(), value)  # type: ignore[arg-type]
        assert outcome.reason is SAMLReason.MALFORMED


def test_a_response_split_over_lines_is_read(world: World) -> None:
    """Browsers and proxies may wrap the base64 form field."""
    subject = saml_subject()
    request = world.idp.receive(world.sp.start(subject, return_to="/").url)
    response = world.idp.answer(request, ALICE)
    wrapped = "\r\n".join(response[i : i + 76] for i in range(0, len(response), 76))
    assert world.sp.complete(subject, wrapped).ok


def test_encrypted_assertions_are_not_read(world: World) -> None:
    subject = saml_subject()
    request = world.idp.receive(world.sp.start(subject, return_to="/").url)
    xml = decode(world.idp.answer(request, ALICE, sign_response=False))
    name = qname(xml, ASSERTION_NS, "EncryptedAssertion")
    encrypted = xml.replace(element(xml, ASSERTION_NS, "Assertion"), f"<{name}><x/></{name}>")
    outcome = world.sp.complete(subject, encode(encrypted))
    assert outcome.reason is SAMLReason.MALFORMED
    assert outcome.detail == "encrypted_assertion"


_ATTRIBUTE = re.compile(r'\s[\w:]+="[^"]*"')
_TEXT = re.compile(r">([^<]+)<")


@pytest.fixture
def signed_answer(world: World) -> tuple[str, Challenge]:
    """A response signed twice by the IdP, and the challenge it answers (kept aside)."""
    request = world.idp.receive(world.sp.start(saml_subject(), return_to="/").url)
    xml = decode(world.idp.answer(request, ALICE))
    challenge = world.store.take_challenge(request.id, world.clock())
    assert challenge is not None
    return xml, challenge


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_a_mutated_response_never_crashes_and_never_passes(
    world: World, signed_answer: tuple[str, Challenge], data: st.DataObject
) -> None:
    xml, challenge = signed_answer
    world.store.put_challenge(challenge)  # every example answers a pending request
    root = xml.index("<" + qname(xml, PROTOCOL_NS, "Response"))
    # Neither signed nor read: the signatures' Id and the certificate copies in KeyInfo
    # (keys come from the IdP metadata only).
    key_info = qname(xml, DSIG_NS, "KeyInfo")
    ignored = [m.span() for m in re.finditer(f"<{key_info}>.*?</{key_info}>", xml)]
    if data.draw(st.booleans(), label="drop an attribute"):
        hit = data.draw(st.sampled_from(list(_ATTRIBUTE.finditer(xml, root))))
        start, end, new = hit.start(), hit.end(), ""
        harmless = hit.group(0).startswith(' Id="Signature')
    else:
        hit = data.draw(st.sampled_from(list(_TEXT.finditer(xml, root))))
        start, end = hit.span(1)
        new = data.draw(st.sampled_from(["", "x", hit.group(1) + "0", hit.group(1)[::-1]]))
        harmless = new == hit.group(1) or any(a <= start and end <= b for a, b in ignored)
    outcome = world.sp.complete(saml_subject(), encode(xml[:start] + new + xml[end:]))
    assert isinstance(outcome.reason, SAMLReason)
    if not harmless:
        assert not outcome.ok, outcome


# -- nothing secret shows ---------------------------------------------------------------


def test_reprs_show_no_response_no_request_and_no_name_id(world: World) -> None:
    subject = saml_subject()
    redirect = world.sp.start(subject, return_to="/")
    request = world.idp.receive(redirect.url)
    response = world.idp.answer(request, ALICE)
    outcome = world.sp.complete(subject, response)
    for text in (repr(outcome), str(outcome), repr(redirect), repr(world.sp)):
        assert response[:40] not in text
        assert "SAMLRequest" not in text
        assert ALICE not in text
    assert str(world.config.sp_key_file) not in repr(world.sp)


def test_store_failure_fails_closed(keys: dict[str, KeyPair], idp_server: Server) -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    clock = SettableClock(time.time())
    down = SAMLServiceProvider(
        make_config(keys), RedisStore(f"redis://127.0.0.1:{port}/0"), clock=clock
    )
    with pytest.raises(StoreUnavailableError) as raised:
        down.start(saml_subject(), return_to="/")
    assert str(port) not in str(raised.value)

    # A response to a request kept by a healthy store, completed while the store is down.
    up = SAMLServiceProvider(make_config(keys), MemoryStore(), clock=clock)
    idp = TestIdP(idp_server)
    request = idp.receive(up.start(saml_subject(), return_to="/").url)
    outcome = down.complete(saml_subject(), idp.answer(request, ALICE))
    assert outcome.reason is SAMLReason.UNAVAILABLE
    assert not outcome


# -- async, on a real Redis ----------------------------------------------------------


async def test_async_provider_on_redis(keys: dict[str, KeyPair], idp_server: Server) -> None:
    url = urlsplit(REDIS_URL)
    need(port_open(url.hostname or "127.0.0.1", url.port or 6379), "Redis is not running")
    clock = SettableClock(time.time())
    async with AsyncRedisStore(REDIS_URL, prefix=f"test-saml-{uuid.uuid4().hex}:") as store:
        sp = AsyncSAMLServiceProvider(make_config(keys), store, clock=clock)
        idp = TestIdP(idp_server)
        subject = saml_subject()
        digest = "abababababababababababababababababababababababababababababababab"
        redirect = await sp.start(
            subject, return_to="/billing", action="user.update", transaction=digest
        )
        request = idp.receive(redirect.url)
        response = idp.answer(request, ALICE)
        outcome = await sp.complete(subject, response, request.relay_state)
        assert outcome.ok
        assert (outcome.return_to, outcome.action, outcome.transaction) == (
            "/billing",
            "user.update",
            digest,
        )
        replay = await sp.complete(subject, response, request.relay_state)
        assert replay.reason is SAMLReason.UNKNOWN_REQUEST

        request = idp.receive((await sp.start(subject, return_to="/")).url)
        clock.advance(sp.config.challenge_ttl + 1)
        expired = await sp.complete(subject, idp.answer(request, ALICE))
        assert expired.reason is SAMLReason.EXPIRED


# -- configuration and metadata -------------------------------------------------------


def test_sp_metadata_describes_what_the_idp_needs(world: World, keys: dict[str, KeyPair]) -> None:
    metadata = world.sp.metadata()
    assert f'entityID="{SP_ID}"' in metadata
    assert f'Location="{ACS_URL}"' in metadata
    assert 'AuthnRequestsSigned="true"' in metadata
    assert 'WantAssertionsSigned="true"' in metadata
    assert "HTTP-POST" in metadata
    cert = "".join(keys["sp"].cert.read_text().splitlines()[1:-1])
    assert cert in metadata.replace("\n", "")
    # No weak algorithm is named (outside the certificate's base64, which is random and
    # can spell "md5" by chance).
    described = metadata.replace("\n", "").replace(cert, "")
    assert "md5" not in described.lower()
    assert "sha1" not in described.lower()


def test_idp_metadata_may_be_a_file(keys: dict[str, KeyPair], tmp_path: Path) -> None:
    path = tmp_path / "idp.xml"
    path.write_text(idp_metadata(keys["idp"]))
    sp = SAMLServiceProvider(make_config(keys, idp_metadata=path), MemoryStore())
    assert sp.idp_entity_id == IDP_ID


def test_a_path_given_as_str_is_a_clear_error(keys: dict[str, KeyPair], tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"pathlib\.Path"):
        make_config(keys, idp_metadata=str(tmp_path / "idp.xml"))
    with pytest.raises(ConfigurationError, match="not found"):
        SAMLServiceProvider(make_config(keys, idp_metadata=tmp_path / "missing.xml"), MemoryStore())


def test_several_idps_need_a_choice(keys: dict[str, KeyPair]) -> None:
    one = idp_metadata(keys["idp"])
    other = idp_metadata(keys["impostor"], "https://idp2.example.test/metadata")

    def body(xml: str) -> str:
        return xml[xml.index("<" + qname(xml, METADATA_NS, "EntityDescriptor")) :]

    both = (
        '<ns0:EntitiesDescriptor xmlns:ns0="urn:oasis:names:tc:SAML:2.0:metadata">'
        f"{body(one)}{body(other)}</ns0:EntitiesDescriptor>"
    )
    with pytest.raises(ConfigurationError, match="idp_entity_id"):
        SAMLServiceProvider(make_config(keys, idp_metadata=both), MemoryStore())
    chosen = SAMLServiceProvider(
        make_config(keys, idp_metadata=both, idp_entity_id=IDP_ID), MemoryStore()
    )
    assert chosen.idp_entity_id == IDP_ID
    with pytest.raises(ConfigurationError, match="not an IdP"):
        SAMLServiceProvider(
            make_config(keys, idp_metadata=both, idp_entity_id="https://nope.test"), MemoryStore()
        )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"sp_entity_id": ""}, "sp_entity_id"),
        ({"acs_url": "  "}, "acs_url"),
        ({"max_skew": -1}, "max_skew"),
        ({"max_skew": 301}, "max_skew"),
        ({"max_skew": float("nan")}, "max_skew"),
        ({"challenge_ttl": 0}, "challenge_ttl"),
        ({"challenge_ttl": True}, "challenge_ttl"),
        ({"authn_context": "urn:x"}, "authn_context"),
        ({"sp_key_file": None, "sp_cert_file": None}, "sign_requests"),
        ({"sign_requests": False, "sp_cert_file": None}, "go together"),
    ],
)
def test_bad_settings_are_refused_at_start_up(
    keys: dict[str, KeyPair], overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        make_config(keys, **overrides)


def test_an_idp_without_redirect_sso_is_refused(keys: dict[str, KeyPair]) -> None:
    post_only = idp_metadata(keys["idp"]).replace("bindings:HTTP-Redirect", "bindings:HTTP-POST")
    assert "HTTP-Redirect" not in post_only
    with pytest.raises(ConfigurationError, match="HTTP-Redirect"):
        SAMLServiceProvider(make_config(keys, idp_metadata=post_only), MemoryStore())


def test_missing_xmlsec1_is_a_clear_error(keys: dict[str, KeyPair], tmp_path: Path) -> None:
    config = make_config(keys, xmlsec_binary=str(tmp_path / "no-xmlsec1"))
    with pytest.raises(ConfigurationError, match="xmlsec1"):
        SAMLServiceProvider(config, MemoryStore())


def test_config_is_a_plain_value(keys: dict[str, KeyPair]) -> None:
    config = make_config(keys)
    assert isinstance(config, SAMLServiceProviderConfig)
    assert config.max_skew == 60
    assert config.challenge_ttl == 600
    assert "EntityDescriptor" not in repr(config)
    assert SP_ID in repr(config)
