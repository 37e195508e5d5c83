"""The NameID must be the identifier that was asked for: the Format requested in the
NameIDPolicy (SAML core 3.4.1.1: identical, unless "unspecified" was requested; an absent
Format is "unspecified"), and qualified by this IdP if qualified at all. The same text
in another Format (an e-mail address, a transient id) or from another IdP's namespace is
not the identifier the session signed in with: ``wrong_subject``."""

from __future__ import annotations

import time

import pytest
from saml2.saml import (
    AUTHN_PASSWORD_PROTECTED,
    NAMEID_FORMAT_EMAILADDRESS,
    NAMEID_FORMAT_PERSISTENT,
    NAMEID_FORMAT_TRANSIENT,
    NAMEID_FORMAT_UNSPECIFIED,
    NameID,
)
from saml2.server import Server

from idp.saml.saml_idp import (
    ALICE,
    IDP_ID,
    RSA_SHA256,
    SHA256,
    SP_ID,
    KeyPair,
    TestIdP,
    encode,
    make_config,
    saml_subject,
)
from stepup.adapters.idp.saml import SAMLReason, SAMLServiceProvider
from stepup.adapters.storage import MemoryStore
from stepup.errors import ConfigurationError
from stepup.testing import SettableClock

pytestmark = pytest.mark.saml


def answer(
    keys: dict[str, KeyPair], server: Server, name_id_format: str | None, name_id: NameID
) -> tuple[str, str, str | None, SAMLServiceProvider]:
    """An SP configured with ``name_id_format``, the request it sent and the IdP's
    signed answer naming ``name_id``."""
    sp = SAMLServiceProvider(
        make_config(keys, name_id_format=name_id_format),
        MemoryStore(),
        clock=SettableClock(time.time()),
    )
    idp = TestIdP(server)
    request = idp.receive(sp.start(saml_subject(), return_to="/x").url)
    policy = request.message.name_id_policy
    assert (policy.format if policy is not None else None) == name_id_format
    idp.log_in(ALICE)
    xml = server.create_authn_response(
        {},
        in_response_to=request.id,
        destination=request.message.assertion_consumer_service_url,
        sp_entity_id=SP_ID,
        name_id=name_id,
        authn={"class_ref": AUTHN_PASSWORD_PROTECTED, "authn_instant": int(time.time())},
        sign_response=True,
        sign_assertion=True,
        sign_alg=RSA_SHA256,
        digest_alg=SHA256,
    )
    return encode(str(xml)), request.id, request.relay_state, sp


@pytest.mark.parametrize(
    "returned",
    [NAMEID_FORMAT_EMAILADDRESS, NAMEID_FORMAT_TRANSIENT, NAMEID_FORMAT_UNSPECIFIED, None],
    ids=["email", "transient", "unspecified", "absent"],
)
def test_a_name_id_of_another_format_than_requested_is_refused(
    keys: dict[str, KeyPair], idp_server: Server, returned: str | None
) -> None:
    response, _, relay, sp = answer(
        keys, idp_server, NAMEID_FORMAT_PERSISTENT, NameID(format=returned, text=ALICE)
    )
    outcome = sp.complete(saml_subject(), response, relay)
    assert not outcome.ok
    assert (outcome.reason, outcome.detail) == (SAMLReason.WRONG_SUBJECT, "name_id_format")
    assert outcome.return_to == "/x"  # the request was this session's: it is used up


def test_the_requested_format_is_accepted(keys: dict[str, KeyPair], idp_server: Server) -> None:
    name_id = NameID(format=NAMEID_FORMAT_PERSISTENT, text=ALICE, name_qualifier=IDP_ID)
    response, _, relay, sp = answer(keys, idp_server, NAMEID_FORMAT_PERSISTENT, name_id)
    assert sp.complete(saml_subject(), response, relay).ok


@pytest.mark.parametrize("requested", [None, NAMEID_FORMAT_UNSPECIFIED])
@pytest.mark.parametrize("returned", [NAMEID_FORMAT_PERSISTENT, NAMEID_FORMAT_EMAILADDRESS, None])
def test_any_format_is_accepted_when_none_in_particular_was_requested(
    keys: dict[str, KeyPair], idp_server: Server, requested: str | None, returned: str | None
) -> None:
    response, _, relay, sp = answer(
        keys, idp_server, requested, NameID(format=returned, text=ALICE)
    )
    assert sp.complete(saml_subject(), response, relay).ok


@pytest.mark.parametrize("requested", [None, NAMEID_FORMAT_PERSISTENT])
def test_a_name_id_qualified_by_another_idp_is_refused(
    keys: dict[str, KeyPair], idp_server: Server, requested: str | None
) -> None:
    name_id = NameID(
        format=NAMEID_FORMAT_PERSISTENT, text=ALICE, name_qualifier="https://other-idp.test"
    )
    response, _, relay, sp = answer(keys, idp_server, requested, name_id)
    outcome = sp.complete(saml_subject(), response, relay)
    assert (outcome.reason, outcome.detail) == (SAMLReason.WRONG_SUBJECT, "name_qualifier")


@pytest.mark.parametrize("value", ["", "  ", 42])
def test_a_blank_name_id_format_is_a_configuration_error(
    keys: dict[str, KeyPair], value: object
) -> None:
    with pytest.raises(ConfigurationError, match="name_id_format"):
        make_config(keys, name_id_format=value)
