"""``manage.py stepup_operator`` and ``stepup_tenant`` when the project's database cannot be
reached, and when the operator presses Ctrl-C at the confirmation prompt: one line each
(docs/cli.md), status 2 and 130, never a traceback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.core.management import call_command
from django.db import connections

from integrations.django.django_support import running_site
from stepup.integrations.django.services import get_stepup
from stepup.integrations.django.store import DjangoStore
from stepup.reauth import FEATURE_FLAG
from stepup.records import Tenant
from stepup.testing import SettableClock

UNREACHABLE = "unreachable"


@pytest.fixture
def unreachable_store(clock: SettableClock) -> Iterator[None]:
    """The project's store on a SQLite file in a folder that does not exist."""
    configured = connections.configure_settings(
        {
            "default": dict(connections.settings["default"]),
            UNREACHABLE: {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": "/nonexistent/stepup-dir/db.sqlite3",
            },
        }
    )
    connections.settings[UNREACHABLE] = configured[UNREACHABLE]
    try:
        with running_site(DjangoStore(using=UNREACHABLE), clock):
            yield
    finally:
        connections[UNREACHABLE].close()
        del connections[UNREACHABLE]
        del connections.settings[UNREACHABLE]


def run(command: str, *argv: str) -> int:
    try:
        call_command(command, *argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return 0


@pytest.mark.usefixtures("unreachable_store")
@pytest.mark.parametrize(
    "argv",
    [("stepup_operator", "tenant", "show", "acme"), ("stepup_tenant", "acme")],
    ids=["stepup_operator", "stepup_tenant"],
)
def test_an_unreachable_database_is_one_line_and_status_2(
    argv: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(*argv) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "stepup: error: DjangoStore.get_tenant: database 'unreachable' unavailable"
        " (OperationalError)"
    ]


class _CtrlC:
    """Standard input on which the operator presses Ctrl-C."""

    def readline(self) -> str:
        raise KeyboardInterrupt

    def isatty(self) -> bool:
        return True


def test_ctrl_c_at_the_prompt_changes_nothing_and_exits_130(
    clock: SettableClock, capsys: pytest.CaptureFixture[str]
) -> None:
    with running_site("orm", clock):
        store = get_stepup().store
        store.put_tenant(Tenant("acme-ctrl-c"))
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr("sys.stdin", _CtrlC())
            try:
                status = run("stepup_operator", "tenant", "set-flag", "acme-ctrl-c", "on")
            except KeyboardInterrupt:
                pytest.fail("Ctrl-C escaped the command as a traceback")
        assert status == 130
        err = capsys.readouterr().err
        assert err.endswith("[y/N] \nstepup: interrupted: nothing changed\n")  # its own line
        tenant = store.get_tenant("acme-ctrl-c")
        assert tenant is not None
        assert not tenant.flag(FEATURE_FLAG)
