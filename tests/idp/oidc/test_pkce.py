"""The PKCE S256 helper stepup carries instead of an OAuth client library."""

from __future__ import annotations

import base64
import hashlib
import string

from hypothesis import given
from hypothesis import strategies as st

from stepup.adapters.idp.oidc.protocol import new_secret, s256

_UNRESERVED = string.ascii_letters + string.digits + "-._~"


def test_rfc7636_appendix_b_vector() -> None:
    assert s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == (
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    )


@given(st.text(alphabet=_UNRESERVED, min_size=43, max_size=128))
def test_challenge_is_unpadded_base64url_of_the_sha256(verifier: str) -> None:
    challenge = s256(verifier)
    assert len(challenge) == 43
    assert "=" not in challenge
    assert set(challenge) <= set(string.ascii_letters + string.digits + "-_")
    padded = base64.urlsafe_b64decode(challenge + "=")
    assert padded == hashlib.sha256(verifier.encode("ascii")).digest()


def test_generated_verifiers_are_valid_pkce_verifiers() -> None:
    verifier = new_secret()
    assert 43 <= len(verifier) <= 128
    assert set(verifier) <= set(_UNRESERVED)
