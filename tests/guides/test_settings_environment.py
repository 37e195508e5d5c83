"""docs/settings.md's Environment table lists every environment variable stepup reads,
with the module that reads it: the library's one, the ``stepup`` command's and the
demo's."""

from __future__ import annotations

import re
from pathlib import Path

from stepup.cli._stores import STORE_ENV
from stepup.cli.operator import KEY_ID_ENV, KEYS_ENV
from stepup.demo.settings import ENV_PREFIX
from stepup.policy import LIFETIME_ENV

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "stepup"
#: Where each variable is read, as the table names it.
READ_IN = {
    LIFETIME_ENV: "stepup/policy.py",
    STORE_ENV: "stepup/cli/_stores.py",
    KEYS_ENV: "stepup/cli/operator.py",
    KEY_ID_ENV: "stepup/cli/operator.py",
    **{
        f"{ENV_PREFIX}{name}": "stepup/demo/settings.py"
        for name in (
            "OIDC_ISSUER",
            "OIDC_CLIENT_ID",
            "OIDC_CLIENT_SECRET",
            "OIDC_NAME",
            "OIDC_ACCOUNT_HINT",
            "SAML_IDP_METADATA",
        )
    },
    "XDG_DATA_HOME": "stepup/_data_dir.py",
}


def _environment_rows() -> dict[str, str]:
    """Variable -> its row, from the table under ``## Environment``."""
    text = (ROOT / "docs" / "settings.md").read_text()
    section = text.split("## Environment\n", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        if line.startswith("| `"):
            first_cell = line.split("|")[1]
            for name in re.findall(r"`([A-Z_]+)`", first_cell):
                rows[name] = line
    return rows


def test_every_variable_stepup_reads_is_listed_with_where_it_is_read() -> None:
    rows = _environment_rows()
    for name, module in READ_IN.items():
        assert name in rows, f"docs/settings.md does not list {name}"
        assert module in rows[name], f"{name}: the table should say it is read in {module}"


def test_no_module_reads_the_environment_unlisted() -> None:
    """Each module that reads ``os.environ`` is one the table names."""
    readers = {
        str(path.relative_to(SRC.parent))
        for path in SRC.rglob("*.py")
        if "os.environ" in path.read_text()
    }
    assert readers <= set(READ_IN.values()), sorted(readers - set(READ_IN.values()))
