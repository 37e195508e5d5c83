"""An argon2 hash is upgraded only when it is below the hasher's profile somewhere.

A deployment's stronger hashes (more memory, more passes) were "upgraded" to stepup's
weaker profile at every successful re-authentication, because any difference counted.
Each hash here is made by argon2-cffi itself, with parameters cheap enough to stay
instant except the one realistic case (128 MiB against stepup's 64 MiB).
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from argon2 import Parameters, PasswordHasher, Type, extract_parameters
from argon2.low_level import hash_secret

from reauth_password.helpers import Twin
from stepup.adapters.idp.password import PASSWORD_PARAMETERS, PasswordReason

PASSWORD = "correct horse battery staple"
WRONG = "Tr0ub4dor&3"
USER = "user-1"

#: The app's current profile in these tests: every parameter has room below it.
PROFILE = Parameters(
    type=Type.ID,
    version=19,
    salt_len=16,
    hash_len=16,
    time_cost=2,
    memory_cost=32,
    parallelism=2,
)

#: Stored hashes at or above PROFILE in every parameter: kept as they are.
AT_OR_ABOVE: dict[str, Parameters] = {
    "the same": PROFILE,
    "more memory": replace(PROFILE, memory_cost=64),
    "more passes": replace(PROFILE, time_cost=3),
    "more lanes": replace(PROFILE, parallelism=4),
    "a longer hash": replace(PROFILE, hash_len=32),
    "a longer salt": replace(PROFILE, salt_len=32),
    "stronger in all": replace(
        PROFILE, memory_cost=64, time_cost=3, parallelism=4, hash_len=32, salt_len=32
    ),
}

#: Stored hashes below PROFILE somewhere: upgraded to PROFILE.
BELOW: dict[str, Parameters] = {
    "less memory": replace(PROFILE, memory_cost=16),
    "fewer passes": replace(PROFILE, time_cost=1),
    "fewer lanes": replace(PROFILE, parallelism=1),
    "a shorter hash": replace(PROFILE, hash_len=8),
    "a shorter salt": replace(PROFILE, salt_len=8),
    "argon2i": replace(PROFILE, type=Type.I),
    "argon2d": replace(PROFILE, type=Type.D),
    "argon2 version 16": replace(PROFILE, version=16),
    "more memory, fewer passes": replace(PROFILE, memory_cost=64, time_cost=1),
    "longer hash, fewer lanes": replace(PROFILE, hash_len=32, parallelism=1),
}


def made_with(parameters: Parameters, password: str = PASSWORD) -> str:
    """A hash argon2-cffi makes with exactly these parameters (version included)."""
    return hash_secret(
        password.encode(),
        b"s" * parameters.salt_len,
        time_cost=parameters.time_cost,
        memory_cost=parameters.memory_cost,
        parallelism=parameters.parallelism,
        hash_len=parameters.hash_len,
        type=parameters.type,
        version=parameters.version,
    ).decode()


@pytest.mark.parametrize("name", sorted(AT_OR_ABOVE))
def test_an_argon2_hash_at_or_above_the_profile_is_kept(twin: Twin, name: str) -> None:
    stored = made_with(AT_OR_ABOVE[name])
    assert extract_parameters(stored) == AT_OR_ABOVE[name]
    upgraded: list[str] = []
    verify = twin.build(
        hasher=PasswordHasher.from_parameters(PROFILE),
        on_upgrade=lambda _u, h: upgraded.append(h),
    )
    result = verify(USER, PASSWORD, stored)
    assert result.reason is PasswordReason.OK
    assert result.new_hash is None
    assert not result.needs_rehash
    assert upgraded == []
    assert verify(USER, WRONG, stored).reason is PasswordReason.WRONG_PASSWORD


@pytest.mark.parametrize("name", sorted(BELOW))
def test_an_argon2_hash_below_the_profile_anywhere_is_upgraded_to_it(twin: Twin, name: str) -> None:
    stored = made_with(BELOW[name])
    assert extract_parameters(stored) == BELOW[name]
    upgraded: list[str] = []
    verify = twin.build(
        hasher=PasswordHasher.from_parameters(PROFILE),
        on_upgrade=lambda _u, h: upgraded.append(h),
    )
    result = verify(USER, PASSWORD, stored)
    assert result.reason is PasswordReason.OK
    assert result.new_hash is not None
    assert upgraded == [result.new_hash]
    assert extract_parameters(result.new_hash) == PROFILE
    again = verify(USER, PASSWORD, result.new_hash)  # the upgrade is final
    assert again.reason is PasswordReason.OK
    assert again.new_hash is None


def test_a_128_mib_hash_is_not_rewritten_to_stepups_64_mib_profile(twin: Twin) -> None:
    """The reported case, with stepup's own default hasher and a real deployment's hash."""
    stronger = replace(PASSWORD_PARAMETERS, memory_cost=131072)
    stored = PasswordHasher.from_parameters(stronger).hash(PASSWORD)
    upgraded: list[str] = []
    verify = twin.build(
        hasher=PasswordHasher.from_parameters(PASSWORD_PARAMETERS),
        on_upgrade=lambda _u, h: upgraded.append(h),
    )
    result = verify(USER, PASSWORD, stored)
    assert result.reason is PasswordReason.OK
    assert result.new_hash is None
    assert upgraded == []


@pytest.mark.parametrize(
    ("stored_type", "upgraded"), [(Type.ID, False), (Type.I, False), (Type.D, True)]
)
def test_an_argon2i_app_never_rewrites_argon2id_nor_its_own_argon2i(
    twin: Twin, stored_type: Type, upgraded: bool
) -> None:
    """argon2id is never below; a hasher of another type upgrades only argon2d to it."""
    verify = twin.build(hasher=PasswordHasher.from_parameters(replace(PROFILE, type=Type.I)))
    result = verify(USER, PASSWORD, made_with(replace(PROFILE, type=stored_type)))
    assert result.reason is PasswordReason.OK
    assert (result.new_hash is not None) is upgraded
