"""What each Redis store method sends and how it reads the reply, with no I/O.

Every store method is one :class:`Op`: one command (or one script) and a decoder.
:class:`~stepup.adapters.storage.redis.RedisStore` and
:class:`~stepup.adapters.storage.redis.AsyncRedisStore` only execute ops, so the
sync and async stores share every byte they send and every reply they read.
Replies are read whether or not the client decodes responses.
"""

from __future__ import annotations

import json
import math
import secrets
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Generic, TypeAlias, TypeVar

from ...errors import ConcurrentUpdateError
from ...records import (
    Attempt,
    AttemptOutcome,
    Challenge,
    Credential,
    Grant,
    Passkey,
    Tenant,
    ThrottleState,
)
from ...throttle import ThrottlePolicy
from . import boundary
from .base import new_credential_version
from .redis_keys import RedisKeys
from .redis_scripts import (
    ADD_CREDENTIAL,
    ADD_PASSKEY,
    ADD_VALUE,
    ATTEMPT,
    CLEAR_THROTTLE,
    CONFIRM_CLAIM,
    CONSUME_RECOVERY,
    PUT_CREDENTIAL,
    PUT_GRANT,
    RECORD_PASSKEY_USE,
    REFUND,
    RELEASE_CLAIM,
    RENAME_PASSKEY,
    REPLACE_CREDENTIAL,
    REPLACE_GRANT,
    REVOKE_ALL,
    SWAP_VALUE,
    Script,
)
from .stored_json import grant_text, loads, tenant_for_decision
from .stored_json import tenant as stored_tenant

__all__ = ["Op", "RedisOps", "Steps"]

T = TypeVar("T")

_RECORD = "record"
_RECOVERY = "r:"
_VERSION = "v"
#: How long (ms) a credential id's claim in the passkey-id index lives before the
#: passkey is in the user's hash and the claim is made permanent: a process that dies
#: between the two leaves a claim that frees itself.
CLAIM_MS = 60_000
#: The passkey fields that never change, kept as one JSON value.
_PASSKEY_STATIC = (
    "credential_data",
    "backup_eligible",
    "user_verified",
    "created_at",
    "transports",
)
#: How many compare-and-set rounds a tenant patch makes before it gives up: each lost
#: round means another patch of the same tenant was stored in between.
PATCH_TRIES = 32


@dataclass(slots=True)
class Op(Generic[T]):
    """One round trip: ``command`` (an ``EVALSHA`` when ``script`` is set), and
    :attr:`fallback` to send instead if the server answers ``NOSCRIPT``.

    Not frozen: one is built per call, and a frozen dataclass pays one
    ``object.__setattr__`` per field for it. Nothing keeps or shares an op."""

    name: str
    command: tuple[Any, ...] = field(repr=False)
    decode: Callable[[Any], T] = field(repr=False)
    script: Script | None = field(default=None, repr=False)

    @property
    def fallback(self) -> tuple[Any, ...] | None:
        """The same call as an ``EVAL`` carrying the script's source (built only when a
        server lacks the script, which is rare: the hot path never pays for it)."""
        if self.script is None:
            return None
        return ("EVAL", self.script.source, *self.command[2:])


def _script(
    name: str, script: Script, key: str, args: tuple[Any, ...], decode: Callable[[Any], T]
) -> Op[T]:
    return Op(name, (*script.head, key, *args), decode, script)


#: The throttle policy as the attempt script's last two ARGV (forget_after in ms, and
#: "free_failures base_delay max_delay most_failures"), per policy: few exist, and the last one
#: used is checked first by identity (a policy is frozen).
_POLICIES: dict[ThrottlePolicy, tuple[bytes, bytes]] = {}
_last_policy: tuple[ThrottlePolicy, tuple[bytes, bytes]] | None = None


