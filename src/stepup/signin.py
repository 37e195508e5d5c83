"""The second factor at sign-in: which ones a user has, so the integrations ask for them.

A sign-in that passed the password waits for a second factor when the user has one:
a confirmed TOTP device or at least one passkey (and only on the interactive web
channel; API, API-key and message-injection sign-ins are never asked, see
:meth:`stepup.twofactor.TwoFactor.required_for`). :class:`SecondFactors` says which,
so the page offers exactly those: the code form for TOTP, "Use a passkey" for a
passkey, a recovery code when the user has codes. The checks themselves are the
core's: :meth:`~stepup.twofactor.TwoFactor.verify`,
:meth:`~stepup.twofactor.TwoFactor.use_recovery_code` and
:meth:`~stepup.passkeys.Passkeys.finish_sign_in`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._flow import Flow, run, run_async
from .twofactor import AsyncTwoFactor, Channel, TwoFactor

if TYPE_CHECKING:  # only types: python-fido2 (the passkeys extra) is not needed here
    from .passkeys import AsyncPasskeys, Passkeys
    from .records import Passkey

__all__ = ["SecondFactors", "asecond_factors", "second_factors"]


@dataclass(frozen=True, slots=True)
class SecondFactors:
    """What a user can prove after the password. Falsy when they have nothing to prove
    (or the channel never asks): then the sign-in goes ahead without a second step."""

    totp: bool = False
    passkeys: int = 0
    recovery: bool = False

    @property
    def required(self) -> bool:
        return self.totp or self.passkeys > 0

    def __bool__(self) -> bool:
        return self.required


_NONE = SecondFactors()


def _flow(two_factor: Any, passkeys: Any, user_id: str, channel: Channel | str) -> Flow[Any]:
    if not two_factor.required_for(channel):
        return _NONE
    totp: bool = yield from two_factor._enrolled(user_id)
    count = 0
    if passkeys is not None:
        registered: tuple[Passkey, ...] = yield ("list_passkeys", (user_id,))
        count = len(registered)
    # Recovery codes come with a TOTP device kept in the store (not in a config file).
    recovery = totp and two_factor.config_users is None
    return SecondFactors(totp=totp, passkeys=count, recovery=recovery)


def second_factors(
    two_factor: TwoFactor,
    passkeys: Passkeys | None,
    user_id: str,
    channel: Channel | str = Channel.WEB,
) -> SecondFactors:
    """The second factors ``user_id`` has for a sign-in on ``channel`` (``passkeys``:
    ``None`` when passkeys are off). A store failure raises
    :class:`~stepup.errors.StoreUnavailableError`: never sign in without asking."""
    result: SecondFactors = run(_flow(two_factor, passkeys, user_id, channel), two_factor.store)
    return result


async def asecond_factors(
    two_factor: AsyncTwoFactor,
    passkeys: AsyncPasskeys | None,
    user_id: str,
    channel: Channel | str = Channel.WEB,
) -> SecondFactors:
    """:func:`second_factors` over an async store."""
    flow = _flow(two_factor, passkeys, user_id, channel)
    result: SecondFactors = await run_async(flow, two_factor.store)
    return result
