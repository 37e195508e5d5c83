"""STEPUP_POLICY_FILE naming one of stepup's own actions keeps that action's guard."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from integrations.policy_file_rules import assert_own_rules_kept, write_policy_file
from stepup.adapters.storage.memory import MemoryStore
from stepup.integrations.flask import Stepup


def test_a_file_entry_changes_only_the_keys_it_gives(tmp_path: Path) -> None:
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY="test-secret-key-0123456789",
        STEPUP_POLICY_FILE=str(write_policy_file(tmp_path)),
        STEPUP_PASSKEYS_RP_ID="localhost",
        STEPUP_PASSKEYS_ORIGINS=["http://localhost"],
    )
    Stepup(app, store=MemoryStore())
    assert_own_rules_kept(app.extensions["stepup"].policy)