def _policy_args(throttle: ThrottlePolicy) -> tuple[bytes, bytes]:
    global _last_policy
    last = _last_policy  # one read: another thread may replace it meanwhile
    if last is not None and last[0] is throttle:
        return last[1]
    args = _POLICIES.get(throttle)
    if args is None:
        args = (
            b"%d" % _ttl_ms(throttle.forget_after),
            (
                f"{int(throttle.free_failures):d} {_float(throttle.base_delay)}"
                f" {_float(throttle.max_delay)} {throttle.most_failures:d}"
            ).encode(),
        )
        if len(_POLICIES) < 64:
            _POLICIES[throttle] = args
    _last_policy = (throttle, args)
    return args


def _text(value: Any) -> str | None:
    """A bulk reply as ``str`` (``None`` for nil)."""
    if value is None or value is False:
        return None
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, str):
        return value
    raise TypeError(f"unexpected reply type {type(value).__name__}")


def _pairs(value: Any) -> dict[str, str]:
    """A hash reply (a mapping, or a flat list of pairs) as ``dict[str, str]``."""
    items = (
        value.items() if isinstance(value, Mapping) else zip(value[::2], value[1::2], strict=True)
    )
    return {str(_text(k)): str(_text(v)) for k, v in items}


def _dumps(data: Mapping[str, Any]) -> str:
    return json.dumps(data, separators=(",", ":"), sort_keys=True, allow_nan=False)


def _float(value: float) -> str:
    """A double as text Lua's ``tonumber`` reads back to the very same double."""
    return repr(float(value))


def _ttl_ms(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1000))


# decoders ----------------------------------------------------------------------


_ACCEPTED = Attempt(AttemptOutcome.ACCEPTED)  # immutable, so shared


def _attempt(reply: Any) -> Attempt:
    """``accepted``, or ``<outcome> <failures> <retry_at or ->``."""
    text = _text(reply)
    if text == "accepted":
        return _ACCEPTED
    outcome, failures, retry_at = str(text).split(" ")
    return Attempt(
        AttemptOutcome(outcome), int(failures), None if retry_at == "-" else float(retry_at)
    )


_EMPTY = ThrottleState()


def _throttle_state(reply: Any) -> ThrottleState:
    """``<last step or -> <failures> <blocked until>``, or nil for the empty state."""
    text = _text(reply)
    if text is None:
        return _EMPTY
    last, failures, blocked = text.split(" ")
    return ThrottleState(int(failures), float(blocked), None if last == "-" else int(last))


def _credential(reply: Any) -> Credential | None:
    fields = _pairs(reply)
    if _RECORD not in fields:
        return None
    recovery = sorted(
        (int(order), name[len(_RECOVERY) :])
        for name, order in fields.items()
        if name.startswith(_RECOVERY)
    )
    data = loads(fields[_RECORD])
    data["recovery_hashes"] = [digest for _, digest in recovery]
    data["version"] = int(fields.get(_VERSION, "0"))
    return Credential.from_dict(data)


def _tenant(reply: Any) -> Tenant | None:
    # Decoded anew on every read: a Tenant's attributes are a mutable dict, so no two
    # callers may ever hold the same one.
    text = _text(reply)
    return None if text is None else stored_tenant(loads(text))


def _tenant_for_decision(reply: Any) -> Tenant | None:
    text = _text(reply)
    return None if text is None else tenant_for_decision(text)


#: Grants by the exact stored value they were decoded from. A Grant is immutable and
#: the value holds all of it, so the same object answers every read of the same value:
#: a session's grant is read on each of its guarded requests. Bounded: emptied when full.
_GRANTS: dict[Any, Grant] = {}
_GRANTS_MAX = 512


def _grant(reply: Any) -> Grant | None:
    """``<expires_at> <grant JSON>``, or nil."""
    if reply is None:
        return None
    grant = _GRANTS.get(reply)
    if grant is None:
        text = _text(reply)
        if text is None:
            return None
        _, record = text.split(" ", 1)
        grant = Grant.from_dict(loads(record))
        if len(_GRANTS) >= _GRANTS_MAX:
            _GRANTS.clear()
        _GRANTS[reply] = grant
    return grant


