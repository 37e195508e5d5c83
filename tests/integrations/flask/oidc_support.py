"""The Flask test app re-authenticating at the real OpenID provider (tests/idp/oidc),
for the test files that drive OIDC trips."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from idp.oidc.harness import Provider, make_config
from integrations.flask.flask_support import TestApp, make_app
from stepup.adapters.idp.oidc import OIDCReauth
from stepup.adapters.storage.memory import MemoryStore
from stepup.testing import SettableClock


@contextmanager
def oidc_app_on(provider: Provider, store: Any = None) -> Iterator[TestApp]:
    """The app (subject_loader mode) with the provider as ``test-op``, over ``store``
    (a new memory store by default), on a clock at the real time: the provider stamps
    real times."""
    clock = SettableClock(math.floor(time.time()))
    store = MemoryStore() if store is None else store
    reauth = OIDCReauth(make_config(provider), store, clock=clock)
    try:
        yield make_app(
            "subject_loader",
            clock=clock,
            store=store,
            config={"STEPUP_OIDC_PROVIDERS": {"test-op": reauth}},
        )
    finally:
        reauth.close()
