"""What every integration's policy-file test checks: a file entry for one of stepup's
own actions changes only the keys it gives, and an admin's API key still needs a fresh
re-authentication to switch the tenant flag."""

from __future__ import annotations

from pathlib import Path

from stepup.adapters.storage.memory import MemoryStore
from stepup.policy import Policy
from stepup.reauth import FEATURE_FLAG, Reauth, ReauthRequired
from stepup.records import Tenant
from stepup.subject import Subject
from stepup.twofactor import Channel

#: Ask again sooner for each of stepup's own actions: the docs' own advice.
SOONER = """
[actions."tenant.settings.update"]
lifetime = "5m"

[actions."passkey.add"]
lifetime = "5m"

[actions."passkey.remove"]
description = "Removing a passkey"

[actions."2fa.device.add"]
lifetime = "10m"
"""


def write_policy_file(directory: Path) -> Path:
    path = directory / "policy.toml"
    path.write_text(SOONER)
    return path


def assert_own_rules_kept(policy: Policy) -> None:
    tenant = policy.rule_for("tenant.settings.update")
    assert (tenant.always, tenant.api_keys, tenant.lifetime) == (True, True, 300.0)
    for action in ("passkey.add", "passkey.remove"):
        assert policy.rule_for(action).always is True, action
    assert policy.rule_for("passkey.add").lifetime == 300.0
    assert policy.rule_for("passkey.remove").description == "Removing a passkey"
    assert policy.rule_for("2fa.device.add").lifetime == 600.0
    # The decision an admin's API key gets for switching the flag: never exempt.
    store = MemoryStore()
    key = Subject("admin", "key-1", channel=Channel.API_KEY)
    for flag in (False, True):
        store.put_tenant(Tenant("acme", {"feature_flags": {FEATURE_FLAG: flag}}))
        decision = Reauth(store, policy).check(key, "tenant.settings.update", "acme")
        assert isinstance(decision, ReauthRequired), decision