def _challenge(now: float) -> Callable[[Any], Challenge | None]:
    def decode(reply: Any) -> Challenge | None:
        text = _text(reply)
        if text is None:
            return None
        challenge = Challenge.from_dict(loads(text))
        return None if challenge.expires_at <= now else challenge

    return decode


def _stored_tenant(reply: Any) -> Tenant:
    return stored_tenant(loads(str(_text(reply))))


def _swapped(reply: Any) -> tuple[bool, str | None]:
    """:data:`SWAP_VALUE`'s reply: whether it wrote, and if not the current value."""
    if int(reply[0]) == 1:
        return True, None
    return False, _text(reply[1])


def _passkeys(user_id: str) -> Callable[[Any], tuple[Passkey, ...]]:
    """A passkeys hash (see :meth:`.RedisKeys.passkeys`) as passkeys, oldest first."""

    def decode(reply: Any) -> tuple[Passkey, ...]:
        fields = _pairs(reply)
        found = []
        for name, value in fields.items():
            if not name.startswith("k:"):
                continue
            credential_id = name[2:]
            count, backup_state, used = fields["c:" + credential_id].split(" ")
            data = loads(value)
            found.append(
                Passkey(
                    user_id=user_id,
                    credential_id=credential_id,
                    credential_data=str(data["credential_data"]),
                    name=fields["n:" + credential_id],
                    sign_count=int(count),
                    backup_eligible=bool(data["backup_eligible"]),
                    backup_state=backup_state == "1",
                    user_verified=bool(data["user_verified"]),
                    created_at=float(data["created_at"]),
                    last_used_at=None if used == "-" else float(used),
                    transports=tuple(data["transports"]),
                )
            )
        return tuple(sorted(found, key=lambda p: (p.created_at, p.credential_id)))

    return decode


def _counter_state(passkey: Passkey) -> str:
    used = "-" if passkey.last_used_at is None else _float(passkey.last_used_at)
    return f"{int(passkey.sign_count):d} {1 if passkey.backup_state else 0} {used}"


def _claimed(reply: Any) -> bool:
    """``SET ... NX``: ``OK`` if it set the key, nil if the key was there."""
    return reply is not None and reply is not False


def _count(reply: Any) -> int:
    return int(reply)


def _positive(reply: Any) -> bool:
    return int(reply) > 0


def _none(reply: Any) -> None:
    return None


# ops ---------------------------------------------------------------------------

#: An operation of several round trips: yields each :class:`Op` and receives its
#: decoded reply (the stores drive it; :mod:`.redis_ops` stays without I/O).
Steps: TypeAlias = Generator[Op[Any], Any, T]


