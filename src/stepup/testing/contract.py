"""The store contract suite: one set of tests every store must pass, sync or async.

Run it against your own store in a few lines::

    import pytest
    from stepup.testing.contract import StoreContract

    class TestMyStore(StoreContract):
        @pytest.fixture
        def store(self):
            store = MyStore("...")   # construct without connecting if it is async
            yield store
            store.close()

Async stores work unchanged: the suite runs their coroutines on a private event
loop and uses asyncio tasks (instead of threads) for the concurrency tests. Every
test uses fresh random keys, so one store may serve the whole suite.

Races that threads would only hit by luck are forced: a wrapper around the store
(``_Competing``) runs a whole competing request right before a flow's write, e.g.
another admin's PATCH before ``patch_tenant``, a sign-in spending a recovery code
before reseal's ``replace_credential``, or another tab's whole first enrolment (begun
and confirmed) before a first enrolment's ``add_credential``; the tests then check
that nothing was lost.
The TOTP device cases do the same with a spent recovery code or a rename before the
``replace_credential`` of adding, renaming, removing or marking a device used; the
grant cases with a password change (every grant of the user revoked) before a
re-authentication's ``replace_grant``, or before a transaction's carry of a renewed
session's grant to the new id (the revoked proof must not come back).
The passkey cases do the same with a second registration of the same credential
before ``add_passkey`` and a second assertion of the same authenticator before
``record_passkey_use`` (they need the ``passkeys`` extra, python-fido2).

``_Inside`` forces a race inside one store method instead, for a store that reads
through its own getter: another admin's PATCH right after ``patch_tenant``'s own
``get_tenant``, a spent recovery code right after ``replace_credential``'s
``get_credential``, another first credential right after ``add_credential``'s
``get_credential``, a second guess or claim right after ``totp_attempt``'s or
``throttle_charge``'s ``throttle_state``, the same recovery code (or another of the
user's) spent right after ``consume_recovery_hash``'s ``get_credential``, and a second
use of the same passkey, a rename or a removal right after ``record_passkey_use``'s
``list_passkeys``. A store that reads through that getter and writes without holding
anything fails those cases deterministically; one that locks passes.
A store that reads its backend directly (its own dicts, SQL, Lua) cannot be
hooked that way: the case then forces nothing, and says so instead of passing. It is
skipped with "could not force the interleaving inside totp_attempt ...: the store does
not read through throttle_state; only the thread cases test it", and only the thread
cases (many calls at once, with threads switching every microsecond) test that store.
stepup's own stores are not hooked either: they read in SQL, in Lua or under their own
lock, and get a warning instead of a skip.

``take_challenge`` has no such case: no public getter of a challenge exists, so there
is no read of the store's own to run a competing take after. It is held to single use
by a concurrent-threads case only (``test_concurrent_take_wins_once``): 32 threads
behind a barrier take one challenge, in five rounds, and each thread lets the others
run after every call the store's method makes (a profile function, see
``_yield_inside``), so a store that reads a challenge in one call and deletes it in a
later one, holding nothing, hands it out twice in practically every round. That is
very likely, not certain; the recovery-code and passkey-use thread cases yield the
same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import inspect
import math
import sys
import threading
import time
import uuid
from collections.abc import Callable, Collection, Coroutine, Iterator
from dataclasses import replace
from functools import partial
from types import FrameType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ..adapters.storage.base import MAX_KEY_LENGTH
from ..errors import AlreadyEnrolledError, ConcurrentUpdateError, MalformedInputError
from ..events import EventBus, StepupEvent, TenantFlagChanged
from ..ids import MAX_ID_LENGTH
from ..policy import Policy, Rule, Sensitivity
from ..reauth import FEATURE_FLAG, Allowed, AsyncReauth, Reauth
from ..records import (
    Attempt,
    AttemptOutcome,
    Challenge,
    Credential,
    Grant,
    Passkey,
    Tenant,
    ThrottleState,
    TotpDevice,
)
from ..resume import AsyncSuspensions, Resumed, Suspended, Suspensions
from ..sealing import SecretBox
from ..subject import Subject
from ..tenants import AsyncTenantSettings, TenantSettings
from ..throttle import ThrottlePolicy, apply_attempt, apply_charge, apply_refund, keep_until
from ..totp import TOTP
from ..transactions import transaction_digest
from ..twofactor import RESEAL_TRIES, AsyncTwoFactor, TwoFactor
from .clock import SettableClock

__all__ = ["StoreContract"]

T0 = 1_700_000_000.0
THREADS = 32
ROUNDS = 20
POLICY = ThrottlePolicy()
NO_DELAY = ThrottlePolicy(free_failures=10**6, base_delay=1.0, max_delay=1.0, forget_after=3600)


#: Integers no store keeps (stores keep signed 64-bit ones): see ``check_int64``.
_BEYOND_64_BITS = st.integers(min_value=2**63) | st.integers(max_value=-(2**63) - 1)


#: Ids no store keeps alike: NUL (PostgreSQL refuses it), a lone surrogate (not UTF-8),
#: not text (an int one SQL column reads back as text, ``None``, bytes), or one over
#: :data:`~stepup.ids.MAX_ID_LENGTH`. Every store refuses a write of one.
_UNKEEPABLE_IDS = (
    st.tuples(
        st.text(max_size=8), st.sampled_from("\x00\ud800\udbff\udc00\udfff"), st.text(max_size=8)
    ).map("".join)
    | st.integers()
    | st.none()
    | st.binary(min_size=1, max_size=8)
    | st.just("x" * (MAX_ID_LENGTH + 1))
)


#: Hypothesis settings of the cases that hold every store to a few generated inputs
#: (each example is a store round trip; the fixture is the test's store).
_FEW_EXAMPLES = settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.differing_executors],
)


def _refused(thunk: Callable[[], Any]) -> bool:
    """Whether ``thunk()`` was refused as malformed input (any other error propagates, so
    a store error or an ``AttributeError`` shows as itself)."""
    try:
        thunk()
    except MalformedInputError:
        return True
    return False


def _lookalike_ids() -> list[str]:
    """Ids, all different, that a store must keep apart and give back exactly: ones that
    differ only by case (or compare equal case-folded), by Unicode normalisation (NFC
    and NFD, a compatibility form), by trailing space; emoji (astral, joined, with a
    skin tone); right-to-left text and a direction override; a Redis hash tag's braces
    and the percent escapes of them; and 1024 characters (the longest id stepup
    accepts, see :data:`stepup.ids.MAX_ID_LENGTH`), two of them differing only in the
    last one; and an id that reads like the SHA-256 digest a store might keep for the
    long one. Fresh for every call, so one store may serve every run."""
    stem = uuid.uuid4().hex
    long_id = stem + "L" * (1024 - len(stem))
    tails = [
        "alice", "Alice", "ALICE",  # case
        "stra\u00dfe", "strasse", "STRASSE",  # case-folded equal
        "caf\u00e9", "cafe\u0301",  # NFC, NFD
        "\u00c5", "\u212b", "A\u030a",  # Å: letter, Angstrom sign, decomposed
        "\ufb01", "fi",  # a compatibility ligature (NFKC equal)
        "x ", "x", "x  ",  # trailing space
        "\U0001f511", "\U0001f469\u200d\U0001f4bb", "\U0001f44d\U0001f3fd", "\U0001f44d",
        "\u05e9\u05dc\u05d5\u05dd", "\u0645\u0631\u062d\u0628\u0627", "\u202eabc", "abc",
        "{tag}", "{", "}", "{}", "%7B", "%7Btag%7D", "%", "%25", "%%", "%7D",
    ]  # fmt: skip
    # What a store that keeps long ids as a digest might store the long one as.
    digest = "sha256:" + hashlib.sha256(long_id.encode()).hexdigest()
    return [f"{stem}-{tail}" for tail in tails] + [
        long_id,
        long_id[:-1] + "l",
        long_id[:-1],
        digest,
    ]


def _key(prefix: str = "k") -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


class _Runner:
    """Calls store methods the same way whether they are sync or async."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.is_async = inspect.iscoroutinefunction(getattr(store, "totp_attempt", None))
        self.loop = asyncio.new_event_loop() if self.is_async else None

    def __call__(self, method: str, *args: Any) -> Any:
        result = getattr(self.store, method)(*args)
        if self.loop is not None:
            return self.loop.run_until_complete(result)
        return result

    def resolve(self, value: Any) -> Any:
        """``value``, or what it resolves to on the suite's loop if it is awaitable."""
        if self.loop is not None and inspect.isawaitable(value):
            return self.loop.run_until_complete(value)
        return value

    def concurrently(
        self, method: str, calls: list[tuple[Any, ...]], *, yielding: bool = False
    ) -> list[Any]:
        """Start every call at once: threads behind a barrier, or gathered tasks.
        ``yielding``: each thread lets the others run after every call ``method`` makes
        (see :func:`_yield_inside`)."""
        thunks: list[Callable[[], Any]] = [
            partial(getattr(self.store, method), *args) for args in calls
        ]
        return self.together(thunks, yield_inside=method if yielding else None)

    def together(
        self, thunks: list[Callable[[], Any]], *, yield_inside: str | None = None
    ) -> list[Any]:
        """Start every thunk at once (threads behind a barrier; for an async store each
        returns a coroutine, and they are gathered) and return their results in order.
        An exception in any of them is raised here. With ``yield_inside`` (a store
        method's name) each thread lets the others run after every call that method
        makes (an async store's tasks already switch wherever it awaits)."""
        if self.loop is not None:

            async def gather() -> list[Any]:
                coros: list[Coroutine[Any, Any, Any]] = [thunk() for thunk in thunks]
                return list(await asyncio.gather(*coros))

            return self.loop.run_until_complete(gather())
        with _switching_often():
            return self._threads_together(thunks, yield_inside)

    @staticmethod
    def _threads_together(
        thunks: list[Callable[[], Any]], yield_inside: str | None = None
    ) -> list[Any]:
        barrier = threading.Barrier(len(thunks))
        results: list[Any] = [None] * len(thunks)
        errors: list[BaseException] = []

        def worker(index: int, thunk: Callable[[], Any]) -> None:
            barrier.wait()
            if yield_inside is not None:
                sys.setprofile(partial(_yield_inside, yield_inside))
            try:
                results[index] = thunk()
            except BaseException as exc:  # re-raised in the test's thread
                errors.append(exc)
            finally:
                if yield_inside is not None:
                    sys.setprofile(None)

        threads = [threading.Thread(target=worker, args=(i, t)) for i, t in enumerate(thunks)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]
        return results

    def close(self) -> None:
        if self.loop is not None:
            self.loop.close()


#: How often (seconds) a thread case lets the interpreter switch threads: far more often
#: than the default 5 ms, so a store that reads and writes without holding anything is
#: far more likely to be caught between the two.
_SWITCH_INTERVAL = 1e-6


