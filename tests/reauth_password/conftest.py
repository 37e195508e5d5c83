"""Fixtures for password re-authentication: cheap hashers, both twins, event recording."""

from __future__ import annotations

import pytest

from reauth_password.helpers import CountingHasher, Recorder, Twin
from stepup.adapters.idp.password import CHEAPEST
from stepup.testing import SettableClock


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock()


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def hasher() -> CountingHasher:
    hasher = CountingHasher.from_parameters(CHEAPEST)
    assert isinstance(hasher, CountingHasher)
    return hasher


@pytest.fixture(params=["sync", "async"])
def twin(request: pytest.FixtureRequest, clock: SettableClock, recorder: Recorder) -> Twin:
    return Twin(request.param, clock, recorder)