@dataclass(frozen=True, slots=True)
class RedisOps:
    """Builds the :class:`Op` for each method of :class:`~stepup.adapters.storage.base.Store`."""

    keys: RedisKeys

    def _attempt(
        self, name: str, key: str, step: str, now: float, throttle: ThrottlePolicy
    ) -> Op[Attempt]:
        args = (step, _float(now), *_policy_args(throttle))
        return _script(name, ATTEMPT, self.keys.attempt(key), args, _attempt)

    def totp_attempt(
        self, key: str, step: int | None, now: float, throttle: ThrottlePolicy
    ) -> Op[Attempt]:
        boundary.check_totp_attempt(key, step, now)
        return self._attempt(
            "totp_attempt", key, "" if step is None else str(int(step)), now, throttle
        )

    def throttle_charge(self, key: str, now: float, throttle: ThrottlePolicy) -> Op[Attempt]:
        # A charge is a stepless attempt: the script counts a failure unless blocked.
        boundary.check_throttle_charge(key, now)
        return self._attempt("throttle_charge", key, "", now, throttle)

    def throttle_refund(self, key: str, charge: Attempt, at: float) -> Op[None]:
        boundary.check_throttle_refund(key, charge, at)
        if charge.outcome is AttemptOutcome.REJECTED:
            written = charge.retry_at if charge.retry_at is not None else at
            args: tuple[str, ...] = (f"{charge.failures:d}", _float(written), _float(at))
        else:
            args = ("-", "0", "0")  # only a charge that counted a failure is refunded
        return _script("throttle_refund", REFUND, self.keys.attempt(key), args, _none)

    def throttle_clear(self, key: str) -> Op[None]:
        boundary.check_throttle_clear(key)
        return _script("throttle_clear", CLEAR_THROTTLE, self.keys.attempt(key), (), _none)

    def throttle_state(self, key: str) -> Op[ThrottleState]:
        boundary.check_throttle_state(key)
        return Op("throttle_state", ("GET", self.keys.attempt(key)), _throttle_state)

    def get_credential(self, user_id: str) -> Op[Credential | None]:
        boundary.check_user_read(user_id)
        return Op("get_credential", ("HGETALL", self.keys.credential(user_id)), _credential)

    @staticmethod
    def _credential_fields(credential: Credential) -> tuple[str, ...]:
        """The hash's fields but the version: ``record`` JSON, one ``r:<digest>`` each."""
        record = credential.to_dict()
        del record["recovery_hashes"], record["version"]
        fields: list[str] = [_RECORD, _dumps(record)]
        for order, digest in enumerate(credential.recovery_hashes):
            fields += [_RECOVERY + digest, str(order)]
        return tuple(fields)

    def put_credential(self, credential: Credential) -> Op[None]:
        boundary.check_credential_write(credential)
        key = self.keys.credential(credential.user_id)
        args = (str(new_credential_version()), *self._credential_fields(credential))
        return _script("put_credential", PUT_CREDENTIAL, key, args, _none)

    def add_credential(self, credential: Credential) -> Op[bool]:
        boundary.check_credential_write(credential)
        key = self.keys.credential(credential.user_id)
        args = (str(new_credential_version()), *self._credential_fields(credential))
        return _script("add_credential", ADD_CREDENTIAL, key, args, _positive)

    def replace_credential(self, credential: Credential, expected_version: int) -> Op[bool]:
        boundary.check_replace_credential(credential, expected_version)
        key = self.keys.credential(credential.user_id)
        args = (str(int(expected_version)), *self._credential_fields(credential))
        return _script("replace_credential", REPLACE_CREDENTIAL, key, args, _positive)

    def delete_credential(self, user_id: str) -> Op[bool]:
        boundary.check_delete_credential(user_id)
        return Op("delete_credential", ("DEL", self.keys.credential(user_id)), _positive)

    def consume_recovery_hash(self, user_id: str, digest: str) -> Op[bool]:
        boundary.check_consume_recovery_hash(user_id, digest)
        # HDEL inside the script: exactly one caller sees the field go (and bumps v).
        key, name = self.keys.credential(user_id), _RECOVERY + digest
        return _script("consume_recovery_hash", CONSUME_RECOVERY, key, (name,), _positive)

    def get_tenant(self, tenant_id: str) -> Op[Tenant | None]:
        return Op("get_tenant", ("GET", self.keys.tenant(tenant_id)), _tenant)

    def tenant_for_decision(self, tenant_id: str) -> Op[Tenant | None]:
        """``get_tenant`` for decision code (a check's ``batch``): the decoded tenant is
        shared by the checks that read the same stored value."""
        return Op("get_tenant", ("GET", self.keys.tenant(tenant_id)), _tenant_for_decision)

    def put_tenant(self, tenant: Tenant) -> Op[None]:
        boundary.check_tenant_write(tenant)
        key = self.keys.tenant(tenant.tenant_id)
        return Op("put_tenant", ("SET", key, _dumps(tenant.to_dict())), _none)

    def add_tenant(self, tenant: Tenant) -> Op[Tenant]:
        boundary.check_tenant_write(tenant)
        key, value = self.keys.tenant(tenant.tenant_id), _dumps(tenant.to_dict())
        return _script("add_tenant", ADD_VALUE, key, (value,), _stored_tenant)

    def patch_tenant(
        self, tenant_id: str, attributes: Mapping[str, Any], flags: Mapping[str, Any]
    ) -> Steps[tuple[Tenant, Tenant] | None]:
        """Read, merge with :meth:`Tenant.patched`, and write only if the stored value
        is still the one read (:data:`SWAP_VALUE`); a lost round merges into the value
        the script answered with. The merge is Python's, not Lua's (cjson would turn
        ``[]`` into ``{}`` and round large numbers in attributes it never meant to
        touch): two round trips when uncontended, one more per lost round."""
        boundary.check_patch_tenant(tenant_id)
        key = self.keys.tenant(tenant_id)
        text: str | None = yield Op("patch_tenant", ("GET", key), _text)
        for _ in range(PATCH_TRIES):
            if text is None:
                return None
            before = stored_tenant(loads(text))
            after = before.patched(attributes, flags)
            args = (text, _dumps(after.to_dict()))
            won, text = yield _script("patch_tenant", SWAP_VALUE, key, args, _swapped)
            if won:
                return before, after
        raise ConcurrentUpdateError(
            f"Redis store: patch_tenant lost {PATCH_TRIES} rounds to other writers"
        )

    def put_grant(self, grant: Grant, expires_at: float) -> Op[None]:
        boundary.check_put_grant(grant, expires_at)
        value = f"{_float(expires_at)} {grant_text(grant, _dumps)}"
        args = (grant.session_id, value, _float(expires_at), _float(grant.authenticated_at))
        return _script("put_grant", PUT_GRANT, self.keys.grants(grant.user_id), args, _none)

    def replace_grant(
        self, grant: Grant, expires_at: float, expected: Grant, from_session: str
    ) -> Op[bool]:
        boundary.check_replace_grant(grant, expires_at, expected, from_session)
        value = f"{_float(expires_at)} {grant_text(grant, _dumps)}"
        # The JSON put_grant stored for ``expected`` where it is, compared as text: equal
        # grants have one text (grant_text).
        stored = replace(expected, user_id=grant.user_id, session_id=from_session)
        args = (
            grant.session_id,
            value,
            _float(expires_at),
            _float(grant.authenticated_at),
            from_session,
            grant_text(stored, _dumps),
        )
        key = self.keys.grants(grant.user_id)
        return _script("replace_grant", REPLACE_GRANT, key, args, _positive)

    def get_grant(self, user_id: str, session_id: str) -> Op[Grant | None]:
        return Op("get_grant", ("HGET", self.keys.grants(user_id), session_id), _grant)

    def revoke_grants(self, user_id: str, session_id: str | None = None) -> Op[int]:
        boundary.check_revoke_grants(user_id, session_id)
        key = self.keys.grants(user_id)
        if session_id is not None:
            return Op("revoke_grants", ("HDEL", key, session_id), _count)
        return _script("revoke_grants", REVOKE_ALL, key, (), _count)

    def put_challenge(self, challenge: Challenge) -> Op[None]:
        boundary.check_put_challenge(challenge)
        key = self.keys.challenge(challenge.challenge_id)
        ttl = _ttl_ms(challenge.expires_at - challenge.issued_at)
        return Op("put_challenge", ("SET", key, _dumps(challenge.to_dict()), "PX", ttl), _none)

    def take_challenge(self, challenge_id: str, now: float) -> Op[Challenge | None]:
        boundary.check_take_challenge(challenge_id)
        # GETDEL removes and returns in one atomic command: taken exactly once.
        key = self.keys.challenge(challenge_id)
        return Op("take_challenge", ("GETDEL", key), _challenge(now))

    # passkeys ----------------------------------------------------------------------

    def list_passkeys(self, user_id: str) -> Op[tuple[Passkey, ...]]:
        boundary.check_user_read(user_id)
        return Op("list_passkeys", ("HGETALL", self.keys.passkeys(user_id)), _passkeys(user_id))

    def add_passkey(self, passkey: Passkey, max_per_user: int) -> Steps[bool]:
        """Three single-key steps, because in a cluster the credential id's index entry
        and the user's passkeys hash are in different slots:

        1. claim the id in the global index (``SET NX`` with a :data:`CLAIM_MS` expiry
           and a value no other call uses): a second add of the same id, by anyone,
           stops here;
        2. add it to the user's hash unless the user is at the limit (one script, atomic
           in the user's slot); if refused, release the claim;
        3. make the claim permanent (the user id, no expiry), if it is still ours.

        A process that dies after 1 leaves a claim that expires; one that dies between
        2 and 3 leaves a passkey whose id is unclaimed once the claim expires (a second
        registration of that very id would then be accepted: authenticators make a new
        random id for every registration, so only a forged one could)."""
        boundary.check_add_passkey(passkey, max_per_user)
        index = self.keys.passkey_id(passkey.credential_id)
        pending = f"pending {secrets.token_hex(8)} {passkey.user_id}"
        claim = ("SET", index, pending, "NX", "PX", CLAIM_MS)
        if not (yield Op("add_passkey", claim, _claimed)):
            return False
        record = passkey.to_dict()
        static = _dumps({name: record[name] for name in _PASSKEY_STATIC})
        args = (
            passkey.credential_id,
            str(int(max_per_user)),
            static,
            passkey.name,
            _counter_state(passkey),
        )
        hash_key = self.keys.passkeys(passkey.user_id)
        if not (yield _script("add_passkey", ADD_PASSKEY, hash_key, args, _positive)):
            yield _script("add_passkey", RELEASE_CLAIM, index, (pending,), _positive)
            return False
        confirm = (pending, passkey.user_id)
        if not (yield _script("add_passkey", CONFIRM_CLAIM, index, confirm, _positive)):
            # Our claim expired before we got here and someone may hold the id now.
            yield Op("add_passkey", ("HDEL", hash_key, *_passkey_fields(passkey)), _count)
            return False
        return True

    def remove_passkey(self, user_id: str, credential_id: str) -> Steps[bool]:
        """Remove it from the user's hash, then release its index entry (a process that
        dies in between leaves the entry, which only refuses that same id again)."""
        boundary.check_remove_passkey(user_id, credential_id)
        fields = _passkey_fields_of(credential_id)
        removed = yield Op("remove_passkey", ("HDEL", self.keys.passkeys(user_id), *fields), _count)
        if not removed:
            return False
        index = self.keys.passkey_id(credential_id)
        yield _script("remove_passkey", RELEASE_CLAIM, index, (user_id,), _positive)
        return True

    def record_passkey_use(self, passkey: Passkey, expected_count: int) -> Op[bool]:
        boundary.check_record_passkey_use(passkey, expected_count)
        key = self.keys.passkeys(passkey.user_id)
        args = (passkey.credential_id, str(int(expected_count)), _counter_state(passkey))
        return _script("record_passkey_use", RECORD_PASSKEY_USE, key, args, _positive)

    def rename_passkey(self, user_id: str, credential_id: str, name: str) -> Op[bool]:
        boundary.check_rename_passkey(user_id, credential_id, name)
        key = self.keys.passkeys(user_id)
        return _script("rename_passkey", RENAME_PASSKEY, key, (credential_id, name), _positive)


def _passkey_fields_of(credential_id: str) -> tuple[str, str, str]:
    return ("k:" + credential_id, "n:" + credential_id, "c:" + credential_id)


def _passkey_fields(passkey: Passkey) -> tuple[str, str, str]:
    return _passkey_fields_of(passkey.credential_id)
