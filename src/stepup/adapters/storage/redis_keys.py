"""Key naming for the Redis store: one namespace, one hash tag per id.

Every key is ``<prefix><kind>:{<id>}``. The part in braces is the Redis Cluster
hash tag, so all keys of one user (credential, grants and passkeys) live in one slot,
and a script only ever touches one key. Braces and ``%`` inside ids are percent-escaped:
an id can neither end the tag early nor collide with another id. The empty id's tag is
``{%}``: Redis would not read ``{}`` as a tag at all (it would place each of that id's
keys by the whole key name), and no other id escapes to a lone ``%``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...errors import ConfigurationError

__all__ = ["DEFAULT_PREFIX", "RedisKeys", "untagged"]

DEFAULT_PREFIX = "stepup:"


#: The tag of the empty id. Redis Cluster ignores an empty tag (``{}``) and hashes the
#: whole key instead, which would scatter that id's keys over several slots. A lone ``%``
#: is no other id's tag: escaping turns every ``%`` of an id into ``%25``, so in any
#: other tag a ``%`` is followed by ``25``, ``7B`` or ``7D``.
_EMPTY_ID_TAG = "{%}"


def _tag(value: str) -> str:
    """``{<value>}`` with ``%``, ``{`` and ``}`` percent-escaped; never an empty tag."""
    if not value:
        return _EMPTY_ID_TAG
    escaped = value.replace("%", "%25").replace("{", "%7B").replace("}", "%7D")
    return "{" + escaped + "}"


def untagged(tag: str) -> str:
    """The id whose :func:`_tag` is ``{tag}``: the one place that reads a key's tag back
    (the operator's listing of users from their credential keys)."""
    if tag == _EMPTY_ID_TAG[1:-1]:
        return ""
    return tag.replace("%7B", "{").replace("%7D", "}").replace("%25", "%")


@dataclass(frozen=True, slots=True)
class RedisKeys:
    """The names of every key the store writes, under ``prefix``."""

    prefix: str = DEFAULT_PREFIX

    def __post_init__(self) -> None:
        if not isinstance(self.prefix, str) or "{" in self.prefix or "}" in self.prefix:
            raise ConfigurationError("the Redis key prefix must be a string without braces")

    def attempt(self, key: str) -> str:
        """Replay ledger and throttle state: one string, ``<last step or -> <failures>
        <blocked until>``. Earlier versions kept a hash under ``attempt:``; the new name
        means such a hash is never read as this string (``WRONGTYPE``): it is ignored
        and expires by itself."""
        return f"{self.prefix}ledger:{_tag(key)}"

    def credential(self, user_id: str) -> str:
        """The user's credential (a hash: ``record`` JSON, one ``r:<digest>`` per
        recovery hash)."""
        return f"{self.prefix}cred:{_tag(user_id)}"

    def grants(self, user_id: str) -> str:
        """Every re-auth grant of the user, one hash field per session."""
        return f"{self.prefix}grants:{_tag(user_id)}"

    def tenant(self, tenant_id: str) -> str:
        return f"{self.prefix}tenant:{_tag(tenant_id)}"

    def challenge(self, challenge_id: str) -> str:
        return f"{self.prefix}challenge:{_tag(challenge_id)}"

    def passkeys(self, user_id: str) -> str:
        """The user's passkeys: a hash with three fields per credential id ``<id>``:
        ``k:<id>`` (the JSON that never changes), ``n:<id>`` (the name) and ``c:<id>``
        (``<sign count> <backup state 0|1> <last used or ->``)."""
        return f"{self.prefix}passkeys:{_tag(user_id)}"

    def passkey_id(self, credential_id: str) -> str:
        """The global index of credential ids: a string holding the owner's user id, so
        one id is registered to one user. Tagged by the credential id, so in a cluster it
        lives in another slot than the owner's keys (see ``docs/storage-redis.md``)."""
        return f"{self.prefix}passkey-id:{_tag(credential_id)}"

    def of_user(self, user_id: str) -> tuple[str, ...]:
        """All keys that belong to one user; they share one hash slot. (The passkey-id
        index entries are keyed by credential id, not by user.)"""
        return (self.credential(user_id), self.grants(user_id), self.passkeys(user_id))
