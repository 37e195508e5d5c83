"""STEPUP['POLICY_FILE'] naming one of stepup's own actions keeps that action's guard:
the file came before stepup's rules, so ``lifetime = "5m"`` for
``tenant.settings.update`` made it a plain sensitive rule, and an admin's API key
switched the tenant flag off without re-authenticating."""

from __future__ import annotations

from pathlib import Path

from integrations.policy_file_rules import assert_own_rules_kept, write_policy_file
from stepup.integrations.django import conf


def test_a_file_entry_changes_only_the_keys_it_gives(tmp_path: Path) -> None:
    settings = {
        **conf.DEFAULTS,
        "POLICY_FILE": str(write_policy_file(tmp_path)),
        "PASSKEYS_RP_ID": "localhost",
        "PASSKEYS_ORIGINS": ["http://localhost"],
    }
    assert_own_rules_kept(conf.read_policy(settings))
