"""The Redis keys of the empty id share one hash slot, and no other id's keys changed.

Redis Cluster places a key by the text between its first ``{`` and the next ``}``, but
only when that text is not empty: a key with ``{}`` is placed by its whole name. So an
empty id must not give an empty tag, or its credential, grants and passkeys (whose
names differ before the tag) would land in different slots. Keys of every non-empty id
are what they always were: stored data has to stay readable after an upgrade.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis.crc import key_slot

from stepup.adapters.storage.redis_keys import RedisKeys, untagged

#: Every kind of key, by the method that names it.
KINDS: dict[str, Callable[[RedisKeys, str], str]] = {
    "ledger": RedisKeys.attempt,
    "cred": RedisKeys.credential,
    "grants": RedisKeys.grants,
    "tenant": RedisKeys.tenant,
    "challenge": RedisKeys.challenge,
    "passkeys": RedisKeys.passkeys,
    "passkey-id": RedisKeys.passkey_id,
}

#: Non-empty ids, with the characters the escaping is about made likely.
non_empty_ids = st.text(alphabet=st.sampled_from("{}%7BD25a"), min_size=1, max_size=10) | st.text(
    min_size=1, max_size=20
)


def _tag_content(key: str) -> str:
    """What Redis hashes a key by: the text inside its first ``{...}``."""
    start = key.index("{")
    return key[start + 1 : key.index("}", start + 1)]


@pytest.mark.parametrize("prefix", ["stepup:", "app:2fa:", ""])
def test_every_key_of_the_empty_user_id_is_in_one_slot(prefix: str) -> None:
    keys = RedisKeys(prefix)
    names = keys.of_user("")
    assert len(names) == 3
    assert all(_tag_content(name) for name in names)  # Redis reads it as a tag
    assert len({key_slot(name.encode()) for name in names}) == 1


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_the_empty_id_has_a_tag_of_its_own(kind: str) -> None:
    """Placed by its tag, like every other id: the slot is the same whatever the prefix."""
    name = KINDS[kind]
    assert _tag_content(name(RedisKeys(), ""))
    slots = {key_slot(name(RedisKeys(prefix), "").encode()) for prefix in ("stepup:", "x:", "")}
    assert len(slots) == 1


@given(user_id=non_empty_ids)
def test_no_other_id_shares_the_empty_ids_keys(user_id: str) -> None:
    keys = RedisKeys()
    for name in KINDS.values():
        assert name(keys, user_id) != name(keys, "")


def test_keys_of_stored_ids_are_the_ones_written_before() -> None:
    """Literal keys a deployment holds today, escapes included."""
    keys = RedisKeys()
    assert keys.credential("alice") == "stepup:cred:{alice}"
    assert keys.grants("alice") == "stepup:grants:{alice}"
    assert keys.passkeys("alice") == "stepup:passkeys:{alice}"
    assert keys.attempt("totp:dev-1") == "stepup:ledger:{totp:dev-1}"
    assert keys.tenant("t1") == "stepup:tenant:{t1}"
    assert keys.challenge("ch") == "stepup:challenge:{ch}"
    assert keys.passkey_id("cred-1") == "stepup:passkey-id:{cred-1}"
    assert keys.credential("%") == "stepup:cred:{%25}"
    assert keys.credential("{}") == "stepup:cred:{%7B%7D}"
    assert keys.credential("a}b{c%") == "stepup:cred:{a%7Db%7Bc%25}"
    assert keys.credential(" ") == "stepup:cred:{ }"


@given(user_id=non_empty_ids, prefix=st.sampled_from(["stepup:", "app:", ""]))
def test_keys_of_non_empty_ids_are_unchanged(user_id: str, prefix: str) -> None:
    """The layout as it was written before the empty id got a tag: percent-escape ``%``,
    ``{`` and ``}``, and put the result in braces."""
    escaped = user_id.replace("%", "%25").replace("{", "%7B").replace("}", "%7D")
    keys = RedisKeys(prefix)
    for kind, name in KINDS.items():
        assert name(keys, user_id) == f"{prefix}{kind}:{{{escaped}}}"


@given(st.just("") | non_empty_ids)
def test_the_operator_reads_every_credential_key_back_to_its_id(user_id: str) -> None:
    # The operator lists users from their credential keys (`stepup operator reseal`).
    assert untagged(_tag_content(RedisKeys("stepup:").credential(user_id))) == user_id
