"""``stepup operator``: what support staff do, against the app's store.

Each command goes through the same core objects as the web path (``TwoFactor``,
``Reauth``, ``TenantSettings``), so it makes the same decisions and emits the same
events; here they are printed (``event: ...``) and passed to any ``--listener`` the
operator names, such as the app's own audit-log function. Every change asks for
confirmation unless ``--yes`` is given, and prints what it changed.

Exit status: 0 done, 1 nothing to do or not confirmed (unknown user, no such
tenant, some secrets could not be re-sealed), 2 bad input or a store that cannot be
reached, 3 the change was made but a ``--listener`` failed on one of its events (the
audit record may be missing), 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import getpass
import importlib
import inspect
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from ..errors import StepupError
from . import ArgumentParser, interrupted_message

__all__ = ["register", "run_operator"]

KEYS_ENV = "STEPUP_ENCRYPTION_KEYS"
KEY_ID_ENV = "STEPUP_ENCRYPTION_KEY_ID"
EXIT_OK, EXIT_NO, EXIT_USAGE = 0, 1, 2
#: The change was made, but a listener (the app's audit log) failed on an event of it.
EXIT_LISTENER_FAILED = 3
#: 128 + SIGINT: what a shell reports for a command stopped by Ctrl-C.
EXIT_INTERRUPTED = 130


def register(subparsers: Any) -> None:
    operator = subparsers.add_parser(
        "operator",
        help="support tasks against the app's store (2FA devices, grants, keys, tenant flag)",
        description=(
            "Support tasks against the app's store: list a user's TOTP devices, remove one "
            "or all of a user's 2FA, revoke a user's "
            "re-authentication grants, re-seal every TOTP secret under the newest key, "
            "show and set a tenant's sensitive_actions_reauth flag. The store is --store URL "
            "or the STEPUP_STORE environment variable (prefer it for a URL with a password)."
        ),
    )
    _add_commands(operator)


def run_operator(
    argv: list[str],
    *,
    prog: str,
    store: Any,
    listeners: tuple[Callable[[Any], None], ...] = (),
    box: Any = None,
) -> int:
    """The operator commands against an app's own ``store`` (a Django project's ORM
    store, say: ``manage.py stepup_operator``): each event also goes to ``listeners``
    (the app's event bus), and ``reseal`` uses the app's ``box`` when neither ``--box``
    nor the key variables name one. ``--store URL`` still picks another store. Returns
    the exit status."""
    parser = ArgumentParser(prog=prog, description=_DESCRIPTION)
    _add_commands(parser, store_default="the app's own store")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, or a usage error argparse already reported
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    args.app_store, args.app_listeners, args.app_box = store, listeners, box
    try:
        status: int = args.handler(args)
    except StepupError as exc:  # as ``stepup operator`` answers it: a line, not a traceback
        print(f"stepup: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(interrupted_message(args), file=sys.stderr)
        return EXIT_INTERRUPTED
    return status


_DESCRIPTION = (
    "Support tasks against the app's store: list a user's TOTP devices, remove one or all "
    "of a user's 2FA, revoke a user's re-authentication grants, re-seal every TOTP secret "
    "under the newest key, show and set a tenant's sensitive_actions_reauth flag."
)


def _add_commands(
    operator: argparse.ArgumentParser, *, store_default: str = "$STEPUP_STORE"
) -> None:
    # --store and --prefix are taken before the command too (``operator --store URL
    # tenant show ...``), as people write them (usage errors hide the URL anyway).
    _store_options(operator, default=None, says=store_default)
    commands = operator.add_subparsers(
        title="operator commands", metavar="COMMAND", dest="operator_command"
    )
    commands.required = True

    devices = commands.add_parser(
        "totp-devices",
        help="list a user's TOTP devices",
        description=(
            "One line per confirmed TOTP device of the user: its id, when it was added and "
            "last used (to the day; UTC), and its name; then one line per passkey "
            "(passkey <credential id>, the same days and name). Secrets are never shown."
        ),
    )
    devices.add_argument("user_id", metavar="USER_ID")
    _common(devices, store_default, changes=False)
    devices.set_defaults(handler=_totp_devices)

    remove = commands.add_parser(
        "remove-2fa",
        help="remove a user's two-factor authentication and passkeys, or one TOTP device",
        description=(
            "Delete the user's TOTP credential, recovery codes and every passkey, and revoke "
            "their grants in every session, as an admin with full access does on the web "
            "(events PasskeyRemoved for each passkey, then TwoFactorRemoved, removed_by = "
            "--actor). With --device, remove that one device "
            "only (event TwoFactorDeviceRemoved; grants are revoked too); removing the last "
            "device removes two-factor authentication."
        ),
    )
    remove.add_argument("user_id", metavar="USER_ID")
    remove.add_argument(
        "--device", metavar="DEVICE_ID", help="remove only this device (see totp-devices)"
    )
    _common(remove, store_default)
    remove.set_defaults(handler=_remove_2fa)

    revoke = commands.add_parser(
        "revoke-grants",
        help="revoke a user's re-authentication grants in every session",
        description=(
            "The user must re-authenticate before the next sensitive action, in every "
            "session (what the app does after a password change). Event GrantsRevoked "
            "(reason operator, revoked_by = --actor)."
        ),
    )
    revoke.add_argument("user_id", metavar="USER_ID")
    _common(revoke, store_default)
    revoke.set_defaults(handler=_revoke_grants)

    reseal = commands.add_parser(
        "reseal",
        help="re-encrypt every TOTP secret under the newest key",
        description=(
            "Open each stored TOTP secret with the keys given and seal it again under the "
            f"current key. Keys come from where the app's come from: {KEYS_ENV} (JSON "
            '{"key id": "urlsafe base64 of 32 bytes"}) and ' + KEY_ID_ENV + " (the current "
            "id), as in the Flask settings, or --box naming the app's SecretBox."
        ),
    )
    reseal.add_argument(
        "--box",
        metavar="MODULE:NAME",
        help="the app's SecretBox, or a function returning it (instead of the variables)",
    )
    _common(reseal, store_default)
    reseal.set_defaults(handler=_reseal)

    tenant = commands.add_parser(
        "tenant",
        help="show a tenant, set its sensitive_actions_reauth flag",
        description=(
            "A tenant's settings as a JSON:API document (what PATCH /tenants/{id} answers), "
            "and its sensitive_actions_reauth flag, changed as that PATCH changes it."
        ),
    )
    _store_options(tenant, default=argparse.SUPPRESS, says=store_default)
    tenant_commands = tenant.add_subparsers(
        title="tenant commands", metavar="COMMAND", dest="tenant_command"
    )
    tenant_commands.required = True
    show = tenant_commands.add_parser("show", help="print the tenant's settings (JSON:API)")
    show.add_argument("tenant_id", metavar="TENANT_ID")
    _common(show, store_default, changes=False)
    show.set_defaults(handler=_tenant_show)
    set_flag = tenant_commands.add_parser(
        "set-flag",
        help="turn sensitive_actions_reauth on or off",
        description=(
            "Turn the tenant's sensitive_actions_reauth flag on or off, as a tenant admin's "
            "PATCH does (event TenantFlagChanged, actor_id = --actor)."
        ),
    )
    set_flag.add_argument("tenant_id", metavar="TENANT_ID")
    set_flag.add_argument("value", choices=("on", "off"), metavar="on|off")
    _common(set_flag, store_default)
    set_flag.set_defaults(handler=_tenant_set_flag)


_STORE_URLS = (
    "sqlite:///PATH, postgresql://USER@HOST/DB, redis://HOST:PORT/DB"
    " or redis+cluster://HOST:PORT (any node of a Redis Cluster)"
)


def _store_options(parser: argparse.ArgumentParser, *, default: Any, says: str) -> None:
    """``--store`` and ``--prefix``. A command's own (``default=SUPPRESS``) leave what
    was given before the command standing; given after it too, the later one counts.
    ``says``: the store used without ``--store``, as the help names it."""
    parser.add_argument(
        "--store",
        metavar="URL",
        default=default,
        help=f"{_STORE_URLS} (default: {says})",
    )
    parser.add_argument(
        "--prefix",
        default=default,
        help="the store's table or key prefix, if the app changed it",
    )


def _common(
    parser: argparse.ArgumentParser,
    store_default: str,
    *,
    changes: bool = True,
    events: bool = True,
) -> None:
    """The options of a command: ``changes`` asks before changing; ``events``: the change
    emits events, so it names the actor and takes listeners."""
    _store_options(parser, default=argparse.SUPPRESS, says=store_default)
    if changes:
        parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    if changes and events:
        parser.add_argument(
            "--actor",
            default=None,
            help="who is acting, as recorded in events (default: operator:<login name>)",
        )
        parser.add_argument(
            "--listener",
            action="append",
            default=[],
            metavar="MODULE:NAME",
            help="also pass each event to this callable (the app's audit log); repeatable",
        )


class _RefusedError(Exception):
    """A one-line refusal for the person at the terminal, with its exit status."""

    def __init__(self, message: str, status: int = EXIT_NO) -> None:
        super().__init__(message)
        self.status = status


def _run(body: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        args.listener_failures = []
        try:
            status = body(args)
        except _RefusedError as refused:
            print(f"stepup: {refused}", file=sys.stderr)
            status = refused.status
        if args.listener_failures:
            # After what the command printed: the change stands, its record may not.
            for warning in args.listener_failures:
                print(warning, file=sys.stderr)
            return EXIT_LISTENER_FAILED
        return status

    return handler


@contextmanager
def _store(args: argparse.Namespace) -> Iterator[Any]:
    from ._stores import env_url, open_store

    app_store = getattr(args, "app_store", None)
    if app_store is not None and not args.store:
        yield app_store  # the app's own: it stays open
        return
    store = open_store(args.store or env_url(), prefix=args.prefix)
    try:
        yield store
    finally:
        getattr(store, "close", lambda: None)()


def _import(path: str, what: str) -> Any:
    """The object ``MODULE:NAME`` names. A refusal names only what the person gave
    (no such module, no such name); when the module itself fails as it is imported
    (any exception, ``ImportError`` and ``AttributeError`` included) only the type is
    shown, since its message may quote a setting (a connection string with a password,
    a key) the module read."""
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        raise _RefusedError(f"{what} must be MODULE:NAME, not {path!r}", EXIT_USAGE)
    _working_directory_on_path()
    try:
        value = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if _is_named_module(exc.name, module_name):  # the name given, or its package
            raise _RefusedError(
                f"cannot import {what} {path!r}: there is no module {exc.name!r}", EXIT_USAGE
            ) from None
        raise _RefusedError(
            _raised_while_importing(what, path, module_name, exc), EXIT_USAGE
        ) from None
    except Exception as exc:
        raise _RefusedError(
            _raised_while_importing(what, path, module_name, exc), EXIT_USAGE
        ) from None
    for part in attribute.split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            raise _RefusedError(
                f"cannot import {what} {path!r}: {module_name!r} has no {attribute!r}",
                EXIT_USAGE,
            ) from None
        except Exception as exc:
            raise _RefusedError(
                f"cannot import {what} {path!r}: reading {attribute!r} raised"
                f" {type(exc).__name__} (its message is not shown: it may hold a secret)",
                EXIT_USAGE,
            ) from None
    return value


def _working_directory_on_path() -> None:
    """Put the current directory first on ``sys.path``, as ``python -m`` and gunicorn
    do, so MODULE can be the app's own code where the command is run: the console
    script's ``sys.path[0]`` is its own ``bin`` folder. For the rest of the command,
    not only this import: a listener may import more of the app when it is called."""
    try:
        here = os.getcwd()
    except OSError:  # the directory was removed under us: nothing there to import
        return
    if here not in sys.path and "" not in sys.path:  # "": the current directory already
        sys.path.insert(0, here)


def _is_named_module(missing: str | None, module_name: str) -> bool:
    """Is the module Python could not find ``module_name`` itself or one of its packages
    (what the person typed), not a module that ``module_name`` imports?"""
    return missing is not None and (missing == module_name or module_name.startswith(f"{missing}."))


def _raised_while_importing(what: str, path: str, module_name: str, exc: BaseException) -> str:
    return (
        f"cannot import {what} {path!r}: importing {module_name!r} raised"
        f" {type(exc).__name__} (its message is not shown: it may hold a secret)"
    )


def _call_factory(factory: Callable[[], Any], path: str, what: str) -> Any:
    """``factory()``, or a one-line refusal naming ``path`` when it needs arguments or
    raises (its type only, for the reason :func:`_import` gives)."""
    try:
        inspect.signature(factory).bind()
    except TypeError:
        raise _RefusedError(
            f"{what} {path!r} needs arguments: name a SecretBox, or a function taking none",
            EXIT_USAGE,
        ) from None
    except ValueError:  # no signature to read (some built-ins): call it and see
        pass
    try:
        return factory()
    except Exception as exc:
        raise _RefusedError(
            f"{what} {path!r} raised {type(exc).__name__} when called"
            " (its message is not shown: it may hold a secret)",
            EXIT_USAGE,
        ) from None


def _events(args: argparse.Namespace) -> Any:
    """An EventBus that prints every event and passes it to the --listener callables."""
    from ..events import EventBus, StepupEvent

    def show(event: StepupEvent) -> None:
        fields = ", ".join(f"{k}={v!r}" for k, v in asdict(event).items() if k != "at")
        print(f"event: {type(event).__name__}({fields})")

    named = [(path, _import(path, "--listener")) for path in getattr(args, "listener", [])]
    for _, listener in named:
        if not callable(listener):
            raise _RefusedError("--listener must name a callable", EXIT_USAGE)
    failures: list[str] = args.listener_failures
    app = [(_name_of(listener), listener) for listener in getattr(args, "app_listeners", ())]
    guarded = [_guarded(name, listener, failures) for name, listener in (*app, *named)]
    return EventBus(show, *guarded)


def _guarded(
    name: str, listener: Callable[[Any], None], failures: list[str]
) -> Callable[[Any], None]:
    """``listener``, its failure noted in ``failures`` for the command to report and
    exit on, instead of the bus logging it with a traceback while the command says
    "done": an audit record that was never written must not go unnoticed."""

    def call(event: Any) -> None:
        try:
            listener(event)
        except Exception as exc:
            failures.append(
                f"stepup: warning: the listener {name} failed on {type(event).__name__}"
                f" ({type(exc).__name__}); the change was made"
            )

    return call


def _name_of(listener: Any) -> str:
    module = getattr(listener, "__module__", None)
    name = getattr(listener, "__qualname__", None) or type(listener).__qualname__
    return f"{module}:{name}" if module else str(name)


def _actor(args: argparse.Namespace) -> str:
    if args.actor:
        return str(args.actor)
    try:
        return f"operator:{getpass.getuser()}"
    except (KeyError, OSError):
        return "operator"


def _confirm(args: argparse.Namespace, question: str) -> None:
    if args.yes:
        args.confirmed = True
        return
    print(f"{question} [y/N] ", end="", file=sys.stderr, flush=True)
    try:
        answer = sys.stdin.readline()
    except KeyboardInterrupt:
        print(file=sys.stderr)  # end the prompt's line (the terminal shows ^C there)
        raise
    if not sys.stdin.isatty():
        print(file=sys.stderr)  # the answer was not echoed: end the prompt's line
    if answer.strip().lower() not in ("y", "yes"):
        if not answer:
            raise _RefusedError("no answer (standard input is closed): nothing changed; use --yes")
        raise _RefusedError("not confirmed: nothing changed")
    args.confirmed = True


# commands --------------------------------------------------------------------------


def _day(unix: float | None) -> str:
    if unix is None:
        return "never"
    return datetime.fromtimestamp(unix, tz=UTC).strftime("%Y-%m-%d")


@_run
def _totp_devices(args: argparse.Namespace) -> int:
    from ..twofactor import TwoFactor

    with _store(args) as store:
        devices = TwoFactor(store).devices(args.user_id)
        passkeys = _passkeys_of(store, args.user_id)
    if not devices and not passkeys:
        raise _RefusedError(
            f"user {args.user_id!r} has no two-factor authentication"
            " (unknown user, or not enrolled)"
        )
    for device in devices:
        name = json.dumps(device.name, ensure_ascii=True)  # a name cannot move the cursor
        added, used = _day(device.created_at), _day(device.last_used_at)
        print(f"{device.device_id}  added {added}  last used {used}  {name}")
    # Passkeys are second factors at sign-in too: remove-2fa removes them with the rest.
    for passkey in passkeys:
        name = json.dumps(passkey.name, ensure_ascii=True)
        added, used = _day(passkey.created_at), _day(passkey.last_used_at)
        print(f"passkey {passkey.credential_id}  added {added}  last used {used}  {name}")
    return EXIT_OK


def _passkeys_of(store: Any, user_id: str) -> tuple[Any, ...]:
    """The user's passkeys (none for an id no store can hold: nobody's)."""
    from ..ids import is_well_formed_id

    if not is_well_formed_id(user_id):
        return ()
    return tuple(store.list_passkeys(user_id))


@_run
def _remove_2fa(args: argparse.Namespace) -> int:
    from ..twofactor import TwoFactor

    with _store(args) as store:
        two_factor = TwoFactor(store, events=_events(args))
        enrolled = two_factor.is_enrolled(args.user_id)
        if args.device is not None:
            if not enrolled:
                raise _RefusedError(
                    f"user {args.user_id!r} has no authenticator app"
                    " (unknown user, or not enrolled): nothing changed"
                )
            return _remove_device(args, two_factor)
        if not enrolled and not _passkeys_of(store, args.user_id):
            raise _RefusedError(
                f"user {args.user_id!r} has no two-factor authentication"
                " (unknown user, or not enrolled): nothing changed"
            )
        _confirm(
            args,
            f"Remove two-factor authentication of user {args.user_id!r}"
            " (authenticator apps, recovery codes and passkeys)?",
        )
        removed = two_factor.remove(
            args.user_id, actor_id=_actor(args), actor_has_full_access=True, with_passkeys=True
        )
    parts = ["authenticator apps and recovery codes"] if removed.totp else []
    if removed.passkeys:
        parts.append(f"{removed.passkeys} passkey{'s' if removed.passkeys != 1 else ''}")
    print(
        f"removed: two-factor authentication of user {args.user_id!r}"
        f" ({', '.join(parts)}, and the grants of every session)"
    )
    return EXIT_OK


def _remove_device(args: argparse.Namespace, two_factor: Any) -> int:
    devices = {device.device_id: device for device in two_factor.devices(args.user_id)}
    if args.device not in devices:
        raise _RefusedError(
            f"user {args.user_id!r} has no device {args.device!r} (see totp-devices): "
            "nothing changed"
        )
    last = len(devices) == 1
    if last:
        # The last app takes the recovery codes with it; the passkeys stay (a device
        # removal is not the reset: plain remove-2fa is).
        count = len(_passkeys_of(two_factor.store, args.user_id))
        kept = f"their {count} passkey{'s stay' if count != 1 else ' stays'}" if count else ""
        question = (
            f"Remove device {args.device!r}, the last authenticator app of user"
            f" {args.user_id!r}, and with it their recovery codes{f' ({kept})' if kept else ''}?"
        )
    else:
        question = f"Remove device {args.device!r} of user {args.user_id!r}?"
    _confirm(args, question)
    two_factor.remove_device(
        args.user_id, args.device, actor_id=_actor(args), actor_has_full_access=True
    )
    if last:
        print(
            f"removed: authenticator-app two-factor authentication of user {args.user_id!r}"
            f" with its last device {args.device!r} (credential, recovery codes and grants"
            f" in every session{f'; {kept}' if kept else ''})"
        )
    else:
        print(
            f"removed: device {args.device!r} of user {args.user_id!r}"
            " (grants in every session revoked)"
        )
    return EXIT_OK


@_run
def _revoke_grants(args: argparse.Namespace) -> int:
    from ..events import GrantsRevoked
    from ..policy import Policy
    from ..reauth import Reauth

    events = _events(args)  # a --listener that cannot be imported refuses before any change
    with _store(args) as store:
        question = f"Revoke every re-authentication grant of user {args.user_id!r}?"
        _confirm(args, question)
        # Without the bus: the revocation's own event says "password_changed", and this
        # was the operator's doing, said below (once something was revoked).
        reauth = Reauth(store, Policy.default(environ={}))
        count = reauth.password_changed(args.user_id)
    if count == 0:
        raise _RefusedError(
            f"user {args.user_id!r} has no grants (unknown user, or none in force): nothing changed"
        )
    revoked = GrantsRevoked(
        at=reauth.clock(),
        user_id=args.user_id,
        session_id=None,
        count=count,
        reason="operator",
        revoked_by=_actor(args),
    )
    events.emit(revoked)
    print(f"revoked: {count} grant(s) of user {args.user_id!r}")
    return EXIT_OK


def _box_from_env() -> Any:
    from ..sealing import SecretBox

    raw = os.environ.get(KEYS_ENV)
    if not raw:
        raise _RefusedError(
            f"no sealing keys: set {KEYS_ENV} (and {KEY_ID_ENV}) as the app has them,"
            " or pass --box MODULE:NAME",
            EXIT_USAGE,
        )
    try:
        given = json.loads(raw)
    except ValueError:
        raise _RefusedError(
            f"{KEYS_ENV} is not JSON (not shown: it holds keys)", EXIT_USAGE
        ) from None
    if not isinstance(given, dict) or not given:
        raise _RefusedError(f'{KEYS_ENV} must be a JSON object {{"key id": "base64"}}', EXIT_USAGE)
    keys: dict[str, bytes] = {}
    for key_id, text in given.items():
        try:
            key = base64.urlsafe_b64decode(str(text).encode("ascii") + b"==")
        except (binascii.Error, ValueError, UnicodeEncodeError):
            key = b""
        if len(key) != 32:
            raise _RefusedError(
                f"{KEYS_ENV}[{key_id!r}] must be the urlsafe base64 of 32 bytes", EXIT_USAGE
            )
        keys[str(key_id)] = key
    current = os.environ.get(KEY_ID_ENV) or (next(iter(keys)) if len(keys) == 1 else None)
    if current is None:
        raise _RefusedError(f"several keys: name the current one in {KEY_ID_ENV}", EXIT_USAGE)
    return SecretBox(keys, current)


def _box(args: argparse.Namespace) -> Any:
    from ..sealing import SecretBox

    app_box = getattr(args, "app_box", None)
    if not args.box and app_box is not None and not os.environ.get(KEYS_ENV):
        box = app_box  # the app's own keys
    elif not args.box:
        box = _box_from_env()
    else:
        box = _import(args.box, "--box")
        if callable(box) and not isinstance(box, SecretBox):
            box = _call_factory(box, args.box, "--box")
        if not isinstance(box, SecretBox):
            raise _RefusedError(f"--box {args.box!r} is not a SecretBox", EXIT_USAGE)
    if not box.encrypts:
        raise _RefusedError(
            "the SecretBox has no keys: re-sealing would store every secret unsealed", EXIT_USAGE
        )
    return box


@_run
def _reseal(args: argparse.Namespace) -> int:
    from ..errors import ConcurrentUpdateError, StoreUnavailableError
    from ..sealing import SealError
    from ..twofactor import TwoFactor
    from ._stores import credential_user_ids

    box = _box(args)
    current = repr(box.current_key_id)
    with _store(args) as store:
        user_ids = sorted(credential_user_ids(store))
        if not user_ids:
            raise _RefusedError("no stored TOTP secrets: nothing to re-seal")
        _confirm(args, f"Re-seal the TOTP secrets of {len(user_ids)} user(s) under key {current}?")
        two_factor = TwoFactor(store, box=box, events=_events(args))
        # Counted in secrets (a user has one per authenticator app), read just before
        # each user's re-seal: TwoFactor.reseal answers only whether the user's changed.
        tally = _ResealTally(current)
        for done, user_id in enumerate(user_ids):
            try:
                # Read here, not through TwoFactor, which calls any failure of the store
                # "unavailable": a row that does not parse is that user's, not an outage.
                credential = store.get_credential(user_id)
            except StoreUnavailableError:
                tally.stopped(done, len(user_ids))
                raise  # one line from main, status 2
            except Exception as exc:  # the stored row: its message could quote it
                tally.unreadable.append(user_id)
                tally.unopened += 1
                print(
                    f"  cannot read the stored credential of user {user_id!r}"
                    f" ({type(exc).__name__}): not re-sealed",
                    file=sys.stderr,
                )
                continue
            secrets = _stored_secrets(credential)
            stale = sum(box.needs_reseal(secret) for secret in secrets)
            try:
                changed = two_factor.reseal(user_id)
            except (SealError, ConcurrentUpdateError) as exc:
                tally.already += len(secrets) - stale
                tally.unsealed.append(user_id)
                tally.unopened += max(stale, 1)
                print(f"  cannot re-seal user {user_id!r}: {exc}", file=sys.stderr)
                continue
            except StoreUnavailableError:
                tally.stopped(done, len(user_ids))
                raise
            tally.already += len(secrets) - stale
            if changed:
                tally.resealed += max(stale, 1)  # one at least, should a device come meanwhile
            else:
                tally.already += stale  # re-sealed meanwhile (by another run)
    print(tally.summary())
    if tally.unsealed:
        print(
            "stepup: some secrets could not be opened with these keys:"
            " add the old key ids and run again",
            file=sys.stderr,
        )
    if tally.unreadable:
        print(
            "stepup: some stored credentials could not be read (the users named above):"
            " they are left as they were; the store's records of them need repair",
            file=sys.stderr,
        )
    return EXIT_NO if tally.unsealed or tally.unreadable else EXIT_OK


class _ResealTally:
    """What ``reseal`` did so far, in secrets, and the users it could not do."""

    def __init__(self, current: str) -> None:
        self.current = current
        self.resealed = self.already = self.unopened = 0
        self.unsealed: list[str] = []  # secrets the keys given could not open
        self.unreadable: list[str] = []  # a stored row that could not be read

    def summary(self) -> str:
        return (
            f"resealed: {self.resealed} secret(s) under key {self.current};"
            f" {self.already} already were; {self.unopened} failed"
        )

    def stopped(self, done: int, total: int) -> None:
        """The store stopped answering: what was done before, and how many are left
        (a second run re-seals those and leaves the rest alone)."""
        print(f"{self.summary()}; stopped after {done} of {total} user(s): run again")


def _stored_secrets(credential: Any) -> list[str]:
    """The sealed TOTP secrets of a credential (``None``: none), one per device, or the
    one secret of the shape before devices, as :meth:`TwoFactor.reseal` reads them."""
    if credential is None:
        return []
    if credential.devices:
        return [device.secret for device in credential.devices]
    return [credential.secret]


@_run
def _tenant_show(args: argparse.Namespace) -> int:
    from ..tenants import tenant_document

    with _store(args) as store:
        tenant = store.get_tenant(args.tenant_id)
    if tenant is None:
        raise _RefusedError(f"no tenant {args.tenant_id!r}")
    print(json.dumps(tenant_document(tenant), indent=2, sort_keys=True))
    return EXIT_OK


@_run
def _tenant_set_flag(args: argparse.Namespace) -> int:
    from ..reauth import FEATURE_FLAG
    from ..tenants import TenantSettings

    value = args.value == "on"
    with _store(args) as store:
        tenant = store.get_tenant(args.tenant_id)
        if tenant is None:
            raise _RefusedError(f"no tenant {args.tenant_id!r}: nothing changed")
        old = tenant.flag(FEATURE_FLAG)
        if old is value:
            print(f"unchanged: {FEATURE_FLAG} of tenant {args.tenant_id!r} is already {args.value}")
            return EXIT_OK
        _confirm(args, f"Turn {FEATURE_FLAG} {args.value} for tenant {args.tenant_id!r}?")
        body = {"data": {"type": "tenant", "attributes": {"feature_flags": {FEATURE_FLAG: value}}}}
        TenantSettings(store, events=_events(args)).patch(
            args.tenant_id, body, actor_id=_actor(args), actor_is_tenant_admin=True
        )
    was = "on" if old else "off"
    print(f"changed: {FEATURE_FLAG} of tenant {args.tenant_id!r}: {was} -> {args.value}")
    return EXIT_OK