@contextlib.contextmanager
def _switching_often() -> Iterator[None]:
    """Threads switch every :data:`_SWITCH_INTERVAL` inside, as before after."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(_SWITCH_INTERVAL)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def _yield_inside(method: str, frame: FrameType, event: str, _arg: object) -> None:
    """A thread's profile function (:func:`sys.setprofile`): whenever a call made by
    ``method`` (or by a function it called) returns, let the other threads run. A store
    that reads in one call and writes in a later one, holding nothing, then has every
    thread read before any of them writes, instead of only when a thread switch
    happens to land between the two (a few bytecodes for an in-process store); one
    that holds a lock from read to write keeps the others waiting on it."""
    if event == "c_return":
        caller: FrameType | None = frame
    elif event == "return":
        caller = frame.f_back
    else:
        return
    for _ in range(2):
        if caller is None:
            return
        if caller.f_code.co_name == method:
            time.sleep(0)  # releases the GIL: a waiting thread takes it
            return
        caller = caller.f_back


class _Competing:
    """A store wrapper that forces an interleaving: right before the flow's write (the
    first call of any of ``writes``) it runs ``compete``, a whole competing request,
    to completion, then lets the write go ahead. ``times`` is how many writes it
    precedes (``None``: every one). Sync or async, like the store it wraps."""

    def __init__(
        self,
        store: Any,
        writes: Collection[str],
        compete: Callable[[], Any],
        times: int | None = 1,
    ) -> None:
        self._store, self._writes, self._compete, self._left = store, writes, compete, times
        self.competed = 0

    def _due(self) -> bool:
        if self._left is not None:
            if self._left <= 0:
                return False
            self._left -= 1
        self.competed += 1
        return True

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._store, name)
        if name not in self._writes:
            return method
        if inspect.iscoroutinefunction(method):

            async def compete_then_write_async(*args: Any) -> Any:
                if self._due():
                    competing = self._compete()
                    if inspect.isawaitable(competing):
                        await competing
                return await method(*args)

            return compete_then_write_async

        def compete_then_write(*args: Any) -> Any:
            if self._due():
                self._compete()
            return method(*args)

        return compete_then_write


#: How long a competing request forced inside a store method may take before the
#: method is let go on (a store that holds a lock makes it wait: that is atomic).
_PATIENCE = 1.0
#: How long a competing request may take once the method it raced is done.
_FINISH = 30.0
_MISSING = object()


class _Inside:
    """Forces an interleaving *inside* one store method, for stores that read through
    their own public methods: while ``outer`` (e.g. ``patch_tenant``) runs, right after
    its first call of ``read`` (e.g. ``get_tenant``) returns, ``compete`` (a whole
    competing request) starts, in a thread for a sync store or a task for an async one,
    and gets :data:`_PATIENCE` seconds before ``outer`` goes on to its write.

    A store that reads, merges and writes without holding anything lets the competitor
    finish in between, and the case then sees the lost update; a store that holds a lock
    (or retries a compare-and-set) keeps both. A store that never calls ``read`` inside
    ``outer`` (the built-in ones read in SQL, in Lua or under their own lock) is not
    hooked or slowed; ``fired`` says whether the competitor ran inside ``outer``, and a
    case that did not is skipped (warned, for stepup's own stores), never passed.
    Use as a context manager: the store's own methods are back afterwards."""

    def __init__(self, call: _Runner, outer: str, read: str, compete: Callable[[], Any]) -> None:
        self._call, self._outer, self._read, self._compete = call, outer, read, compete
        self._inside = False
        self.fired = False
        self.result: Any = None  # what the competing request answered
        self._saved: dict[str, Any] = {}
        self._errors: list[BaseException] = []
        self._thread: threading.Thread | None = None
        self._task: asyncio.Task[Any] | None = None

    def __enter__(self) -> _Inside:
        store = self._call.store
        real_outer, real_read = getattr(store, self._outer), getattr(store, self._read)
        if self._call.is_async:

            async def outer_async(*args: Any) -> Any:
                self._inside = True
                try:
                    return await real_outer(*args)
                finally:
                    self._inside = False

            async def read_async(*args: Any) -> Any:
                result = await real_read(*args)
                if self._inside and not self.fired:
                    self.fired = True
                    self._task = asyncio.ensure_future(self._compete())
                    await asyncio.wait({self._task}, timeout=_PATIENCE)
                return result

            hooks: tuple[Any, Any] = (outer_async, read_async)
        else:

            def outer_sync(*args: Any) -> Any:
                self._inside = True
                try:
                    return real_outer(*args)
                finally:
                    self._inside = False

            def read_sync(*args: Any) -> Any:
                result = real_read(*args)
                if self._inside and not self.fired:
                    self.fired = True
                    self._thread = threading.Thread(target=self._compete_sync, daemon=True)
                    self._thread.start()
                    self._thread.join(_PATIENCE)
                return result

            hooks = (outer_sync, read_sync)
        try:
            own = vars(store)
        except TypeError:  # a store with __slots__ cannot be hooked: no interleaving
            return self
        self._saved = {name: own.get(name, _MISSING) for name in (self._outer, self._read)}
        setattr(store, self._outer, hooks[0])
        setattr(store, self._read, hooks[1])
        return self

    def _compete_sync(self) -> None:
        try:
            self.result = self._compete()
        except BaseException as exc:  # re-raised in the test's thread
            self._errors.append(exc)

    def _restore(self) -> None:
        store = self._call.store
        for name, saved in self._saved.items():
            if saved is _MISSING:
                delattr(store, name)
            else:
                setattr(store, name, saved)
        self._saved = {}

    def finish(self) -> None:
        """Wait for the competing request (it may have waited for a lock) and raise
        what it raised. One that never ran inside ``outer`` runs now, after it, and the
        case says it forced nothing (:meth:`_not_forced`)."""
        if not self.fired:
            self.result = self._call.resolve(self._compete())
            self._not_forced()
            return
        if self._thread is not None:
            self._thread.join(_FINISH)
            assert not self._thread.is_alive(), "the competing request never finished"
        if self._task is not None:
            self.result = self._call.resolve(asyncio.wait_for(self._task, _FINISH))
        if self._errors:
            raise self._errors[0]

    def _not_forced(self) -> None:
        """The interleaving could not be forced: the case must not pass as if it had
        been. A store that answers each operation in one atomic step (one SQL statement
        or transaction, a Lua script, a lock held from read to write) says so with
        ``atomic_operations = True``: there is no read of its own to run the competing
        request after, and the thread cases test it. Any other store is skipped, saying
        what was not tested."""
        if getattr(self._call.store, "atomic_operations", False) is True:
            return
        store = type(self._call.store)
        pytest.skip(
            f"could not force the interleaving inside {self._outer} of"
            f" {store.__module__}.{store.__qualname__}: the store does not read through"
            f" {self._read} (and does not say atomic_operations = True); only the thread"
            " cases test it"
        )

    def __exit__(self, *exc_info: object) -> None:
        self._restore()
        if exc_info[0] is None:
            self.finish()


#: The writes a tenant PATCH might make; the competing request runs right before.
_TENANT_WRITES = ("patch_tenant", "put_tenant")
#: The writes a reseal might make.
_CREDENTIAL_WRITES = ("replace_credential", "put_credential")
PATCHES = 16
_SECRET = "JBSWY3DPEHPK3PXP"  # noqa: S105 (the RFC 6238 example secret, for sealing)
_OTHER_SEAL = "v1:k2:bmV3"  # an opaque sealed blob
_ORIGIN = "https://app.example.com"
#: A COSE public key's worth of base64url: the store keeps it as given.
_KEY_DATA = "AAAAAAAAAAAAAAAAAAAAAAAQ" + "pQECAyYgASFYIK" * 8


def _by_id(passkey: Passkey) -> str:
    return passkey.credential_id


def _patch_body(attributes: dict[str, Any]) -> dict[str, Any]:
    return {"data": {"type": "tenant", "attributes": attributes}}


#: Text JSON keeps but some columns do not: NUL (PostgreSQL's ``jsonb`` and text refuse
#: it), a lone surrogate (not UTF-8), a character beyond the BMP and a non-ASCII one.
_ODD_TEXT = ("a\x00b", "a\ud800b", "\udfff", "\U0001f600", "Ünï")

#: Numbers a JSON round trip keeps as they are, but ``jsonb`` would not: ``1e16`` (read
#: back as the int 10**16), ``-0.0`` (as 0.0), and the smallest float.
_ODD_NUMBERS = {"big": 1e16, "negative_zero": -0.0, "tiny": 5e-324, "exact": 2**60 + 1}


def _as_sent(value: Any) -> Any:
    """``value`` with every number written out with its type, so comparing two of them
    tells ``1e16`` from ``10**16`` and ``-0.0`` from ``0.0`` (``==`` does not)."""
    if isinstance(value, dict):
        return {key: _as_sent(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_as_sent(item) for item in value]
    if isinstance(value, bool | int | float):
        return (type(value).__name__, repr(value))
    return value


def _flag_changes(events: list[StepupEvent]) -> list[tuple[str, str, Any, Any]]:
    return sorted(
        (e.actor_id, e.flag, e.old, e.new) for e in events if isinstance(e, TenantFlagChanged)
    )


class StoreContract:
    """Subclass this in a test module and provide a ``store`` fixture."""

    @pytest.fixture
    def store(self) -> Any:
        raise NotImplementedError("provide a `store` fixture in your subclass")

    @pytest.fixture
    def call(self, store: Any) -> Iterator[_Runner]:
        runner = _Runner(store)
        yield runner
        if runner.loop is not None and hasattr(store, "aclose"):
            runner("aclose")  # async stores close on the loop they ran on
        runner.close()

    # replay ledger ------------------------------------------------------------

    def test_first_step_is_accepted(self, call: _Runner) -> None:
        attempt = call("totp_attempt", _key(), 100, T0, POLICY)
        assert attempt.outcome is AttemptOutcome.ACCEPTED

    def test_same_or_older_step_is_replayed(self, call: _Runner) -> None:
        key = _key()
        call("totp_attempt", key, 100, T0, NO_DELAY)
        assert call("totp_attempt", key, 100, T0, NO_DELAY).outcome is AttemptOutcome.REPLAYED
        assert call("totp_attempt", key, 99, T0, NO_DELAY).outcome is AttemptOutcome.REPLAYED
        assert call("totp_attempt", key, 101, T0, NO_DELAY).outcome is AttemptOutcome.ACCEPTED
        assert call("throttle_state", key).last_step == 101

    def test_steps_beyond_32_bits(self, call: _Runner) -> None:
        key = _key()
        big = 2**40
        assert call("totp_attempt", key, big, T0, NO_DELAY).outcome is AttemptOutcome.ACCEPTED
        assert call("totp_attempt", key, big, T0, NO_DELAY).outcome is AttemptOutcome.REPLAYED

    def test_steps_at_the_ends_of_64_bits(self, call: _Runner) -> None:
        key = _key()
        low, high = -(2**63), 2**63 - 1
        assert call("totp_attempt", key, low, T0, NO_DELAY).outcome is AttemptOutcome.ACCEPTED
        assert call("totp_attempt", key, high, T0, NO_DELAY).outcome is AttemptOutcome.ACCEPTED
        assert call("totp_attempt", key, high, T0, NO_DELAY).outcome is AttemptOutcome.REPLAYED
        assert call("throttle_state", key).last_step == high

    @_FEW_EXAMPLES
    @given(step=_BEYOND_64_BITS)
    def test_steps_beyond_64_bits_are_refused(self, call: _Runner, step: int) -> None:
        """No store could keep such a step: every one refuses it the same way, before
        it changes anything (a stored step stays, no failure is counted)."""
        key = _key()
        call("totp_attempt", key, 100, T0, NO_DELAY)
        with pytest.raises(MalformedInputError, match="step"):
            call("totp_attempt", key, step, T0, NO_DELAY)
        assert call("throttle_state", key) == ThrottleState(0, 0.0, 100)
        with pytest.raises(MalformedInputError, match="step"):
            call("totp_attempt", _key(), step, T0, NO_DELAY)

    def test_lookalike_throttle_keys_are_kept_apart(self, call: _Runner) -> None:
        keys = _lookalike_ids()
        for step, key in enumerate(keys, 1):
            assert call("totp_attempt", key, step, T0, NO_DELAY).outcome is AttemptOutcome.ACCEPTED
        call("totp_attempt", keys[0], None, T0, NO_DELAY)  # a failure for the first only
        states = [call("throttle_state", key) for key in keys]
        assert [state.last_step for state in states] == list(range(1, len(keys) + 1))
        assert [state.failures for state in states] == [1] + [0] * (len(keys) - 1)

    def test_keys_do_not_interfere(self, call: _Runner) -> None:
        first, second = _key(), _key()
        call("totp_attempt", first, 100, T0, POLICY)
        assert call("totp_attempt", second, 100, T0, POLICY).outcome is AttemptOutcome.ACCEPTED
        for _ in range(10):
            call("totp_attempt", first, None, T0, POLICY)
        assert call("throttle_state", second).failures == 0

    # throttle -----------------------------------------------------------------

    def test_failures_follow_the_schedule(self, call: _Runner) -> None:
        key = _key()
        now = T0
        for failures in range(1, 12):
            attempt = call("totp_attempt", key, None, now, POLICY)
            assert attempt.outcome is AttemptOutcome.REJECTED
            assert attempt.failures == failures, (
                f"the throttle lost count: failure {failures} in a row was counted as"
                f" {attempt.failures} (a stored block or count was forgotten)"
            )
            delay = POLICY.delay_after(failures)
            if delay:
                assert attempt.retry_at == pytest.approx(now + delay)
                blocked = call("totp_attempt", key, 500, now + delay / 2, POLICY)
                assert blocked.outcome is AttemptOutcome.THROTTLED, (
                    f"throttle never blocked after {failures} failures: the next guess, within"
                    f" the {delay:g} s delay, was {blocked.outcome.name}"
                )
                assert blocked.retry_at == pytest.approx(now + delay)
            else:
                assert attempt.retry_at is None
            now += delay

    def test_throttled_attempt_changes_nothing(self, call: _Runner) -> None:
        key = _key()
        for _ in range(POLICY.free_failures + 1):
            call("totp_attempt", key, None, T0, POLICY)
        before = call("throttle_state", key)
        assert call("totp_attempt", key, 7, T0 + 1, POLICY).outcome is AttemptOutcome.THROTTLED
        assert call("throttle_state", key) == before

    def test_success_does_not_clear_failures(self, call: _Runner) -> None:
        """Issue 12 item 8: guessing between the owner's sign-ins gains nothing."""
        key = _key()
        counted = POLICY.free_failures + 1
        for _ in range(counted):
            call("totp_attempt", key, None, T0, POLICY)
        later = T0 + POLICY.delay_after(counted)
        for step in (5, 6, 7):  # however often the owner signs in
            assert call("totp_attempt", key, step, later, POLICY).outcome is AttemptOutcome.ACCEPTED
        assert call("throttle_state", key) == ThrottleState(counted, later, 7)
        next_failure = call("totp_attempt", key, None, later, POLICY)
        assert next_failure.failures == counted + 1
        assert next_failure.retry_at == pytest.approx(later + POLICY.delay_after(counted + 1))

    def test_replay_counts_as_failure(self, call: _Runner) -> None:
        key = _key()
        call("totp_attempt", key, 5, T0, POLICY)
        assert call("totp_attempt", key, 5, T0, POLICY).failures == 1

    def test_charge_and_clear(self, call: _Runner) -> None:
        key = _key()
        tries = POLICY.free_failures + 1
        outcomes = [call("throttle_charge", key, T0, POLICY) for _ in range(tries)]
        assert [a.outcome for a in outcomes] == [AttemptOutcome.REJECTED] * len(outcomes)
        assert call("throttle_charge", key, T0, POLICY).outcome is AttemptOutcome.THROTTLED
        call("throttle_clear", key)
        assert call("throttle_charge", key, T0, POLICY).failures == 1

    def test_clear_keeps_the_last_step(self, call: _Runner) -> None:
        key = _key()
        call("totp_attempt", key, 9, T0, POLICY)
        call("throttle_clear", key)
        assert call("totp_attempt", key, 9, T0, POLICY).outcome is AttemptOutcome.REPLAYED

    def test_unknown_key_has_empty_state(self, call: _Runner) -> None:
        assert call("throttle_state", _key()) == ThrottleState()

    # concurrency ----------------------------------------------------------------

    def test_concurrent_claims_exactly_one_wins(self, call: _Runner) -> None:
        for _ in range(ROUNDS):
            key = _key()
            results = call.concurrently("totp_attempt", [(key, 42, T0, NO_DELAY)] * THREADS)
            winners = [r for r in results if r.outcome is AttemptOutcome.ACCEPTED]
            assert len(winners) == 1, (
                f"totp_attempt accepted one code {len(winners)} times out of {THREADS} at once:"
                " it must claim a step atomically (one sign-in per code)"
            )
            assert call("throttle_state", key).last_step == 42

    def test_concurrent_claims_on_two_keys_each_win_once(self, call: _Runner) -> None:
        first, second = _key(), _key()
        calls = [(first, 42, T0, NO_DELAY), (second, 42, T0, NO_DELAY)] * (THREADS // 2)
        results = call.concurrently("totp_attempt", calls)
        accepted = [
            args[0]
            for args, result in zip(calls, results, strict=True)
            if result.outcome is AttemptOutcome.ACCEPTED
        ]
        assert sorted(accepted) == sorted([first, second])

    def test_concurrent_failures_are_all_counted(self, call: _Runner) -> None:
        key = _key()
        call.concurrently("throttle_charge", [(key, T0, NO_DELAY)] * THREADS)
        counted = call("throttle_state", key).failures
        assert counted == THREADS, (
            f"throttle_charge counted {counted} of {THREADS} failures made at once: it must"
            " count atomically, or guesses outrun the throttle"
        )

    def test_concurrent_guesses_cannot_outrun_the_throttle(self, call: _Runner) -> None:
        key = _key()
        results = call.concurrently("totp_attempt", [(key, None, T0, POLICY)] * THREADS)
        evaluated = [r for r in results if r.outcome is not AttemptOutcome.THROTTLED]
        assert len(evaluated) == POLICY.free_failures + 1, (
            f"{len(evaluated)} of {THREADS} guesses at once were checked, the throttle allows"
            f" {POLICY.free_failures + 1}: totp_attempt must read and count atomically"
        )

    def test_attempts_made_inside_an_attempt_are_all_counted(self, call: _Runner) -> None:
        """A guess (or a charge) lands between the store's own read of the throttle state
        and its write (for a store that reads through ``throttle_state``): both count."""
        for method, args in (
            ("totp_attempt", (None, T0, NO_DELAY)),
            ("throttle_charge", (T0, NO_DELAY)),
        ):
            key = _key()
            compete = partial(getattr(call.store, method), key, *args)
            with _Inside(call, method, "throttle_state", compete):
                call(method, key, *args)
            counted = call("throttle_state", key).failures
            assert counted == 2, (
                f"a failure counted inside {method} was lost ({counted} of 2 counted):"
                f" {method} must read and write the throttle state atomically"
            )

    def test_a_claim_made_inside_a_claim_wins_alone(self, call: _Runner) -> None:
        """Two sign-ins with the same code, the second between the first's read of the
        ledger and its write: exactly one is accepted."""
        key = _key()
        compete = partial(call.store.totp_attempt, key, 42, T0, NO_DELAY)
        with _Inside(call, "totp_attempt", "throttle_state", compete) as inside:
            mine = call("totp_attempt", key, 42, T0, NO_DELAY)
        outcomes = {mine.outcome, inside.result.outcome}
        ended = ", ".join(sorted(outcome.name for outcome in outcomes))
        assert outcomes == {AttemptOutcome.ACCEPTED, AttemptOutcome.REPLAYED}, (
            f"two sign-ins with one code, one inside the other, ended {ended}: exactly one"
            " must be accepted (totp_attempt must claim a step atomically)"
        )
        assert call("throttle_state", key).last_step == 42

    # model ----------------------------------------------------------------------

    # Every subclass runs this same inherited test (one per store): that is the point of
    # the suite, not the mistake `differing_executors` guards against.
    @settings(
        max_examples=25,
        deadline=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.differing_executors,
        ],
    )
    @given(
        moves=st.lists(
            st.tuples(st.one_of(st.none(), st.integers(0, 20)), st.floats(0, 4000)),
            max_size=25,
        )
    )
    def test_matches_the_reference_model(
        self, call: _Runner, moves: list[tuple[int | None, float]]
    ) -> None:
        key, now, model = _key(), T0, ThrottleState()
        for step, wait in moves:
            now += wait
            model, expected = apply_attempt(model, step, now, POLICY)
            actual = call("totp_attempt", key, step, now, POLICY)
            assert (actual.outcome, actual.failures) == (expected.outcome, expected.failures)
            assert actual.retry_at == pytest.approx(expected.retry_at)
            state = call("throttle_state", key)
            assert (state.failures, state.last_step) == (model.failures, model.last_step)

    # throttle: a success does not reset; time forgives (issue 12 item 8) ---------

    def _fail_until_blocked(self, call: _Runner, key: str, failures: int) -> float:
        """``failures`` failures, each at the end of the previous block; returns when
        the last block ends."""
        now = T0
        for _ in range(failures):
            attempt = call("totp_attempt", key, None, now, POLICY)
            if attempt.retry_at is not None:
                now = attempt.retry_at
        return now

    def test_quiet_period_forgives_one_failure_per_max_delay(self, call: _Runner) -> None:
        cap, failures = POLICY.max_delay, POLICY.free_failures + 3
        for quiet, expected in ((cap - 1, failures + 1), (cap, failures), (2 * cap, failures - 1)):
            key = _key()
            end = self._fail_until_blocked(call, key, failures)
            attempt = call("totp_attempt", key, None, end + quiet, POLICY)
            assert attempt.failures == expected
            assert attempt.retry_at == pytest.approx(end + quiet + POLICY.delay_after(expected))

    def test_quiet_period_resets_the_count(self, call: _Runner) -> None:
        key = _key()
        failures = POLICY.free_failures + 3
        end = self._fail_until_blocked(call, key, failures)
        quiet = end + failures * POLICY.max_delay
        # The owner's next sign-in finds nothing counted, and so does their next typo.
        assert call("totp_attempt", key, 50, quiet, POLICY).outcome is AttemptOutcome.ACCEPTED
        assert call("throttle_state", key) == ThrottleState(0, 0.0, 50)
        assert call("totp_attempt", key, None, quiet, POLICY).failures == 1

    def test_lockout_never_exceeds_max_delay(self, call: _Runner) -> None:
        key, now = _key(), T0
        for _ in range(POLICY.most_failures + 8):
            attempt = call("totp_attempt", key, None, now, POLICY)
            assert attempt.outcome is AttemptOutcome.REJECTED
            assert attempt.failures <= POLICY.most_failures
            if attempt.retry_at is not None:
                assert attempt.retry_at - now <= POLICY.max_delay
                knock = call("totp_attempt", key, 10**6, now + 1e-3, POLICY)
                assert knock.outcome is AttemptOutcome.THROTTLED
                assert knock.retry_at == pytest.approx(attempt.retry_at)
                now = attempt.retry_at
        assert attempt.retry_at == pytest.approx(now)
        assert call("throttle_state", key).failures == POLICY.most_failures
        # The owner gets in the moment the block ends.
        assert call("totp_attempt", key, 10**6, now, POLICY).outcome is AttemptOutcome.ACCEPTED

    def test_refund_takes_back_its_own_charge_block_included(self, call: _Runner) -> None:
        key = _key()
        for _ in range(POLICY.free_failures):
            call("throttle_charge", key, T0, POLICY)
        charge = call("throttle_charge", key, T0, POLICY)  # the owner's, which blocks
        assert charge.retry_at == pytest.approx(T0 + POLICY.base_delay)
        call("throttle_refund", key, charge, T0)
        assert call("throttle_state", key) == ThrottleState(POLICY.free_failures, T0, None)
        assert call("throttle_charge", key, T0, POLICY).failures == POLICY.free_failures + 1

    def test_refund_keeps_a_block_someone_else_earned(self, call: _Runner) -> None:
        key = _key()
        for _ in range(POLICY.free_failures - 1):
            call("throttle_charge", key, T0, POLICY)
        owner = call("throttle_charge", key, T0, POLICY)  # free
        guess = call("throttle_charge", key, T0, POLICY)  # counted meanwhile, and blocks
        assert owner.retry_at is None
        assert guess.retry_at is not None
        call("throttle_refund", key, owner, T0)
        state = call("throttle_state", key)
        assert (state.failures, state.blocked_until) == (POLICY.free_failures, guess.retry_at)
        assert call("throttle_charge", key, T0 + 1, POLICY).outcome is AttemptOutcome.THROTTLED

    def test_refund_of_a_throttled_charge_or_an_unknown_key_changes_nothing(
        self, call: _Runner
    ) -> None:
        key = _key()
        for _ in range(POLICY.free_failures + 1):
            call("throttle_charge", key, T0, POLICY)
        before = call("throttle_state", key)
        throttled = call("throttle_charge", key, T0 + 1, POLICY)
        assert throttled.outcome is AttemptOutcome.THROTTLED
        call("throttle_refund", key, throttled, T0 + 1)
        assert call("throttle_state", key) == before
        unknown = _key()
        charged = call("throttle_charge", _key(), T0, POLICY)
        call("throttle_refund", unknown, charged, T0)
        assert call("throttle_state", unknown) == ThrottleState()

    # Every subclass runs this same inherited test (one per store), as above.
    @settings(
        max_examples=20,
        deadline=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.differing_executors,
        ],
    )
    @given(
        ops=st.lists(
            st.tuples(
                st.sampled_from(["code", "replay", "wrong", "charge", "success", "refund"]),
                st.one_of(
                    st.floats(0, 120),
                    st.just(-1.0),  # to the end of the current block
                    st.integers(1, 20).map(lambda n: n * POLICY.max_delay),
                    st.floats(0, 40 * 86_400.0),
                ),
            ),
            max_size=16,
        )
    )
    def test_sequences_match_the_reference_model(
        self, call: _Runner, ops: list[tuple[str, float]]
    ) -> None:
        """Attempts, charges, refunds and time moves of hours to weeks: every answer and
        every stored state as the pure transitions say. Steps follow the clock, as real
        codes do, so a store that forgets a step after ``forget_after`` decides the same."""
        key, now, model = _key(), T0, ThrottleState()
        keep, stale = now + POLICY.forget_after, None
        last_charge = None
        expected: Any  # an Attempt, or None after a refund (which answers nothing)
        for op, wait in ops:
            now = max(now, model.blocked_until) if wait < 0 else now + wait
            step = int(now // 30)
            if now >= keep:  # the store may have forgotten the key, last step included
                stale = model.last_step
            if op == "replay" and (model.last_step is None or model.last_step < step - 1):
                continue  # only a code still inside the window can be replayed
            if op in ("code", "replay", "wrong"):
                given = {"code": step, "replay": model.last_step, "wrong": None}[op]
                model, expected = apply_attempt(model, given, now, POLICY)
                actual = call("totp_attempt", key, given, now, POLICY)
            elif op == "refund":
                if last_charge is None:
                    continue
                charge, at = last_charge
                if at != now:  # a refund follows its charge at once, or not at all
                    continue
                model = apply_refund(model, charge, at)
                call("throttle_refund", key, charge, at)
                expected = actual = None
            else:  # a charge; "success" is a password right after it: charge, refund
                model, expected = apply_charge(model, now, POLICY)
                actual = call("throttle_charge", key, now, POLICY)
                last_charge = (actual, now)
                if op == "success" and actual.outcome is AttemptOutcome.REJECTED:
                    model = apply_refund(model, actual, now)
                    call("throttle_refund", key, actual, now)
            if expected is not None:
                assert (actual.outcome, actual.failures) == (expected.outcome, expected.failures)
                assert actual.retry_at == pytest.approx(expected.retry_at)
            state = call("throttle_state", key)
            assert (state.failures, state.blocked_until) == (
                model.failures,
                pytest.approx(model.blocked_until),
            )
            # A step more than forget_after old may be forgotten: no code can repeat it.
            forgotten = state.last_step is None and model.last_step == stale
            assert state.last_step == model.last_step or forgotten
            keep = max(keep, keep_until(model, now, POLICY))

    # credentials ----------------------------------------------------------------

    def _credential(self, user_id: str, hashes: tuple[str, ...] = ("a", "b")) -> Credential:
        return Credential(
            user_id=user_id,
            credential_id=_key("totp"),
            secret="v1:k1:c2VhbGVk",  # noqa: S106 (an opaque sealed blob)
            confirmed=True,
            created_at=T0,
            recovery_hashes=hashes,
        )

    def test_credential_round_trip(self, call: _Runner) -> None:
        user = _key("user")
        credential = self._credential(user)
        assert call("get_credential", user) is None
        call("put_credential", credential)
        first = call("get_credential", user)
        assert first == replace(credential, version=first.version)
        assert first.version >= 1  # the store's: fresh for a new credential
        replaced = self._credential(user, ("c",))
        call("put_credential", replaced)
        assert call("get_credential", user) == replace(replaced, version=first.version + 1)
        assert call("delete_credential", user) is True
        assert call("delete_credential", user) is False
        assert call("get_credential", user) is None

    def test_lookalike_user_ids_keep_their_own_credentials(self, call: _Runner) -> None:
        users = _lookalike_ids()
        credentials = [
            replace(self._credential(user, (f"h{index}",)), secret=f"sealed-{index}")
            for index, user in enumerate(users)
        ]
        for credential in credentials:
            call("put_credential", credential)
        versions = []
        for user, credential in zip(users, credentials, strict=True):
            stored = call("get_credential", user)
            assert stored == replace(credential, version=stored.version)
            assert stored.user_id == user  # exactly: not folded, normalised or trimmed
            versions.append(stored.version)
        assert call("consume_recovery_hash", users[1], "h0") is False  # another's code
        assert call("delete_credential", users[0]) is True
        assert call("get_credential", users[1]) == replace(credentials[1], version=versions[1])

    def test_every_credential_write_moves_the_version(self, call: _Runner) -> None:
        user = _key("user")
        call("put_credential", replace(self._credential(user, ("a", "b")), version=40))
        first = call("get_credential", user).version
        assert first >= 1
        assert first != 40  # the store's count, not ours
        assert call("consume_recovery_hash", user, "a") is True
        assert call("get_credential", user).version == first + 1
        assert call("consume_recovery_hash", user, "a") is False
        assert call("consume_recovery_hash", user, "zzz") is False
        assert call("get_credential", user).version == first + 1  # nothing changed
        call("put_credential", self._credential(user, ("c",)))
        assert call("get_credential", user).version == first + 2

    def test_replace_credential_is_a_compare_and_set(self, call: _Runner) -> None:
        user = _key("user")
        call("put_credential", self._credential(user, ("a", "b", "c")))
        read = call("get_credential", user)
        assert call("consume_recovery_hash", user, "a") is True  # meanwhile: version 2
        stale = replace(read, secret=_OTHER_SEAL)  # carries "a" back
        assert call("replace_credential", stale, read.version) is False
        assert call("get_credential", user).recovery_hashes == ("b", "c")
        fresh = call("get_credential", user)
        resealed = replace(fresh, secret=_OTHER_SEAL)
        assert call("replace_credential", resealed, fresh.version) is True
        assert call("get_credential", user) == replace(resealed, version=fresh.version + 1)
        assert call("replace_credential", resealed, fresh.version) is False  # moved on
        nobody = self._credential(_key("nobody"))
        assert call("replace_credential", nobody, 0) is False
        assert call("get_credential", nobody.user_id) is None  # nothing created

    def test_a_version_beyond_64_bits_is_refused(self, call: _Runner) -> None:
        user = _key("user")
        call("put_credential", self._credential(user, ("a",)))
        stored = call("get_credential", user)
        for version in (2**63, -(2**63) - 1):
            with pytest.raises(MalformedInputError, match="expected_version"):
                call("replace_credential", replace(stored, secret=_OTHER_SEAL), version)
        assert call("get_credential", user) == stored
        assert call("replace_credential", stored, 2**63 - 1) is False  # in range: no match

    def test_concurrent_replaces_of_one_version_win_once(self, call: _Runner) -> None:
        user = _key("user")
        call("put_credential", self._credential(user, ("a", "b")))
        read = call("get_credential", user)
        writes = [replace(read, secret=f"v1:k{i}:c2VhbGVk") for i in range(THREADS)]
        replace_credential = call.store.replace_credential
        results = call.together([partial(replace_credential, c, read.version) for c in writes])
        assert results.count(True) == 1
        stored = call("get_credential", user)
        assert stored == replace(writes[results.index(True)], version=read.version + 1)

    def test_add_credential_only_when_the_user_has_none(self, call: _Runner) -> None:
        user = _key("user")
        first = replace(self._credential(user, ("a", "b")), confirmed=False, version=40)
        assert call("add_credential", first) is True
        version = call("get_credential", user).version
        assert version >= 1
        assert version != 40  # the store's count, not ours
        assert call("get_credential", user) == replace(first, version=version)
        second = self._credential(user, ("c",))
        assert call("add_credential", second) is False  # a pending one is there
        assert call("get_credential", user) == replace(first, version=version)
        call("put_credential", replace(first, confirmed=True))
        assert call("add_credential", second) is False  # a confirmed one is there
        stored = call("get_credential", user)
        assert stored == replace(first, confirmed=True, version=version + 1)
        assert call("delete_credential", user) is True
        assert call("add_credential", second) is True  # gone: a first one again
        again = call("get_credential", user)
        assert again == replace(second, version=again.version)
        assert again.version >= 1

    def test_a_new_credential_never_matches_a_version_read_from_a_deleted_one(
        self, call: _Runner
    ) -> None:
        """ABA: a flow read the credential (a verify about to record its last use), then
        2FA was removed and enrolled again (added, confirmed: writes that would bring a
        new credential whose versions restart to the version read). The stale write
        must never land on the new credential: it would bring the removed one back."""
        for write_new in ("add_credential", "put_credential"):
            user = _key("user")
            call("put_credential", replace(self._credential(user, ("a",)), confirmed=False))
            call("put_credential", self._credential(user, ("a", "b")))  # confirmed
            read = call("get_credential", user)
            stale = replace(read, secret=_OTHER_SEAL)
            assert call("delete_credential", user) is True
            new = replace(self._credential(user, ("c",)), confirmed=False)
            if write_new == "add_credential":
                assert call("add_credential", new) is True
            else:
                call("put_credential", new)
            for confirmed in (True, True, False, True):  # confirm-like writes
                stored = call("get_credential", user)
                assert call("replace_credential", stale, read.version) is False, write_new
                assert call("get_credential", user) == stored  # the new one, intact
                assert stored.credential_id == new.credential_id
                changed = replace(stored, confirmed=confirmed)
                assert call("replace_credential", changed, stored.version) is True
                assert call("get_credential", user).version == stored.version + 1
            assert call("replace_credential", stale, read.version) is False, write_new
            assert call("get_credential", user).recovery_hashes == ("c",)

    def test_concurrent_adds_of_one_user_win_once(self, call: _Runner) -> None:
        user = _key("user")
        adds = [self._credential(user, (f"h{i}",)) for i in range(THREADS)]
        results = call.together([partial(call.store.add_credential, c) for c in adds])
        assert results.count(True) == 1
        stored = call("get_credential", user)
        assert stored == replace(adds[results.index(True)], version=stored.version)

    def test_an_add_inside_an_add_wins_alone(self, call: _Runner) -> None:
        """Two first enrolments inside the store: another add lands between the store's
        own read (for a store that reads through ``get_credential``) and its write."""
        user = _key("user")
        mine, theirs = self._credential(user, ("a",)), self._credential(user, ("b",))
        compete = partial(call.store.add_credential, theirs)
        with _Inside(call, "add_credential", "get_credential", compete) as inside:
            won = call("add_credential", mine)
        assert [won, inside.result].count(True) == 1, (
            "two first enrolments, one inside the other, both won: add_credential must"
            " check and add atomically"
        )
        stored = call("get_credential", user)
        assert stored == replace(mine if won else theirs, version=stored.version)

    def _clocked_two_factor(self, call: _Runner, store: Any, clock: SettableClock) -> Any:
        kind = AsyncTwoFactor if call.is_async else TwoFactor
        return kind(store, box=SecretBox({"k1": bytes(32)}, "k1"), clock=clock)

    def test_a_first_enrolment_never_overwrites_one_confirmed_meanwhile(
        self, call: _Runner
    ) -> None:
        """Two first enrolments (a double-submitted "Turn on", two tabs): the other tab
        begins and is confirmed between this one's read (nothing stored) and its write.
        The late write must not switch two-factor authentication off again."""
        user, clock = _key("user"), SettableClock(T0)
        confirmations: list[Any] = []

        async def other_tab_async() -> None:
            other = self._clocked_two_factor(call, call.store, clock)
            enrolment = await other.begin_enrolment(user, "user@example.com")
            code = TOTP(enrolment.secret).at(clock())
            confirmations.append(await other.confirm_enrolment(user, code))

        def other_tab() -> Any:
            if call.is_async:
                return other_tab_async()
            other = self._clocked_two_factor(call, call.store, clock)
            enrolment = other.begin_enrolment(user, "user@example.com")
            code = TOTP(enrolment.secret).at(clock())
            confirmations.append(other.confirm_enrolment(user, code))
            return None

        writes = ("add_credential", *_CREDENTIAL_WRITES)
        racing = _Competing(call.store, writes, other_tab)
        late = self._clocked_two_factor(call, racing, clock)
        with pytest.raises(AlreadyEnrolledError):
            call.resolve(late.begin_enrolment(user, "user@example.com"))
        assert racing.competed == 1
        [confirmation] = confirmations
        assert confirmation.ok
        two_factor = self._clocked_two_factor(call, call.store, clock)
        assert call.resolve(two_factor.is_enrolled(user)) is True
        code = confirmation.recovery_codes[0]
        assert call.resolve(two_factor.use_recovery_code(user, code)).ok

    def test_a_first_enrolment_replaces_one_begun_meanwhile(self, call: _Runner) -> None:
        """The other tab only began (nothing confirmed): the late one reads again and
        replaces that pending enrolment; its own QR code is the one that confirms."""
        user, clock = _key("user"), SettableClock(T0)
        other = self._clocked_two_factor(call, call.store, clock)
        racing = _Competing(
            call.store,
            ("add_credential", *_CREDENTIAL_WRITES),
            lambda: other.begin_enrolment(user, "user@example.com"),
        )
        late = self._clocked_two_factor(call, racing, clock)
        mine = call.resolve(late.begin_enrolment(user, "user@example.com"))
        assert racing.competed == 1
        stored = call("get_credential", user)
        assert not stored.confirmed
        assert stored.credential_id == mine.device_id
        assert call.resolve(other.confirm_enrolment(user, TOTP(mine.secret).at(clock()))).ok

    def test_a_code_spent_inside_a_replace_stays_spent(self, call: _Runner) -> None:
        """Issue 12 item 4 inside the store: a sign-in spends a recovery code between the
        store's own read of the version and its write (for a store that reads through
        ``get_credential``): the replace of the older version must not bring it back."""
        user = _key("user")
        call("put_credential", self._credential(user, ("a", "b", "c")))
        read = call("get_credential", user)
        resealed = replace(read, secret=_OTHER_SEAL)
        compete = partial(call.store.consume_recovery_hash, user, "a")
        with _Inside(call, "replace_credential", "get_credential", compete) as inside:
            won = call("replace_credential", resealed, read.version)
        stored = call("get_credential", user)
        assert stored.recovery_hashes == ("b", "c"), (
            "a recovery code spent inside replace_credential came back: the replace of an"
            " older version must fail (compare the version and write atomically)"
        )
        assert call("consume_recovery_hash", user, "a") is False
        assert inside.result is True  # the sign-in's spend stands
        assert (stored.secret == _OTHER_SEAL) is won

    def _sealed(self, call: _Runner, user: str, hashes: tuple[str, ...]) -> SecretBox:
        """Store a credential sealed under key k1; return a box whose current key is k2."""
        old, new = SecretBox.generate_key(), SecretBox.generate_key()
        credential = self._credential(user, hashes)
        sealed = SecretBox({"k1": old}, "k1").seal(_SECRET, context=credential.credential_id)
        call("put_credential", replace(credential, secret=sealed))
        return SecretBox({"k1": old, "k2": new}, "k2")

    def _two_factor(self, call: _Runner, store: Any, box: SecretBox) -> Any:
        kind = AsyncTwoFactor if call.is_async else TwoFactor
        return kind(store, box=box)

    def test_reseal_never_brings_back_a_spent_recovery_code(self, call: _Runner) -> None:
        user = _key("user")
        box = self._sealed(call, user, ("a", "b", "c"))
        # A sign-in spends "a" between reseal's read and its write.
        racing = _Competing(
            call.store, _CREDENTIAL_WRITES, lambda: call.store.consume_recovery_hash(user, "a")
        )
        assert call.resolve(self._two_factor(call, racing, box).reseal(user)) is True
        assert racing.competed == 1
        stored = call("get_credential", user)
        assert stored.recovery_hashes == ("b", "c")
        assert call("consume_recovery_hash", user, "a") is False  # still spent
        assert not box.needs_reseal(stored.secret)
        assert box.open(stored.secret, context=stored.credential_id) == _SECRET

    def test_reseal_that_always_loses_writes_nothing(self, call: _Runner) -> None:
        user = _key("user")
        hashes = tuple(f"h{i}" for i in range(RESEAL_TRIES + 1))
        box = self._sealed(call, user, hashes)
        spent = iter(hashes)
        racing = _Competing(
            call.store,
            _CREDENTIAL_WRITES,
            lambda: call.store.consume_recovery_hash(user, next(spent)),
            times=None,
        )
        with pytest.raises(ConcurrentUpdateError):
            call.resolve(self._two_factor(call, racing, box).reseal(user))
        assert racing.competed == RESEAL_TRIES
        stored = call("get_credential", user)
        assert stored.recovery_hashes == hashes[RESEAL_TRIES:]
        assert box.needs_reseal(stored.secret)  # never written

    def test_regenerated_codes_never_put_back_an_old_seal(self, call: _Runner) -> None:
        user = _key("user")
        box = self._sealed(call, user, ("a", "b"))
        # Another process reseals between regenerate's read and its write.
        racing = _Competing(
            call.store,
            _CREDENTIAL_WRITES,
            lambda: self._two_factor(call, call.store, box).reseal(user),
        )
        codes = call.resolve(self._two_factor(call, racing, box).regenerate_recovery_codes(user))
        assert racing.competed == 1
        stored = call("get_credential", user)
        assert not box.needs_reseal(stored.secret)  # the reseal stands
        assert box.open(stored.secret, context=stored.credential_id) == _SECRET
        assert len(stored.recovery_hashes) == len(codes)
        assert call("consume_recovery_hash", user, "a") is False  # the old codes are gone

    def test_recovery_hash_is_consumed_once(self, call: _Runner) -> None:
        user = _key("user")
        call("put_credential", self._credential(user, ("a", "b")))
        assert call("consume_recovery_hash", user, "a") is True
        assert call("consume_recovery_hash", user, "a") is False
        assert call("consume_recovery_hash", user, "zzz") is False
        assert call("get_credential", user).recovery_hashes == ("b",)
        assert call("consume_recovery_hash", _key("nobody"), "b") is False

    def test_concurrent_recovery_use_wins_once(self, call: _Runner) -> None:
        user = _key("user")
        call("put_credential", self._credential(user, ("a", "b")))
        calls = [(user, "a")] * THREADS
        results = call.concurrently("consume_recovery_hash", calls, yielding=True)
        assert results.count(True) == 1, (
            f"one recovery code was spent {results.count(True)} times by {THREADS} sign-ins"
            " at once: consume_recovery_hash must check and remove it atomically"
        )
        assert call("get_credential", user).recovery_hashes == ("b",)

    def test_a_code_spent_inside_a_spend_wins_alone(self, call: _Runner) -> None:
        """Two sign-ins with the same recovery code, the second between the store's own
        read (for a store that reads through ``get_credential``) and its write: exactly
        one is let in, and the code is spent."""
        user = _key("user")
        call("put_credential", self._credential(user, ("a", "b")))
        compete = partial(call.store.consume_recovery_hash, user, "a")
        with _Inside(call, "consume_recovery_hash", "get_credential", compete) as inside:
            mine = call("consume_recovery_hash", user, "a")
        assert [mine, inside.result].count(True) == 1, (
            "two sign-ins with one recovery code, one inside the other, were both let in:"
            " consume_recovery_hash must check and remove the code atomically"
        )
        assert call("get_credential", user).recovery_hashes == ("b",)

    def test_a_code_spent_inside_the_spend_of_another_stays_spent(self, call: _Runner) -> None:
        """Two sign-ins with two codes of one user, the second between the store's own
        read and its write: both are let in, and neither code comes back."""
        user = _key("user")
        call("put_credential", self._credential(user, ("a", "b", "c")))
        compete = partial(call.store.consume_recovery_hash, user, "a")
        with _Inside(call, "consume_recovery_hash", "get_credential", compete) as inside:
            mine = call("consume_recovery_hash", user, "b")
        assert (mine, inside.result) == (True, True)
        left = call("get_credential", user).recovery_hashes
        assert left == ("c",), (
            f"a recovery code spent inside the spend of another came back (left: {left!r}):"
            " consume_recovery_hash must remove the code from what is stored, atomically"
        )

    # TOTP devices: several per user, in the credential ---------------------------

    def _device(self, device_id: str, **fields: Any) -> TotpDevice:
        values: dict[str, Any] = {"name": "Phone", "confirmed": True, "created_at": T0}
        return TotpDevice(device_id, "v1:k1:c2VhbGVk", **{**values, **fields})

    def test_credential_with_devices_round_trip(self, call: _Runner) -> None:
        user = _key("user")
        devices = (
            self._device(_key("totp"), last_used_at=T0 + 86_400.5),
            self._device(_key("totp"), name="Tablette ünïcode 📱", digits=8, period=60),
            self._device(_key("totp"), name="New", confirmed=False, created_at=T0 + 1),
        )
        credential = replace(self._credential(user), secret="", devices=devices)
        call("put_credential", credential)
        stored = call("get_credential", user)
        assert stored == replace(credential, version=stored.version)
        assert stored.totp_devices == devices
        fewer = replace(stored, devices=devices[1:2])
        assert call("replace_credential", fewer, stored.version) is True
        assert call("get_credential", user) == replace(fewer, version=stored.version + 1)
        # Written back in the shape from before devices, it reads as that one device.
        legacy = self._credential(user)
        call("put_credential", legacy)
        stored = call("get_credential", user)
        assert stored.devices == ()
        (device,) = stored.totp_devices
        assert (device.device_id, device.secret) == (legacy.credential_id, legacy.secret)
        assert device.confirmed
        assert device.last_used_at is None

    def _enrolled(self, call: _Runner, store: Any, user: str, clock: SettableClock) -> Any:
        """A TwoFactor over ``store`` and the user's first device (enrolled, confirmed)."""
        kind = AsyncTwoFactor if call.is_async else TwoFactor
        two_factor = kind(store, box=SecretBox({"k1": bytes(32)}, "k1"), clock=clock)
        first = call.resolve(two_factor.begin_enrolment(user, "user@example.com", name="A"))
        confirmation = call.resolve(
            two_factor.confirm_enrolment(user, TOTP(first.secret).at(clock()))
        )
        assert confirmation.ok
        return two_factor, TOTP(first.secret), first.device_id

    def test_devices_share_one_replay_ledger_and_throttle(self, call: _Runner) -> None:
        user, clock = _key("user"), SettableClock(T0)
        two_factor, first, first_id = self._enrolled(call, call.store, user, clock)
        clock.advance(30)
        added = call.resolve(two_factor.begin_device(user, "user@example.com", name="B"))
        second = TOTP(added.secret)
        assert call.resolve(two_factor.confirm_device(user, second.at(clock()))).ok
        names = [d.name for d in call.resolve(two_factor.devices(user))]
        assert names == ["A", "B"]
        clock.advance(30)
        assert call.resolve(two_factor.verify(user, first.at(clock()))).ok
        # The same step from the other device is a replay: one ledger for the user.
        again = call.resolve(two_factor.verify(user, second.at(clock())))
        assert again.reason == "replayed"
        clock.advance(30)
        assert call.resolve(two_factor.verify(user, second.at(clock()))).ok
        used = {d.device_id: d.last_used_at for d in call.resolve(two_factor.devices(user))}
        assert used == {first_id: clock() - 30, added.device_id: clock()}
        call.resolve(two_factor.remove_device(user, first_id, actor_id=user))
        (left,) = call.resolve(two_factor.devices(user))
        assert left.device_id == added.device_id
        clock.advance(30)
        assert not call.resolve(two_factor.verify(user, first.at(clock()))).ok
        assert call.resolve(two_factor.is_enrolled(user)) is True

    def test_adding_a_device_never_brings_back_a_spent_recovery_code(self, call: _Runner) -> None:
        user, clock = _key("user"), SettableClock(T0)
        two_factor, _, _ = self._enrolled(call, call.store, user, clock)
        read = call("get_credential", user)
        spent = read.recovery_hashes[0]
        # A sign-in spends a recovery code between the add's read and its write.
        racing = _Competing(
            call.store, _CREDENTIAL_WRITES, lambda: call.store.consume_recovery_hash(user, spent)
        )
        kind = type(two_factor)
        adder = kind(racing, box=two_factor.box, clock=clock)
        added = call.resolve(adder.begin_device(user, "user@example.com", name="B"))
        assert racing.competed == 1
        stored = call("get_credential", user)
        assert spent not in stored.recovery_hashes
        assert stored.recovery_hashes == read.recovery_hashes[1:]
        assert [d.device_id for d in stored.totp_devices][-1] == added.device_id
        assert call("consume_recovery_hash", user, spent) is False  # still spent

    def test_removing_a_device_keeps_a_concurrent_rename(self, call: _Runner) -> None:
        user, clock = _key("user"), SettableClock(T0)
        two_factor, _, first_id = self._enrolled(call, call.store, user, clock)
        ids = [first_id]
        for name in ("B", "C"):
            clock.advance(30)
            added = call.resolve(two_factor.begin_device(user, "user@example.com", name=name))
            code = TOTP(added.secret).at(clock())
            assert call.resolve(two_factor.confirm_device(user, code)).ok
            ids.append(added.device_id)
        # Another request renames C between the removal's read of B and its write.
        racing = _Competing(
            call.store,
            _CREDENTIAL_WRITES,
            lambda: type(two_factor)(call.store, box=two_factor.box, clock=clock).rename_device(
                user, ids[2], "Renamed"
            ),
        )
        remover = type(two_factor)(racing, box=two_factor.box, clock=clock)
        call.resolve(remover.remove_device(user, ids[1], actor_id=user))
        assert racing.competed == 1
        devices = call.resolve(two_factor.devices(user))
        assert [(d.device_id, d.name) for d in devices] == [(ids[0], "A"), (ids[2], "Renamed")]

    def test_marking_a_device_used_never_overwrites_a_removal(self, call: _Runner) -> None:
        user, clock = _key("user"), SettableClock(T0)
        two_factor, first, first_id = self._enrolled(call, call.store, user, clock)
        clock.advance(30)
        added = call.resolve(two_factor.begin_device(user, "user@example.com", name="B"))
        assert call.resolve(two_factor.confirm_device(user, TOTP(added.secret).at(clock()))).ok
        clock.advance(30)
        # B is removed between the verification's read and its last-used write.
        racing = _Competing(
            call.store,
            ("replace_credential",),
            lambda: type(two_factor)(call.store, box=two_factor.box, clock=clock).remove_device(
                user, added.device_id, actor_id=user
            ),
        )
        verifier = type(two_factor)(racing, box=two_factor.box, clock=clock)
        assert call.resolve(verifier.verify(user, first.at(clock()))).ok  # it stands
        assert racing.competed == 1
        (left,) = call.resolve(two_factor.devices(user))
        assert left.device_id == first_id  # B stays removed
        assert left.last_used_at is None  # the lost write is let go, not retried

    # tenants --------------------------------------------------------------------

    def test_tenant_round_trip(self, call: _Runner) -> None:
        tenant_id = _key("tenant")
        assert call("get_tenant", tenant_id) is None
        flags = {"sensitive_actions_reauth": True}
        tenant = Tenant(tenant_id, {"name": "Acme", "feature_flags": flags})
        call("put_tenant", tenant)
        assert call("get_tenant", tenant_id) == tenant

    def test_lookalike_tenant_ids_are_kept_apart(self, call: _Runner) -> None:
        tenant_ids = _lookalike_ids()
        tenants = [Tenant(tenant_id, {"n": index}) for index, tenant_id in enumerate(tenant_ids)]
        for tenant in tenants:
            call("put_tenant", tenant)
        assert call("add_tenant", Tenant(tenant_ids[1], {"n": -1})) == tenants[1]
        for tenant_id, tenant in zip(tenant_ids, tenants, strict=True):
            stored = call("get_tenant", tenant_id)
            assert stored == tenant
            assert stored.tenant_id == tenant_id

    def test_a_tenant_read_or_written_is_the_callers_own(self, call: _Runner) -> None:
        """Changing a tenant object after putting it, or one read back (or answered by
        ``add_tenant`` or ``patch_tenant``), changes nothing stored: only the store's
        own writes (the protected PATCH among them) turn a flag off."""
        tenant_id = _key("tenant")
        put = Tenant(
            tenant_id, {"name": "Acme", "tags": ["a"], "feature_flags": {FEATURE_FLAG: True}}
        )
        call("put_tenant", put)
        put.attributes["feature_flags"][FEATURE_FLAG] = False
        put.attributes["tags"].append("b")
        read = call("get_tenant", tenant_id)
        assert read.flag(FEATURE_FLAG) is True
        assert read.attributes["tags"] == ["a"]
        read.attributes["feature_flags"][FEATURE_FLAG] = False
        read.attributes["name"] = "changed"
        again = call("get_tenant", tenant_id)
        assert again.flag(FEATURE_FLAG) is True
        assert again.attributes["name"] == "Acme"
        before, after = call("patch_tenant", tenant_id, {"name": "Acme 2"}, {"beta": True})
        before.attributes["feature_flags"][FEATURE_FLAG] = False
        after.attributes["feature_flags"][FEATURE_FLAG] = False
        after.attributes["tags"].append("c")
        stored = call("get_tenant", tenant_id)
        assert stored.flag(FEATURE_FLAG) is True
        assert stored.attributes["tags"] == ["a"]
        other_id = _key("tenant")
        added = call("add_tenant", Tenant(other_id, {"feature_flags": {FEATURE_FLAG: True}}))
        added.attributes["feature_flags"][FEATURE_FLAG] = False
        assert call("get_tenant", other_id).flag(FEATURE_FLAG) is True

    def test_add_tenant_never_overwrites(self, call: _Runner) -> None:
        tenant_id = _key("tenant")
        first = Tenant(tenant_id, {"name": "First", "feature_flags": {FEATURE_FLAG: True}})
        assert call("add_tenant", first) == first
        second = Tenant(tenant_id, {"name": "Second", "feature_flags": {FEATURE_FLAG: False}})
        assert call("add_tenant", second) == first
        assert call("get_tenant", tenant_id) == first

    def test_concurrent_adds_store_one_tenant(self, call: _Runner) -> None:
        tenant_id = _key("tenant")
        tenants = [Tenant(tenant_id, {"name": f"n{i}"}) for i in range(PATCHES)]
        results = call.together([partial(call.store.add_tenant, t) for t in tenants])
        stored = call("get_tenant", tenant_id)
        assert stored in tenants
        assert results == [stored] * PATCHES

    def test_ensure_never_resets_a_tenant_made_meanwhile(self, call: _Runner) -> None:
        """Another process creates the tenant and an admin turns the protection on
        between this ensure()'s look and its write: the flag stays on."""
        tenant_id, events = _key("tenant"), list[StepupEvent]()
        other = self._settings(call, call.store, events)
        on = _patch_body({"feature_flags": {FEATURE_FLAG: True}})

        def create_and_switch_on() -> Any:
            if call.is_async:

                async def both() -> None:
                    await other.ensure(tenant_id)
                    await other.patch(tenant_id, on, actor_id="admin", actor_is_tenant_admin=True)

                return both()
            other.ensure(tenant_id)
            return other.patch(tenant_id, on, actor_id="admin", actor_is_tenant_admin=True)

        racing = _Competing(call.store, ("add_tenant", "put_tenant"), create_and_switch_on)
        ensured = call.resolve(self._settings(call, racing, events).ensure(tenant_id))
        assert racing.competed == 1
        assert ensured.flag(FEATURE_FLAG) is True
        assert call("get_tenant", tenant_id).flag(FEATURE_FLAG) is True

    def test_patch_tenant_changes_only_what_it_names(self, call: _Runner) -> None:
        tenant_id = _key("tenant")
        attributes = {
            "name": "Acme",
            "plan": "gold",
            "tags": [],
            "limits": {},
            "big": 2**60 + 1,
            "ratio": 0.1,
            "motto": 'Ünïcode ✓ "quoted"',
            "feature_flags": {"beta": True, FEATURE_FLAG: False},
        }
        call("put_tenant", Tenant(tenant_id, attributes))
        before, after = call("patch_tenant", tenant_id, {"name": "Acme 2"}, {FEATURE_FLAG: True})
        assert before == Tenant(tenant_id, attributes)
        expected = {
            **attributes,
            "name": "Acme 2",
            "feature_flags": {"beta": True, FEATURE_FLAG: True},
        }
        assert after == Tenant(tenant_id, expected)
        assert call("get_tenant", tenant_id) == after
        assert call("patch_tenant", _key("nobody"), {"name": "x"}, {}) is None

    def test_tenant_attributes_read_back_as_sent(self, call: _Runner) -> None:
        """Every write keeps a tenant's attributes exactly: ``1e16`` stays a float and
        ``-0.0`` negative, and text keeps NUL and lone surrogates, in values and names."""
        odd = {
            **_ODD_NUMBERS,
            "texts": list(_ODD_TEXT),
            "nested": {"n": [1e16, -0.0]},
            **{f"name {text}": text for text in _ODD_TEXT},
        }
        tenant_id, added_id = _key("tenant"), _key("tenant")
        call("put_tenant", Tenant(tenant_id, odd))
        assert _as_sent(call("get_tenant", tenant_id).attributes) == _as_sent(odd)
        assert _as_sent(call("add_tenant", Tenant(added_id, odd)).attributes) == _as_sent(odd)
        assert _as_sent(call("get_tenant", added_id).attributes) == _as_sent(odd)
        patch = {"ratio": 1e16, "zero": -0.0, "motto": "a\x00b\ud800"}
        before, after = call("patch_tenant", tenant_id, patch, {"beta": True})
        assert _as_sent(before.attributes) == _as_sent(odd)
        expected = {**odd, **patch, "feature_flags": {"beta": True}}
        assert _as_sent(after.attributes) == _as_sent(expected)
        assert _as_sent(call("get_tenant", tenant_id).attributes) == _as_sent(expected)

    def test_patch_tenant_of_an_unknown_tenant_creates_nothing(self, call: _Runner) -> None:
        tenant_id = _key("tenant")
        assert call("patch_tenant", tenant_id, {}, {FEATURE_FLAG: True}) is None
        assert call("get_tenant", tenant_id) is None

    def _settings(self, call: _Runner, store: Any, events: list[StepupEvent]) -> Any:
        kind = AsyncTenantSettings if call.is_async else TenantSettings
        flags = {f"f{i}": bool for i in range(PATCHES)}
        return kind(
            store,
            flags={"beta": bool, **flags},
            attributes={"name": str},
            events=EventBus(events.append),
        )

    def _tenant(self, call: _Runner) -> str:
        tenant_id = _key("tenant")
        flags = {FEATURE_FLAG: False, "beta": False}
        call("put_tenant", Tenant(tenant_id, {"name": "Acme", "feature_flags": flags}))
        return tenant_id

    def _racing_patch(
        self, call: _Runner, events: list[StepupEvent], tenant_id: str, body: dict[str, Any]
    ) -> _Competing:
        """The store as a PATCH sees it when admin-b's ``body`` lands just before its write."""
        competitor = self._settings(call, call.store, events)
        return _Competing(
            call.store,
            _TENANT_WRITES,
            lambda: competitor.patch(
                tenant_id, body, actor_id="admin-b", actor_is_tenant_admin=True
            ),
        )

    def test_concurrent_patches_of_different_attributes_both_survive(self, call: _Runner) -> None:
        tenant_id, events = self._tenant(call), list[StepupEvent]()
        on = _patch_body({"feature_flags": {FEATURE_FLAG: True}})
        racing = self._racing_patch(call, events, tenant_id, on)
        settings = self._settings(call, racing, events)
        rename = _patch_body({"name": "Acme 2"})
        returned = call.resolve(
            settings.patch(tenant_id, rename, actor_id="admin-a", actor_is_tenant_admin=True)
        )
        assert racing.competed == 1
        stored = call("get_tenant", tenant_id)
        assert stored.attributes == {
            "name": "Acme 2",
            "feature_flags": {FEATURE_FLAG: True, "beta": False},
        }
        assert returned == stored
        assert _flag_changes(events) == [("admin-b", FEATURE_FLAG, False, True)]

    def test_concurrent_patches_of_one_flag_report_what_was_stored(self, call: _Runner) -> None:
        tenant_id, events = self._tenant(call), list[StepupEvent]()
        on = _patch_body({"feature_flags": {FEATURE_FLAG: True}})
        racing = self._racing_patch(call, events, tenant_id, on)
        settings = self._settings(call, racing, events)
        # Both admins turn it on: only the one who changed it reports a change.
        call.resolve(settings.patch(tenant_id, on, actor_id="admin-a", actor_is_tenant_admin=True))
        assert call("get_tenant", tenant_id).flag(FEATURE_FLAG) is True
        assert _flag_changes(events) == [("admin-b", FEATURE_FLAG, False, True)]
        # Admin b turns beta on while admin a turns the protection off: a's event says
        # it replaced the True that b's earlier PATCH stored, and beta stays on.
        events.clear()
        beta = _patch_body({"feature_flags": {"beta": True}})
        racing = self._racing_patch(call, events, tenant_id, beta)
        settings = self._settings(call, racing, events)
        off = _patch_body({"feature_flags": {FEATURE_FLAG: False}})
        call.resolve(settings.patch(tenant_id, off, actor_id="admin-a", actor_is_tenant_admin=True))
        assert call("get_tenant", tenant_id).attributes["feature_flags"] == {
            FEATURE_FLAG: False,
            "beta": True,
        }
        assert _flag_changes(events) == [
            ("admin-a", FEATURE_FLAG, True, False),
            ("admin-b", "beta", False, True),
        ]

    def test_many_concurrent_patches_lose_nothing(self, call: _Runner) -> None:
        tenant_id, events = self._tenant(call), list[StepupEvent]()
        settings = self._settings(call, call.store, events)

        def patch(actor: str, flags: dict[str, bool]) -> Callable[[], Any]:
            body = _patch_body({"feature_flags": flags})
            return lambda: settings.patch(
                tenant_id, body, actor_id=actor, actor_is_tenant_admin=True
            )

        # 16 admins each turn on a different flag, at once.
        call.together([patch(f"admin-{i}", {f"f{i}": True}) for i in range(PATCHES)])
        flags = call("get_tenant", tenant_id).feature_flags
        lost = [f"f{i}" for i in range(PATCHES) if flags.get(f"f{i}") is not True]
        assert not lost, (
            f"{len(lost)} of {PATCHES} PATCHes made at once were lost ({', '.join(lost)}):"
            " patch_tenant must merge and write atomically"
        )
        assert _flag_changes(events) == sorted(
            (f"admin-{i}", f"f{i}", False, True) for i in range(PATCHES)
        )
        # 16 admins turn the same flag on at once: it is on, and exactly one changed it.
        events.clear()
        call.together([patch(f"admin-{i}", {FEATURE_FLAG: True}) for i in range(PATCHES)])
        assert call("get_tenant", tenant_id).flag(FEATURE_FLAG) is True
        assert [(flag, old, new) for _, flag, old, new in _flag_changes(events)] == [
            (FEATURE_FLAG, False, True)
        ]

    def test_a_patch_keeps_a_patch_made_inside_it(self, call: _Runner) -> None:
        """Issue 12 item 1 inside the store: another admin's PATCH lands between the
        store's own read of the tenant and its write (for a store that reads through
        ``get_tenant``): both changes survive, and a flag both set is reported once."""
        tenant_id, events = self._tenant(call), list[StepupEvent]()
        competitor = self._settings(call, call.store, events)
        settings = self._settings(call, call.store, events)

        def admin_b(body: dict[str, Any]) -> Callable[[], Any]:
            return partial(
                competitor.patch, tenant_id, body, actor_id="admin-b", actor_is_tenant_admin=True
            )

        def admin_a(body: dict[str, Any]) -> Any:
            return call.resolve(
                settings.patch(tenant_id, body, actor_id="admin-a", actor_is_tenant_admin=True)
            )

        on = _patch_body({"feature_flags": {FEATURE_FLAG: True}})
        with _Inside(call, "patch_tenant", "get_tenant", admin_b(on)):
            admin_a(_patch_body({"name": "Acme 2", "feature_flags": {"beta": True}}))
        assert call("get_tenant", tenant_id).attributes == {
            "name": "Acme 2",
            "feature_flags": {FEATURE_FLAG: True, "beta": True},
        }
        assert _flag_changes(events) == [
            ("admin-a", "beta", False, True),
            ("admin-b", FEATURE_FLAG, False, True),
        ]
        events.clear()
        off = _patch_body({"feature_flags": {FEATURE_FLAG: False}})
        with _Inside(call, "patch_tenant", "get_tenant", admin_b(off)):
            admin_a(off)
        assert call("get_tenant", tenant_id).flag(FEATURE_FLAG) is False
        assert [(f, old, new) for _, f, old, new in _flag_changes(events)] == [
            (FEATURE_FLAG, True, False)
        ]

    # grants ---------------------------------------------------------------------

    def test_grants_are_bound_to_user_and_session(self, call: _Runner) -> None:
        user, other = _key("user"), _key("user")
        grant = Grant(user, "s1", frozenset({"pwd"}), T0)
        call("put_grant", grant, T0 + 3600)
        assert call("get_grant", user, "s1") == grant
        assert call("get_grant", user, "s2") is None
        assert call("get_grant", other, "s1") is None

    def test_lookalike_user_and_session_ids_keep_their_own_grants(self, call: _Runner) -> None:
        ids = _lookalike_ids()
        # Each id as a user with a session of the same id, and the first user with a
        # session of every id.
        grants = [Grant(i, i, frozenset({"pwd"}), T0 + n) for n, i in enumerate(ids)]
        sessions = [Grant(ids[0], i, frozenset({"otp"}), T0 + n) for n, i in enumerate(ids)]
        for grant in grants[1:] + sessions:
            call("put_grant", grant, T0 + 3600)
        for grant in grants[1:] + sessions:
            stored = call("get_grant", grant.user_id, grant.session_id)
            assert stored == grant
            assert (stored.user_id, stored.session_id) == (grant.user_id, grant.session_id)
        assert call("revoke_grants", ids[1]) == 1
        assert call("get_grant", ids[2], ids[2]) == grants[2]
        assert call("revoke_grants", ids[0], ids[1]) == 1
        assert call("get_grant", ids[0], ids[2]) == sessions[2]
        assert call("revoke_grants", ids[0]) == len(ids) - 1

    def test_a_batch_answers_as_each_read_alone(self, call: _Runner) -> None:
        """A store with ``batch`` (optional: decision code asks for it only where it
        exists) answers each read, in the order asked, as the method alone would; a
        missing tenant or grant is ``None``, and a method it cannot batch is refused."""
        if not callable(getattr(call.store, "batch", None)):
            # Decision code then reads one by one: nothing may claim batchable reads.
            assert not getattr(call.store, "batchable", None)
            return
        user, tenant_id = _key("user"), _key("tenant")
        grant = Grant(user, "s1", frozenset({"pwd"}), T0)
        call("put_grant", grant, T0 + 3600)
        call("put_tenant", Tenant(tenant_id, {"feature_flags": {FEATURE_FLAG: True}}))
        reads: list[tuple[str, tuple[Any, ...]]] = [
            ("get_tenant", (tenant_id,)),
            ("get_grant", (user, "s1")),
        ]
        assert call("batch", reads) == (call("get_tenant", tenant_id), grant)
        assert call("batch", reads[::-1]) == (grant, call("get_tenant", tenant_id))
        # The tenant a batch answers may be shared by the checks: then it is read-only.
        (shared,) = call("batch", reads[:1])
        with contextlib.suppress(TypeError):
            shared.attributes["feature_flags"][FEATURE_FLAG] = False
        assert call("batch", reads[:1])[0].flag(FEATURE_FLAG) is True
        assert call("get_tenant", tenant_id).flag(FEATURE_FLAG) is True
        # A flag changed through the store is what the next batch answers.
        call("patch_tenant", tenant_id, {}, {FEATURE_FLAG: False})
        (tenant,) = call("batch", reads[:1])
        assert tenant.flag(FEATURE_FLAG) is False
        call("patch_tenant", tenant_id, {}, {FEATURE_FLAG: True})
        assert call("batch", reads[:1])[0].flag(FEATURE_FLAG) is True
        missing = [("get_tenant", (_key("tenant"),)), ("get_grant", (user, "s2"))]
        assert call("batch", missing) == (None, None)
        batchable: frozenset[str] = getattr(call.store, "batchable", frozenset())
        if "get_credential" in batchable:
            assert call("batch", [("get_credential", (user,))]) == (None,)
        with pytest.raises(ValueError, match="put_grant"):
            call("batch", [("put_grant", (grant, T0 + 3600))])

    def test_a_grant_keeps_its_level(self, call: _Runner) -> None:
        """A level a provider's signed acr proved is stored with the grant; a newer grant
        without one (its level is whatever its methods prove) replaces it."""
        user = _key("user")
        proved = Grant(user, "s1", frozenset({"oidc"}), T0, level="mfa")
        call("put_grant", proved, T0 + 3600)
        assert call("get_grant", user, "s1") == proved
        plain = Grant(user, "s1", frozenset({"pwd"}), T0 + 1)
        call("put_grant", plain, T0 + 3600)
        assert call("get_grant", user, "s1") == plain

    def test_a_grant_of_no_methods_reads_back_with_none(self, call: _Runner) -> None:
        """stepup's own rows may hold no methods (a transaction epoch's anchor, which
        must satisfy no rule): it reads back with none, not with an empty name."""
        user = _key("user")
        anchor = Grant(user, "s1#tx-anchor", frozenset(), T0, level="e" * 32)
        call("put_grant", anchor, T0 + 3600)
        assert call("get_grant", user, "s1#tx-anchor") == anchor

    def test_new_grant_replaces_the_old(self, call: _Runner) -> None:
        user = _key("user")
        call("put_grant", Grant(user, "s1", frozenset({"pwd"}), T0), T0 + 3600)
        newer = Grant(user, "s1", frozenset({"oidc", "otp"}), T0 + 10)
        call("put_grant", newer, T0 + 3600)
        assert call("get_grant", user, "s1") == newer

    def test_revoke_one_session_or_all(self, call: _Runner) -> None:
        user, other = _key("user"), _key("user")
        for session in ("s1", "s2", "s3"):
            call("put_grant", Grant(user, session, frozenset({"pwd"}), T0), T0 + 3600)
        call("put_grant", Grant(other, "s1", frozenset({"pwd"}), T0), T0 + 3600)
        assert call("revoke_grants", user, "s1") == 1
        assert call("get_grant", user, "s1") is None
        assert call("get_grant", user, "s2") is not None
        assert call("revoke_grants", user) == 2
        assert call("get_grant", user, "s3") is None
        assert call("get_grant", other, "s1") is not None

    def test_replace_grant_is_a_compare_and_set(self, call: _Runner) -> None:
        """``replace_grant`` in one session writes only over the grant expected there
        (its methods, time and level); once that grant is revoked or replaced, it
        changes nothing and answers ``False``."""
        user = _key("user")
        read = Grant(user, "s1", frozenset({"otp"}), T0, level="mfa")
        merged = Grant(user, "s1", frozenset({"otp", "pwd"}), T0, level="mfa")
        call("put_grant", read, T0 + 3600)
        assert call("replace_grant", merged, T0 + 3600, read, "s1") is True
        assert call("get_grant", user, "s1") == merged
        assert call("replace_grant", merged, T0 + 3600, read, "s1") is False  # moved on
        assert call("get_grant", user, "s1") == merged
        for other in (
            replace(merged, methods=frozenset({"otp"})),
            replace(merged, authenticated_at=T0 + 1),
            replace(merged, level=None),
        ):
            assert call("replace_grant", read, T0 + 3600, other, "s1") is False
            assert call("get_grant", user, "s1") == merged
        call("revoke_grants", user)
        assert call("replace_grant", merged, T0 + 3600, merged, "s1") is False  # revoked
        assert call("get_grant", user, "s1") is None

    def test_replace_grant_moves_a_grant_to_a_renewed_session_id(self, call: _Runner) -> None:
        """From another session id, ``replace_grant`` removes the expected grant there
        and writes the new one under its own id (over one stored there), in one step;
        with the expected grant revoked or replaced, neither id changes."""
        user = _key("user")
        read = Grant(user, "old", frozenset({"otp"}), T0)
        moved = Grant(user, "new", frozenset({"otp", "pwd"}), T0)
        call("put_grant", read, T0 + 3600)
        call("put_grant", Grant(user, "new", frozenset({"pwd"}), T0 - 10), T0 + 3600)
        call("put_grant", Grant(user, "other", frozenset({"pwd"}), T0), T0 + 3600)
        assert call("replace_grant", moved, T0 + 3600, read, "old") is True
        assert call("get_grant", user, "old") is None
        assert call("get_grant", user, "new") == moved
        assert call("get_grant", user, "other") is not None
        # The grant read was replaced meanwhile (another record): nothing moves.
        call("put_grant", read, T0 + 3600)
        newer = replace(read, methods=frozenset({"oidc"}))
        call("put_grant", newer, T0 + 3600)
        again = replace(moved, session_id="newer")
        assert call("replace_grant", again, T0 + 3600, read, "old") is False
        assert call("get_grant", user, "old") == newer
        assert call("get_grant", user, "newer") is None
        # Revoked meanwhile (a password change): nothing comes back anywhere.
        assert call("revoke_grants", user) == 3
        assert call("replace_grant", again, T0 + 3600, newer, "old") is False
        assert call("get_grant", user, "old") is None
        assert call("get_grant", user, "newer") is None

    def test_a_refused_replace_grant_keeps_the_sessions_grant(self, call: _Runner) -> None:
        """A grant over before it starts is refused by ``replace_grant`` as by
        ``put_grant``, and the grant expected stays where it is."""
        user = _key("user")
        read = Grant(user, "old", frozenset({"otp"}), T0)
        call("put_grant", read, T0 + 3600)
        for session in ("old", "new"):
            with pytest.raises(MalformedInputError):
                call("replace_grant", replace(read, session_id=session), T0, read, "old")
        assert call("get_grant", user, "old") == read
        assert call("get_grant", user, "new") is None

    @pytest.mark.parametrize("level", [None, ""], ids=["no-level", "empty-level"])
    def test_replace_grant_expects_the_grant_as_read_back(
        self, call: _Runner, level: str | None
    ) -> None:
        """A grant written with a whole number of seconds (a clock of whole Unix seconds)
        or an empty level may read back as a float and no level: ``replace_grant``
        expecting the grant read still matches it, in place and moved to another id (a
        store that compared the grant's text as written with the text of the grant read
        lost every such merge)."""
        user = _key("user")
        for moved_to in ("old", "new"):
            call("put_grant", Grant(user, "old", frozenset({"otp"}), int(T0), level), T0 + 3600)
            read = call("get_grant", user, "old")
            assert read is not None
            assert read.authenticated_at == T0
            merged = Grant(user, moved_to, frozenset({"otp", "pwd"}), read.authenticated_at)
            assert call("replace_grant", merged, T0 + 3600, read, "old") is True, moved_to
            assert call("get_grant", user, moved_to) == merged
            call("revoke_grants", user)

    @pytest.mark.parametrize("renewed", [False, True], ids=["same-session", "renewed"])
    def test_a_record_merges_at_a_clock_of_whole_seconds(
        self, call: _Runner, renewed: bool
    ) -> None:
        """``Clock`` returns Unix seconds, and a clock of whole seconds (``int``) is one: a
        password recorded five seconds after a code joins it (the control case above,
        at such a clock)."""
        user, now = _key("user"), [int(T0)]
        kind = AsyncReauth if call.is_async else Reauth
        policy = Policy({"billing.export": Rule(Sensitivity.CRITICAL, lifetime=300.0)})
        reauth = kind(call.store, policy, clock=lambda: now[0])
        first = Subject(user, _key("sid"))
        call.resolve(reauth.record(first, ["otp"]))
        now[0] += 5
        then = Subject(user, _key("sid")) if renewed else first
        renewed_from = first.session_id if renewed else None
        stored = call.resolve(reauth.record(then, ["pwd"], renewed_from=renewed_from))
        assert stored.methods == {"otp", "pwd"}, "the earlier proof was lost"
        assert stored.authenticated_at == T0
        assert call("get_grant", user, then.session_id) == stored

    def _reauth(self, call: _Runner, store: Any, clock: SettableClock) -> Any:
        kind = AsyncReauth if call.is_async else Reauth
        policy = Policy(
            {
                "billing.export": Rule(Sensitivity.CRITICAL, lifetime=300.0, second_factor=True),
                "payments.send": Rule(Sensitivity.CRITICAL, lifetime=300.0, bind_transaction=True),
            }
        )
        return kind(store, policy, clock=clock)

    def _record_racing(
        self, call: _Runner, renewed: bool, compete: Callable[[Any, str], Any] | None
    ) -> tuple[Any, Subject, Grant, _Competing]:
        """A code proved (``otp``), then five seconds later a password (``pwd``) whose
        record has ``compete(reauth, user)`` run between its read of the session's
        grant and its write (none: the record alone). Answers the reauth, the
        session's subject after the record, the grant it answered, and the wrapper."""
        user, clock = _key("user"), SettableClock(T0)
        reauth = self._reauth(call, call.store, clock)
        first = Subject(user, _key("sid"))
        call.resolve(reauth.record(first, ["otp"]))
        clock.advance(5)
        racing = _Competing(
            call.store,
            ("replace_grant", "put_grant"),
            (lambda: None) if compete is None else partial(compete, reauth, user),
        )
        late = self._reauth(call, racing, clock)
        then = Subject(user, _key("sid")) if renewed else first
        renewed_from = first.session_id if renewed else None
        stored = call.resolve(late.record(then, ["pwd"], renewed_from=renewed_from))
        if renewed:
            assert call("get_grant", user, first.session_id) is None  # the old id keeps none
        return reauth, then, stored, racing

    def _decision(
        self,
        call: _Runner,
        reauth: Any,
        subject: Subject,
        tenant_id: str | None = None,
        transaction: str | None = None,
    ) -> Any:
        """The decision on the second-factor rule, or with ``transaction`` on the rule
        bound to it (in ``tenant_id``, the tenant its digest names)."""
        tenant_id = _key("tenant") if tenant_id is None else tenant_id
        call("put_tenant", Tenant(tenant_id, {"feature_flags": {FEATURE_FLAG: True}}))
        action = "billing.export" if transaction is None else "payments.send"
        return call.resolve(reauth.check(subject, action, tenant_id, transaction=transaction))

    @pytest.mark.parametrize("renewed", [False, True], ids=["same-session", "renewed"])
    def test_a_record_merges_the_earlier_proof_while_it_stands(
        self, call: _Runner, renewed: bool
    ) -> None:
        """The control of the case below: nothing revoked, the password joins the code
        proved moments before, dated by the code (the grant is never fresher than its
        parts), and the second-factor rule is allowed."""
        reauth, subject, stored, _ = self._record_racing(call, renewed, None)
        assert stored.methods == {"otp", "pwd"}
        assert stored.authenticated_at == T0
        assert call("get_grant", subject.user_id, subject.session_id) == stored
        assert isinstance(self._decision(call, reauth, subject), Allowed)

    @pytest.mark.parametrize("renewed", [False, True], ids=["same-session", "renewed"])
    @pytest.mark.parametrize("revocation", ["password_changed", "revoke_grants"])
    def test_a_revocation_between_a_records_read_and_write_stands(
        self, call: _Runner, renewed: bool, revocation: str
    ) -> None:
        """Issue 12 item 9: a factor change revokes every grant of the user (ASVS 5.0
        section 7.4.3) between a re-authentication's read of the session's earlier grant
        and its write. The revoked proof (``otp``) must not come back with the merged
        grant: only the new proof is stored, dated now, and the second-factor rule asks
        again."""

        def revoke(reauth: Any, user: str) -> Any:
            if revocation == "password_changed":
                return reauth.password_changed(user)
            return call.store.revoke_grants(user, None)

        reauth, subject, stored, racing = self._record_racing(call, renewed, revoke)
        assert racing.competed == 1
        kept = call("get_grant", subject.user_id, subject.session_id)
        assert kept is not None
        assert kept.methods == {"pwd"}, "a revoked proof was written back by a record"
        assert kept.authenticated_at == T0 + 5
        assert stored == kept
        assert not isinstance(self._decision(call, reauth, subject), Allowed)

    def _record_transaction_racing(
        self, call: _Runner, compete: Callable[[Any, str], Any] | None
    ) -> tuple[Any, Subject, Subject, str, str, _Competing]:
        """A password and a code proved (``pwd``, ``otp``), then five seconds later a
        payment confirmed with the password on a renewed session id, whose record has
        ``compete(reauth, user)`` run between its read of the old id's grant and its
        write of the grant it carries to the new id (none: the record alone). Answers
        the reauth, the old and the new subject, the tenant, the payment's digest and
        the wrapper."""
        user, clock, tenant_id = _key("user"), SettableClock(T0), _key("tenant")
        reauth = self._reauth(call, call.store, clock)
        old, new = Subject(user, _key("sid")), Subject(user, _key("sid"))
        call.resolve(reauth.record(old, ["otp", "pwd"]))
        clock.advance(5)
        racing = _Competing(
            call.store,
            ("replace_grant", "put_grant"),
            (lambda: None) if compete is None else partial(compete, reauth, user),
        )
        late = self._reauth(call, racing, clock)
        digest = transaction_digest("payments.send", {"to": "x"}, tenant_id=tenant_id)
        call.resolve(late.record(new, ["pwd"], renewed_from=old.session_id, transaction=digest))
        assert call("get_grant", user, old.session_id) is None  # the old id keeps none
        return reauth, old, new, tenant_id, digest, racing

    def test_a_transaction_on_a_renewed_id_carries_the_sessions_grant(self, call: _Runner) -> None:
        """The control of the case below: nothing revoked, the session's grant moves to
        the renewed id as it was (its proofs and its time), and the payment's proof
        counts for the payment."""
        reauth, _, new, tenant_id, digest, _ = self._record_transaction_racing(call, None)
        carried = call("get_grant", new.user_id, new.session_id)
        assert carried is not None
        assert (carried.methods, carried.authenticated_at) == ({"otp", "pwd"}, T0)
        assert isinstance(self._decision(call, reauth, new), Allowed)
        assert isinstance(self._decision(call, reauth, new, tenant_id, digest), Allowed)

    @pytest.mark.parametrize("revocation", ["password_changed", "revoke_grants"])
    def test_a_revocation_between_a_transactions_read_and_carry_stands(
        self, call: _Runner, revocation: str
    ) -> None:
        """A factor change revokes every grant of the user (ASVS 5.0 section 7.4.3)
        between the read of a renewed session's grant by a transaction's record and
        its carry to the new id. The revoked proofs must not come back under the new
        id: nothing is carried, the second-factor rule asks again, and only the
        payment's own proof, made after the revocation, counts for the payment."""

        def revoke(reauth: Any, user: str) -> Any:
            if revocation == "password_changed":
                return reauth.password_changed(user)
            return call.store.revoke_grants(user, None)

        reauth, _, new, tenant_id, digest, racing = self._record_transaction_racing(call, revoke)
        assert racing.competed == 1
        carried = call("get_grant", new.user_id, new.session_id)
        assert carried is None, "a revoked grant was carried to the renewed session id"
        assert not isinstance(self._decision(call, reauth, new), Allowed)
        assert isinstance(self._decision(call, reauth, new, tenant_id, digest), Allowed)

    # challenges -----------------------------------------------------------------

    def _challenge(self, expires_at: float) -> Challenge:
        return Challenge(_key("state"), "u1", "s1", T0, expires_at, {"nonce": "n", "verifier": "v"})

    def test_challenge_is_taken_once(self, call: _Runner) -> None:
        challenge = self._challenge(T0 + 600)
        call("put_challenge", challenge)
        assert call("take_challenge", challenge.challenge_id, T0 + 1) == challenge
        assert call("take_challenge", challenge.challenge_id, T0 + 2) is None, (
            "take_challenge handed out a challenge twice: taking it must delete it"
        )
        assert call("take_challenge", _key("unknown"), T0) is None

    def test_expired_challenge_is_refused_and_gone(self, call: _Runner) -> None:
        challenge = self._challenge(T0 + 600)
        call("put_challenge", challenge)
        assert call("take_challenge", challenge.challenge_id, T0 + 600) is None
        assert call("take_challenge", challenge.challenge_id, T0 + 1) is None

    def test_a_challenge_keeps_its_data_as_given(self, call: _Runner) -> None:
        """A challenge's data comes back exactly as it was put: NUL and lone surrogates
        in values and names, numbers with their type and sign."""
        data: dict[str, Any] = {f"name {text}": text for text in _ODD_TEXT}
        data.update(_ODD_NUMBERS, fields=[["ti\x00tle", "a\ud800b"]])
        challenge = Challenge(_key("state"), "u1", "s1", T0, T0 + 600, data)
        call("put_challenge", challenge)
        taken = call("take_challenge", challenge.challenge_id, T0 + 1)
        assert taken == challenge
        assert _as_sent(taken.data) == _as_sent(data)

    def test_a_kept_form_resumes_unchanged_whatever_its_text(self, call: _Runner) -> None:
        """A suspended form whose field names and values hold NUL or a lone surrogate is
        kept, and resumes with exactly those fields."""
        fields = (
            ("title", "a\x00b"),
            ("note", "a\ud800b"),
            ("ti\x00tle", "x"),
            ("n\udfffote", "y"),
            ("plain", "Ünïcode \U0001f600"),
        )
        kind = AsyncSuspensions if call.is_async else Suspensions
        flows = kind(call.store, clock=SettableClock(T0))
        subject = Subject(_key("user"), _key("session"))
        kept = call.resolve(flows.suspend(subject, "a.sensitive", "POST", "/things", fields))
        assert isinstance(kept, Suspended), f"the form was not kept: {kept!r}"
        back = call.resolve(flows.resume(subject, kept.token, "a.sensitive"))
        assert isinstance(back, Resumed), f"the form did not resume: {back!r}"
        assert back.request.fields == fields

    def test_concurrent_take_wins_once(self, call: _Runner) -> None:
        """The only case that holds ``take_challenge`` to single use under concurrency:
        no public getter of a challenge exists to force a race inside it, so
        :data:`THREADS` threads (behind a barrier, each letting the others run after
        every call the store's method makes) take one challenge, in several rounds."""
        for _ in range(ROUNDS // 4):
            challenge = self._challenge(T0 + 600)
            call("put_challenge", challenge)
            calls = [(challenge.challenge_id, T0)] * THREADS
            results = call.concurrently("take_challenge", calls, yielding=True)
            taken = [r for r in results if r is not None]
            assert taken == [challenge], (
                f"take_challenge handed out one challenge {len(taken)} times: it must delete"
                " atomically (one answer per challenge)"
            )

    # passkeys -------------------------------------------------------------------

    def _passkey(self, user: str, credential_id: str | None = None, **fields: Any) -> Passkey:
        values: dict[str, Any] = {
            "user_id": user,
            "credential_id": credential_id or _key("cred"),
            "credential_data": _KEY_DATA,
            "name": "Work laptop",
            "sign_count": 5,
            "user_verified": True,
            "created_at": T0,
            "transports": ("internal", "hybrid"),
        }
        return Passkey(**{**values, **fields})

    def test_passkeys_round_trip(self, call: _Runner) -> None:
        user, other = _key("user"), _key("user")
        assert call("list_passkeys", user) == ()
        first = self._passkey(user, name='Ünïcode ✓ "quoted" {tag}', sign_count=2**32 - 1)
        second = self._passkey(
            user,
            created_at=T0 + 1.5,
            sign_count=0,
            backup_eligible=True,
            backup_state=True,
            user_verified=False,
            last_used_at=T0 + 2.25,
            transports=(),
        )
        assert call("add_passkey", second, 10) is True
        assert call("add_passkey", first, 10) is True
        assert call("list_passkeys", user) == (first, second)  # oldest first
        assert call("list_passkeys", other) == ()
        # Created at the same moment: by the credential id's code points ("B" < "a" < "é",
        # whatever a database's locale would say).
        stem = _key("cred")
        ties = [self._passkey(other, stem + suffix, created_at=T0 + 7) for suffix in "éaB"]
        assert [call("add_passkey", p, 10) for p in ties] == [True] * 3
        assert call("list_passkeys", other) == (ties[2], ties[1], ties[0])

    def test_remove_passkey_removes_one(self, call: _Runner) -> None:
        user, other = _key("user"), _key("user")
        kept, gone = self._passkey(user), self._passkey(user, created_at=T0 + 1)
        call("add_passkey", kept, 10)
        call("add_passkey", gone, 10)
        assert call("remove_passkey", other, kept.credential_id) is False  # not theirs
        assert call("remove_passkey", user, gone.credential_id) is True
        assert call("remove_passkey", user, gone.credential_id) is False
        assert call("list_passkeys", user) == (kept,)
        # A removed credential id is free again (for anyone).
        assert call("add_passkey", replace(gone, user_id=other), 10) is True
        assert call("list_passkeys", other) == (replace(gone, user_id=other),)

    def test_rename_passkey(self, call: _Runner) -> None:
        user, other = _key("user"), _key("user")
        passkey = self._passkey(user)
        call("add_passkey", passkey, 10)
        assert call("rename_passkey", user, passkey.credential_id, "Phone ✓") is True
        assert call("rename_passkey", other, passkey.credential_id, "Mine") is False
        assert call("rename_passkey", user, _key("cred"), "Nothing") is False
        assert call("list_passkeys", user) == (replace(passkey, name="Phone ✓"),)
        assert call("list_passkeys", other) == ()

    def test_a_credential_id_is_registered_once(self, call: _Runner) -> None:
        alice, bob = _key("user"), _key("user")
        passkey = self._passkey(alice)
        assert call("add_passkey", passkey, 10) is True
        assert call("add_passkey", replace(passkey, user_id=bob, name="Bob's"), 10) is False
        assert call("add_passkey", replace(passkey, name="Again"), 10) is False
        assert call("list_passkeys", alice) == (passkey,)
        assert call("list_passkeys", bob) == ()

    def test_the_per_user_limit(self, call: _Runner) -> None:
        user, other = _key("user"), _key("user")
        added = [self._passkey(user, created_at=T0 + i) for i in range(3)]
        assert [call("add_passkey", p, 3) for p in added] == [True] * 3
        refused = self._passkey(user, created_at=T0 + 9)
        assert call("add_passkey", refused, 3) is False
        assert call("list_passkeys", user) == tuple(added)
        # The refused id was not kept: someone else can register it, and the user can
        # after removing one; the limit is per user.
        assert call("add_passkey", replace(refused, user_id=other), 3) is True
        assert call("remove_passkey", other, refused.credential_id) is True
        assert call("remove_passkey", user, added[0].credential_id) is True
        assert call("add_passkey", refused, 3) is True
        assert call("list_passkeys", user) == (*added[1:], refused)

    def test_record_passkey_use_is_a_compare_and_set(self, call: _Runner) -> None:
        user, other = _key("user"), _key("user")
        passkey = self._passkey(user, sign_count=5)
        call("add_passkey", passkey, 10)
        used = replace(passkey, sign_count=9, backup_state=True, last_used_at=T0 + 60.5)
        assert call("record_passkey_use", used, 4) is False  # stale: nothing changes
        assert call("record_passkey_use", used, 6) is False
        assert call("record_passkey_use", replace(used, user_id=other), 5) is False
        assert call("record_passkey_use", replace(used, credential_id=_key("c")), 5) is False
        assert call("list_passkeys", user) == (passkey,)
        assert call("record_passkey_use", used, 5) is True
        (stored,) = call("list_passkeys", user)
        assert stored == replace(passkey, sign_count=9, backup_state=True, last_used_at=T0 + 60.5)
        assert call("record_passkey_use", replace(used, sign_count=10), 5) is False
        assert call("list_passkeys", user) == (stored,)

    def test_counts_and_limits_beyond_64_bits_are_refused(self, call: _Runner) -> None:
        user = _key("user")
        big, too_big = 2**63 - 1, 2**63
        for passkey, limit, name in (
            (self._passkey(user), too_big, "max_per_user"),
            (self._passkey(user, sign_count=too_big), 10, "sign_count"),
            (self._passkey(user, sign_count=-too_big - 1), 10, "sign_count"),
            (self._passkey(user, sign_count=-1), 10, "sign_count"),  # the counter is unsigned
        ):
            with pytest.raises(MalformedInputError, match=name):
                call("add_passkey", passkey, limit)
            assert call("list_passkeys", user) == ()
            # Its credential id was not claimed either.
            assert call("add_passkey", replace(passkey, sign_count=5), 10) is True
            assert call("remove_passkey", user, passkey.credential_id) is True
        # At the very ends of the range a store keeps them exactly.
        passkey = self._passkey(user, sign_count=big)
        assert call("add_passkey", passkey, big) is True
        for used, expected, name in (
            (replace(passkey, sign_count=0), too_big, "expected_count"),
            (replace(passkey, sign_count=too_big), big, "sign_count"),
            (replace(passkey, sign_count=-1), big, "sign_count"),
        ):
            with pytest.raises(MalformedInputError, match=name):
                call("record_passkey_use", used, expected)
        assert call("list_passkeys", user) == (passkey,)
        assert call("record_passkey_use", replace(passkey, sign_count=0), big) is True
        assert call("list_passkeys", user) == (replace(passkey, sign_count=0),)

    def test_record_passkey_use_keeps_a_rename(self, call: _Runner) -> None:
        """A use writes the counter, backup state and time only: a rename made since
        the assertion read the passkey survives."""
        user = _key("user")
        passkey = self._passkey(user, sign_count=5)
        call("add_passkey", passkey, 10)
        call("rename_passkey", user, passkey.credential_id, "Renamed")
        used = replace(passkey, sign_count=6, last_used_at=T0 + 1)
        assert call("record_passkey_use", used, 5) is True
        assert call("list_passkeys", user) == (replace(used, name="Renamed"),)

    def test_long_credential_and_user_ids(self, call: _Runner) -> None:
        """WebAuthn allows credential ids of up to 1023 bytes (1364 characters of
        base64url); stores that fit ids into shorter columns must still keep them apart."""
        user, other = _key("user") + "u" * 300, _key("user") + "u" * 300
        stem = _key("cred") + "A" * 1300
        first, second = self._passkey(user, stem + "1"), self._passkey(user, stem + "2")
        assert call("add_passkey", first, 10) is True
        assert call("add_passkey", second, 10) is True
        assert call("add_passkey", replace(first, user_id=other), 10) is False
        assert call("list_passkeys", user) == tuple(sorted((first, second), key=_by_id))
        used = replace(first, sign_count=6, last_used_at=T0 + 1)
        assert call("record_passkey_use", used, 5) is True
        assert call("remove_passkey", user, second.credential_id) is True
        assert call("list_passkeys", user) == (used,)
        assert call("list_passkeys", other) == ()

    def test_concurrent_adds_of_one_credential_id_one_wins(self, call: _Runner) -> None:
        for _ in range(ROUNDS // 4):
            credential_id = _key("cred")
            users = [_key("user") for _ in range(THREADS)]
            calls = [(self._passkey(u, credential_id), 10) for u in users]
            results = call.concurrently("add_passkey", calls)
            assert results.count(True) == 1
            winner = users[results.index(True)]
            assert [p.credential_id for p in call("list_passkeys", winner)] == [credential_id]
            assert all(call("list_passkeys", u) == () for u in users if u != winner)

    def test_concurrent_adds_stop_at_the_limit(self, call: _Runner) -> None:
        user = _key("user")
        calls = [(self._passkey(user, created_at=T0 + i), 5) for i in range(THREADS)]
        results = call.concurrently("add_passkey", calls)
        assert results.count(True) == 5
        stored = {p.credential_id for p in call("list_passkeys", user)}
        won = {args[0].credential_id for args, won in zip(calls, results, strict=True) if won}
        assert stored == won

    def test_concurrent_uses_with_one_expected_count_one_wins(self, call: _Runner) -> None:
        for _ in range(ROUNDS // 4):
            user = _key("user")
            passkey = self._passkey(user, sign_count=5)
            call("add_passkey", passkey, 10)
            uses = [replace(passkey, sign_count=6 + i, last_used_at=T0 + i) for i in range(THREADS)]
            calls = [(u, 5) for u in uses]
            results = call.concurrently("record_passkey_use", calls, yielding=True)
            assert results.count(True) == 1, (
                f"{results.count(True)} of {THREADS} uses at once with one expected count were"
                " recorded: record_passkey_use must compare and write atomically"
            )
            assert call("list_passkeys", user) == (uses[results.index(True)],)

    def test_a_use_recorded_inside_a_use_wins_alone(self, call: _Runner) -> None:
        """Two assertions of one authenticator with one expected count, the second
        recorded between the store's own read (for a store that reads through
        ``list_passkeys``) and its write: exactly one is recorded, and it is stored."""
        user = _key("user")
        passkey = self._passkey(user, sign_count=5)
        call("add_passkey", passkey, 10)
        mine = replace(passkey, sign_count=6, last_used_at=T0 + 1)
        theirs = replace(passkey, sign_count=7, last_used_at=T0 + 2)
        compete = partial(call.store.record_passkey_use, theirs, 5)
        with _Inside(call, "record_passkey_use", "list_passkeys", compete) as inside:
            won = call("record_passkey_use", mine, 5)
        assert [won, inside.result].count(True) == 1, (
            "two uses of one passkey with one expected count, one inside the other, were"
            " both recorded: record_passkey_use must compare and write atomically"
        )
        assert call("list_passkeys", user) == (mine if won else theirs,)

    def test_a_rename_or_removal_inside_a_use_stands(self, call: _Runner) -> None:
        """A rename, or a removal, between the store's own read of the passkey (through
        ``list_passkeys``) and its write of a use: the name stays, the passkey stays
        removed (a use never writes back what it read)."""
        user = _key("user")
        renamed, removed = self._passkey(user), self._passkey(user)
        for passkey in (renamed, removed):
            call("add_passkey", passkey, 10)
        rename = partial(call.store.rename_passkey, user, renamed.credential_id, "Renamed")
        used = replace(renamed, sign_count=6, last_used_at=T0 + 1)
        with _Inside(call, "record_passkey_use", "list_passkeys", rename) as inside:
            call("record_passkey_use", used, 5)
        assert inside.result is True
        names = {p.credential_id: p.name for p in call("list_passkeys", user)}
        assert names[renamed.credential_id] == "Renamed", (
            "a rename made inside record_passkey_use was lost: a use must write the"
            " counter, backup state and time only, atomically"
        )
        remove = partial(call.store.remove_passkey, user, removed.credential_id)
        used = replace(removed, sign_count=6, last_used_at=T0 + 1)
        with _Inside(call, "record_passkey_use", "list_passkeys", remove) as inside:
            call("record_passkey_use", used, 5)
        assert inside.result is True
        left = [p.credential_id for p in call("list_passkeys", user)]
        assert left == [renamed.credential_id], (
            "a passkey removed inside record_passkey_use came back: a use of a passkey"
            " that is gone must write nothing"
        )

    # passkeys, end to end: the ceremonies of stepup.passkeys against this store ----

    def _ceremonies(
        self, call: _Runner, store: Any, events: list[StepupEvent] | None = None, limit: int = 10
    ) -> Any:
        passkeys = pytest.importorskip("stepup.passkeys", reason="the passkeys extra (fido2)")
        rp = passkeys.RelyingParty(
            id="example.com", name="Example", origins=(_ORIGIN,), max_passkeys_per_user=limit
        )
        kind = passkeys.AsyncPasskeys if call.is_async else passkeys.Passkeys
        bus = EventBus(events.append) if events is not None else None
        return kind(store, rp, clock=SettableClock(T0), events=bus)

    @staticmethod
    def _authenticator(**fields: Any) -> Any:
        webauthn = pytest.importorskip("stepup.testing.webauthn", reason="the passkeys extra")
        return webauthn.SoftAuthenticator(origin=_ORIGIN, **fields)

    def _register(self, call: _Runner, ceremonies: Any, subject: Subject, key: Any) -> Any:
        options = call.resolve(ceremonies.begin_registration(subject, subject.user_id))
        return call.resolve(ceremonies.finish_registration(subject, key.create(options), "Key"))

    def _assert(self, call: _Runner, ceremonies: Any, subject: Subject, key: Any) -> Any:
        options = call.resolve(ceremonies.begin_authentication(subject))
        return call.resolve(ceremonies.finish_authentication(subject, key.get(options)))

    def test_passkey_ceremonies_end_to_end(self, call: _Runner) -> None:
        events: list[StepupEvent] = []
        ceremonies = self._ceremonies(call, call.store, events)
        alice = Subject(_key("user"), _key("session"))
        laptop, phone = self._authenticator(counter=5), self._authenticator(counter=100)
        assert self._register(call, ceremonies, alice, laptop).reason == "ok"
        assert self._register(call, ceremonies, alice, phone).reason == "ok"
        assert len(call("list_passkeys", alice.user_id)) == 2
        for key in (laptop, phone, laptop):
            result = self._assert(call, ceremonies, alice, key)
            assert result.reason == "ok"
            assert result.passkey.sign_count == key.counter
        assert sorted(p.sign_count for p in call("list_passkeys", alice.user_id)) == [7, 101]
        # A clone of the laptop's key, behind on the counter, is refused; nothing changes.
        laptop.counter = 5
        assert self._assert(call, ceremonies, alice, laptop).reason == "counter"
        assert sorted(p.sign_count for p in call("list_passkeys", alice.user_id)) == [7, 101]
        # Removing the phone's passkey: it no longer asserts; the laptop's still does.
        (phone_id,) = [
            p.credential_id for p in call("list_passkeys", alice.user_id) if p.sign_count == 101
        ]
        assert call.resolve(ceremonies.remove(alice.user_id, phone_id, removed_by="alice"))
        assert self._assert(call, ceremonies, alice, phone).reason == "unknown_credential"
        laptop.counter = 7
        assert self._assert(call, ceremonies, alice, laptop).reason == "ok"
        assert [p.sign_count for p in call("list_passkeys", alice.user_id)] == [8]
        names = [type(e).__name__ for e in events]
        assert names.count("PasskeyRegistered") == 2
        assert names.count("PasskeyCounterRegressed") == 1
        assert names.count("PasskeyRemoved") == 1

    def test_registration_that_loses_its_credential_id_is_refused(self, call: _Runner) -> None:
        """Bob registers the very same credential between Alice's ceremony's checks and
        its ``add_passkey``: Alice's registration is refused, Bob keeps it."""
        alice = Subject(_key("user"), _key("session"))
        bob = Subject(_key("user"), _key("session"))
        key = self._authenticator(counter=1)
        twin = copy.copy(key)  # the same credential id and private key
        plain = self._ceremonies(call, call.store)

        def bob_registers() -> Any:
            if call.is_async:

                async def both() -> Any:
                    options = await plain.begin_registration(bob, bob.user_id)
                    return await plain.finish_registration(bob, twin.create(options), "Bob's")

                return both()
            options = plain.begin_registration(bob, bob.user_id)
            return plain.finish_registration(bob, twin.create(options), "Bob's")

        racing = _Competing(call.store, ("add_passkey",), bob_registers)
        result = self._register(call, self._ceremonies(call, racing), alice, key)
        assert racing.competed == 1
        assert result.reason == "duplicate"
        assert call("list_passkeys", alice.user_id) == ()
        assert [p.name for p in call("list_passkeys", bob.user_id)] == ["Bob's"]

    def test_registration_that_loses_the_last_place_is_refused(self, call: _Runner) -> None:
        """A user with one place left registers on two devices at once: the other
        registration is stored between this one's checks and its ``add_passkey``, so
        this one is refused and the user has exactly the limit."""
        alice = Subject(_key("user"), _key("session"))
        plain = self._ceremonies(call, call.store, limit=2)
        assert self._register(call, plain, alice, self._authenticator()).reason == "ok"
        phone = self._authenticator()

        def phone_registers() -> Any:
            if call.is_async:

                async def both() -> Any:
                    options = await plain.begin_registration(alice, alice.user_id)
                    return await plain.finish_registration(alice, phone.create(options), "Phone")

                return both()
            options = plain.begin_registration(alice, alice.user_id)
            return plain.finish_registration(alice, phone.create(options), "Phone")

        racing = _Competing(call.store, ("add_passkey",), phone_registers)
        laptop = self._authenticator()
        result = self._register(call, self._ceremonies(call, racing, limit=2), alice, laptop)
        assert racing.competed == 1
        assert result.reason == "limit"
        names = sorted(p.name for p in call("list_passkeys", alice.user_id))
        assert names == ["Key", "Phone"]

    def test_assertion_that_loses_the_counter_race_is_refused(self, call: _Runner) -> None:
        """Two assertions of one authenticator (a clone, or one response sent twice over
        two challenges): the other is recorded between this one's read and its
        ``record_passkey_use``, so this one is refused and the stored counter is the
        other's."""
        events: list[StepupEvent] = []
        alice = Subject(_key("user"), _key("session"))
        key = self._authenticator(counter=5)
        plain = self._ceremonies(call, call.store, events)
        assert self._register(call, plain, alice, key).reason == "ok"
        twin = copy.copy(key)
        twin_options = call.resolve(plain.begin_authentication(alice))
        racing = _Competing(
            call.store,
            ("record_passkey_use",),
            lambda: plain.finish_authentication(alice, twin.get(twin_options)),
        )
        result = self._assert(call, self._ceremonies(call, racing, events), alice, key)
        assert racing.competed == 1
        assert result.reason == "counter"
        assert [p.sign_count for p in call("list_passkeys", alice.user_id)] == [6]
        assert [type(e).__name__ for e in events].count("PasskeyVerified") == 1

    # input no store could keep alike ------------------------------------------------

    def _writes(self, bad: Any, key: Any) -> dict[str, Callable[[_Runner], Any]]:
        """Every write, each sending ``bad`` as one of its ids (``key`` where the id is
        a key: a throttle key, a credential or challenge id, a digest, a name, a grant's
        session id (the core suffixes it), whose
        limit is :data:`~stepup.adapters.storage.base.MAX_KEY_LENGTH`)."""
        user, session = _key("user"), _key("session")
        grant = Grant(user, session, frozenset({"pwd"}), T0)
        credential = Credential(user, "totp:c", "plain:S", recovery_hashes=("h1",))
        challenge = Challenge(_key("state"), user, session, T0, T0 + 600)
        passkey = self._passkey(user)
        refused = Attempt(AttemptOutcome.REJECTED, 1, None)
        cases: dict[str, Callable[[_Runner], Any]] = {
            "grant.user_id": lambda c: c("put_grant", replace(grant, user_id=bad), T0 + 60),
            "grant.session_id": lambda c: c("put_grant", replace(grant, session_id=key), T0 + 60),
            "replace_grant user_id": lambda c: c(
                "replace_grant", replace(grant, user_id=bad), T0 + 60, grant, session
            ),
            "replace_grant from_session": lambda c: c("replace_grant", grant, T0 + 60, grant, key),
            "revoke user_id": lambda c: c("revoke_grants", bad),
            "revoke session_id": lambda c: c("revoke_grants", user, key),
            "put_tenant": lambda c: c("put_tenant", Tenant(bad, {})),
            "add_tenant": lambda c: c("add_tenant", Tenant(bad, {})),
            "patch_tenant": lambda c: c("patch_tenant", bad, {}, {}),
            "put_credential": lambda c: c("put_credential", replace(credential, user_id=bad)),
            "add_credential": lambda c: c("add_credential", replace(credential, user_id=bad)),
            "replace_credential": lambda c: c(
                "replace_credential", replace(credential, user_id=bad), 1
            ),
            "credential_id": lambda c: c("put_credential", replace(credential, credential_id=key)),
            "recovery hash": lambda c: c(
                "put_credential", replace(credential, recovery_hashes=(key,))
            ),
            "delete_credential": lambda c: c("delete_credential", bad),
            "consume user_id": lambda c: c("consume_recovery_hash", bad, "h1"),
            "consume digest": lambda c: c("consume_recovery_hash", user, key),
            "challenge_id": lambda c: c("put_challenge", replace(challenge, challenge_id=key)),
            "challenge.user_id": lambda c: c("put_challenge", replace(challenge, user_id=bad)),
            "challenge.session_id": lambda c: c(
                "put_challenge", replace(challenge, session_id=bad)
            ),
            "passkey.user_id": lambda c: c("add_passkey", replace(passkey, user_id=bad), 10),
            "passkey.credential_id": lambda c: c(
                "add_passkey", replace(passkey, credential_id=key), 10
            ),
            "passkey.name": lambda c: c("add_passkey", replace(passkey, name=key), 10),
            "record_passkey_use": lambda c: c(
                "record_passkey_use", replace(passkey, user_id=bad), 5
            ),
            "remove_passkey user_id": lambda c: c("remove_passkey", bad, passkey.credential_id),
            "remove_passkey credential_id": lambda c: c("remove_passkey", user, key),
            "rename_passkey": lambda c: c("rename_passkey", user, passkey.credential_id, key),
            "totp_attempt": lambda c: c("totp_attempt", key, 1, T0, POLICY),
            "throttle_charge": lambda c: c("throttle_charge", key, T0, POLICY),
            "throttle_refund": lambda c: c("throttle_refund", key, refused, T0),
            "throttle_clear": lambda c: c("throttle_clear", key),
        }
        if bad is None:
            del cases["revoke session_id"]  # None there means every session
        return cases

    @_FEW_EXAMPLES
    @given(bad=_UNKEEPABLE_IDS)
    def test_ids_no_store_keeps_alike_are_refused_by_every_write(
        self, call: _Runner, bad: Any
    ) -> None:
        """An id with NUL (PostgreSQL refuses it) or a lone surrogate (not UTF-8), one
        that is not text (an int a SQL column would read back as text, ``None``, bytes),
        or one over the length limit: every store refuses every write of it with
        :class:`~stepup.errors.MalformedInputError`, never a store error, never stored."""
        key = "k" * (MAX_KEY_LENGTH + 1) if isinstance(bad, str) and len(bad) > 1024 else bad
        writes = self._writes(bad, key)
        assert [name for name, write in writes.items() if not _refused(partial(write, call))] == []

    def test_a_refused_write_changes_nothing(self, call: _Runner) -> None:
        """A write refused for one bad id leaves what is stored under the good ones."""
        user, session = _key("user"), _key("session")
        grant = Grant(user, session, frozenset({"pwd"}), T0)
        call("put_grant", grant, T0 + 3600)
        credential = Credential(user, "totp:c", "plain:S", recovery_hashes=("h1",))
        call("put_credential", credential)
        stored = call("get_credential", user)
        passkey = self._passkey(user)
        call("add_passkey", passkey, 10)
        writes: list[tuple[Any, ...]] = [
            ("revoke_grants", user, "s\x00"),
            ("replace_grant", replace(grant, session_id="s\x00"), T0 + 60, grant, session),
            ("replace_grant", replace(grant, session_id="s2"), T0 + 60, grant, "s\x00"),
            ("put_credential", replace(credential, recovery_hashes=("h\ud800",))),
            ("consume_recovery_hash", user, "h1\x00"),
            ("rename_passkey", user, passkey.credential_id, "n\x00"),
            ("remove_passkey", user, passkey.credential_id + "\ud800"),
        ]
        assert [w[0] for w in writes if not _refused(partial(call, *w))] == []
        assert call("get_grant", user, session) == grant
        assert call("get_credential", user) == stored
        assert call("list_passkeys", user) == (passkey,)

    @staticmethod
    def _reads_refused(call: _Runner, bad: Any) -> None:
        """Every read refuses ``bad`` in each id it takes, but the reads of every
        decision (``get_tenant``, ``get_grant`` and their ``batch``): they run on every
        guarded request, and decision code sends them ids it has checked."""
        reads: list[tuple[str, tuple[Any, ...]]] = [
            ("get_credential", (bad,)),
            ("throttle_state", (bad,)),
            ("take_challenge", (bad, T0)),
            ("list_passkeys", (bad,)),
        ]
        answered = [(m, a) for m, a in reads if not _refused(partial(call, m, *a))]
        assert answered == []

    @pytest.mark.parametrize("bad", [123, None, b"ab"])
    def test_reads_refuse_ids_that_are_not_text(self, call: _Runner, bad: Any) -> None:
        """A read checks the cheap part of an id the same way on every store: an int
        never finds the record stored under its digits on one store and nothing (or an
        ``AttributeError``) on another."""
        self._reads_refused(call, bad)

    def test_reads_refuse_ids_over_the_length_limit(self, call: _Runner) -> None:
        """Longer than any key a write accepts: refused by every read, as by every write."""
        self._reads_refused(call, "x" * (MAX_KEY_LENGTH + 1))

    @pytest.mark.parametrize(
        ("authenticated_at", "expires_at"),
        [
            (T0, T0),
            (T0, T0 - 1),
            (T0, math.nan),
            (T0, math.inf),
            (math.nan, T0 + 60),
            (-math.inf, T0 + 60),
        ],
    )
    def test_a_grant_over_before_it_starts_is_refused_and_keeps_the_sessions_grant(
        self, call: _Runner, authenticated_at: float, expires_at: float
    ) -> None:
        """``expires_at`` must be finite and after ``authenticated_at`` (finite too): a
        NaN never expires on one store and is refused by another; and a refused grant
        never costs the session the grant it has."""
        user, session = _key("user"), _key("session")
        kept = Grant(user, session, frozenset({"pwd"}), T0 - 100)
        call("put_grant", kept, T0 + 3600)
        with pytest.raises(MalformedInputError):
            call(
                "put_grant", Grant(user, session, frozenset({"otp"}), authenticated_at), expires_at
            )
        assert call("get_grant", user, session) == kept

    def test_a_grant_under_the_longest_session_id_with_the_cores_suffix_is_kept(
        self, call: _Runner
    ) -> None:
        """The core keeps a session's transaction epoch and sliding window as grants under
        the session id with a suffix: for the longest session id a subject may have, the
        store keeps them, finds them and revokes them."""
        user = _key("user")
        for suffix in ("#tx-anchor", "#slide@1700000000.0"):
            session = _key("s").ljust(MAX_ID_LENGTH, "s") + suffix
            grant = Grant(user, session, frozenset({"pwd"}), T0)
            call("put_grant", grant, T0 + 3600)
            assert call("get_grant", user, session) == grant
            assert call("revoke_grants", user, session) == 1
            assert call("get_grant", user, session) is None

    @pytest.mark.parametrize(
        ("issued_at", "expires_at"),
        [(T0, T0), (T0, T0 - 1), (T0, math.nan), (T0, math.inf), (math.nan, T0 + 60)],
    )
    def test_a_challenge_over_before_it_starts_is_refused(
        self, call: _Runner, issued_at: float, expires_at: float
    ) -> None:
        """A challenge's ``expires_at`` must be finite and after ``issued_at``: a NaN
        never expires on one store, an infinity overflows another's expiry."""
        challenge = Challenge(_key("state"), "u1", "s1", issued_at, expires_at)
        with pytest.raises(MalformedInputError):
            call("put_challenge", challenge)
        assert call("take_challenge", challenge.challenge_id, T0 - 10) is None
