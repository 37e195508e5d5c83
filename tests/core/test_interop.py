"""Codes interoperate both ways with two independent implementations: oathtool and pyotp."""

from __future__ import annotations

import shutil
import subprocess

import pyotp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stepup.adapters.storage.memory import MemoryStore
from stepup.testing import SettableClock
from stepup.testing.strategies import secrets as base32_secrets
from stepup.testing.strategies import timestamps, totp_parameters
from stepup.totp import TOTP, generate_secret
from stepup.verifier import TOTPVerifier
from support import need

OATHTOOL = shutil.which("oathtool")
# oathtool works from 1970 to 2106 at least; pyotp refuses times before the epoch.
TIMES = timestamps(0.0, 4_102_444_800.0)


@pytest.fixture
def oathtool() -> str:
    need(OATHTOOL is not None, "oathtool is not installed (apt-get install oathtool)")
    assert OATHTOOL is not None
    return OATHTOOL


def _oath_args(exe: str, secret: str, params: dict[str, object], at: float) -> list[str]:
    return [
        exe,
        f"--totp={params['algorithm']}",
        "--base32",
        f"--digits={params['digits']}",
        f"--time-step-size={params['period']}s",
        f"--now=@{int(at)}",
        "-",  # the key comes on stdin, never on the command line
    ]


def _oathtool_code(exe: str, secret: str, params: dict[str, object], at: float) -> str:
    out = subprocess.run(
        _oath_args(exe, secret, params, at),
        input=secret,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def _oathtool_accepts(
    exe: str, secret: str, params: dict[str, object], at: float, code: str
) -> bool:
    done = subprocess.run(
        [*_oath_args(exe, secret, params, at), code],
        input=secret,
        capture_output=True,
        text=True,
        check=False,
    )
    return done.returncode == 0


INTEROP = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@INTEROP
@given(secret=base32_secrets(16, 64), params=totp_parameters(), at=TIMES)
def test_oathtool_codes_verify_in_stepup(
    oathtool: str, secret: str, params: dict[str, object], at: float
) -> None:
    code = _oathtool_code(oathtool, secret, params, at)
    totp = TOTP(secret, **params)  # type: ignore[arg-type]
    assert code == totp.at(int(at))
    # And the full verifier, at oathtool's instant, accepts it once.
    verifier = TOTPVerifier(MemoryStore(), clock=SettableClock(int(at)))
    assert verifier.verify("c", totp, code).ok
    assert not verifier.verify("c", totp, code).ok


@INTEROP
@given(secret=base32_secrets(16, 64), params=totp_parameters(), at=TIMES)
def test_stepup_codes_verify_in_oathtool(
    oathtool: str, secret: str, params: dict[str, object], at: float
) -> None:
    code = TOTP(secret, **params).at(int(at))  # type: ignore[arg-type]
    assert _oathtool_accepts(oathtool, secret, params, at, code)


def test_oathtool_rejects_a_wrong_stepup_code(oathtool: str) -> None:
    """The acceptance check above can fail: a code for another step is refused."""
    secret, params, at = generate_secret(), {"algorithm": "SHA1", "digits": 6, "period": 30}, 1e9
    wrong = TOTP(secret).at(at + 3600)
    assert wrong != TOTP(secret).at(at)
    assert not _oathtool_accepts(oathtool, secret, params, at, wrong)


_pyotp_digest = {"SHA1": "sha1", "SHA256": "sha256", "SHA512": "sha512"}


def _pyotp(secret: str, params: dict[str, object]) -> pyotp.TOTP:
    import hashlib

    return pyotp.TOTP(
        secret,
        digits=params["digits"],
        interval=params["period"],
        digest=getattr(hashlib, _pyotp_digest[str(params["algorithm"])]),
    )


@settings(max_examples=300)
@given(secret=base32_secrets(16, 64), params=totp_parameters(), at=TIMES)
def test_pyotp_agrees_both_ways(secret: str, params: dict[str, object], at: float) -> None:
    theirs, ours = _pyotp(secret, params), TOTP(secret, **params)  # type: ignore[arg-type]
    assert theirs.at(at) == ours.at(at)
    assert theirs.verify(ours.at(at), for_time=at)
    assert ours.match(theirs.at(at), at, window=0) == ours.step(at)


@settings(max_examples=200)
@given(secret=base32_secrets(16, 64), at=timestamps(60.0), offset=st.integers(-1, 1))
def test_window_matches_pyotp_valid_window(secret: str, at: float, offset: int) -> None:
    theirs, ours = pyotp.TOTP(secret), TOTP(secret)
    code = theirs.at(at, counter_offset=offset)
    assert theirs.verify(code, for_time=at, valid_window=1)
    step = ours.match(code, at, window=1)
    assert step is not None
    assert ours.code_for_step(step) == code
    # Codes can collide across steps; then the nearest step to now wins, past first.
    now = ours.step(at)
    nearest = next(s for s in (now, now - 1, now + 1) if ours.code_for_step(s) == code)
    assert step == nearest
