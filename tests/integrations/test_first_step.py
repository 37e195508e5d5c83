"""The first step of a sign-in that waits for stepup's second step, as every framework
keeps it (:class:`stepup.integrations.views.FirstStep`): what the app's sign-in proved
must fit how the user signed in, checked before anything is kept, and the session's
copy reads back as it was."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stepup.errors import MalformedInputError
from stepup.integrations.views import FirstStep
from stepup.reauth import GRANT_METHODS
from stepup.subject import Identity, LoginMethod

PRIMARY = {LoginMethod.PASSWORD: "pwd", LoginMethod.OIDC: "oidc", LoginMethod.SAML: "saml"}
NAMES = st.text(st.characters(codec="utf-8"), min_size=1, max_size=20)
IDENTITIES = st.one_of(
    st.none(),
    st.just(Identity(LoginMethod.PASSWORD)),
    st.builds(Identity, st.sampled_from([LoginMethod.OIDC, LoginMethod.SAML]), NAMES, NAMES, NAMES),
)
METHODS = st.lists(
    st.sampled_from(sorted(GRANT_METHODS | {"recovery", "sms"})), min_size=1, max_size=4
)
TIMES = st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False), st.integers())


def _fits(identity: Identity | None, proved: list[str]) -> bool:
    login = LoginMethod.PASSWORD if identity is None else identity.method
    federated = {"oidc", "saml"} - {PRIMARY[login]}
    return set(proved) <= GRANT_METHODS and PRIMARY[login] in proved and not federated & set(proved)


@given(IDENTITIES, METHODS, TIMES)
def test_proved_is_kept_only_when_it_fits_how_the_user_signed_in(
    identity: Identity | None, proved: list[str], at: float | None
) -> None:
    if not _fits(identity, proved):
        with pytest.raises(MalformedInputError):
            FirstStep.checked(identity, tuple(proved), at)
        return
    first = FirstStep.checked(identity, tuple(proved), at)
    assert set(first.proved) == set(proved)
    assert FirstStep.kept(first.record()) == first  # the session's copy reads back


@given(IDENTITIES)
def test_proved_defaults_to_what_the_sign_in_proves(identity: Identity | None) -> None:
    first = FirstStep.checked(identity)
    login = LoginMethod.PASSWORD if identity is None else identity.method
    assert first.proved == (PRIMARY[login],)
    assert first.signed_in_with.method is login


@pytest.mark.parametrize(
    "identity",
    [
        Identity(LoginMethod.OIDC, provider="corp"),  # no issuer, no subject
        Identity(LoginMethod.SAML, issuer="https://idp.example"),  # no NameID
        "oidc",
    ],
)
def test_an_identity_a_reauthentication_could_not_match_is_refused(identity: object) -> None:
    with pytest.raises(MalformedInputError):
        FirstStep.checked(identity)


@pytest.mark.parametrize("at", [True, "1700000000", math.inf, math.nan, 10**400])
def test_authenticated_at_must_be_unix_seconds(at: object) -> None:
    with pytest.raises(MalformedInputError, match="Unix seconds"):
        FirstStep.checked(None, ("pwd",), at)


@pytest.mark.parametrize(
    "kept",
    [
        {"proved": ["oidc"], "identity": None},  # an SSO proof without its identity
        {"proved": ["pwd"], "identity": {"method": "kerberos"}},
        {"proved": "pwd", "identity": None},
        {"proved": [], "identity": None},
    ],
)
def test_a_kept_first_step_that_does_not_hold_together_is_none(kept: dict[str, object]) -> None:
    assert FirstStep.kept(kept) is None


def test_a_pending_sign_in_kept_before_identities_reads_as_a_password() -> None:
    first = FirstStep.kept({"proved": ["pwd"], "authenticated_at": None})
    assert first == FirstStep(None, ("pwd",), None)
