"""The Lua scripts of the Redis store: each one reads, decides and writes one key
atomically, in one round trip.

Numbers cross the Lua boundary as strings only. Times and delays are doubles
written with ``%.17g`` (Python's ``repr`` reads them back bit for bit); counters
are written with ``%d``. Time steps are never turned into Lua numbers at all: they
are compared as canonical decimal strings, so they stay exact at any size (far
beyond 2**53, where a double would start rounding).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

__all__ = [
    "ADD_CREDENTIAL",
    "ADD_PASSKEY",
    "ADD_VALUE",
    "ATTEMPT",
    "CLEAR_THROTTLE",
    "CONFIRM_CLAIM",
    "CONSUME_RECOVERY",
    "PUT_CREDENTIAL",
    "PUT_GRANT",
    "RECORD_PASSKEY_USE",
    "REFUND",
    "RELEASE_CLAIM",
    "RENAME_PASSKEY",
    "REPLACE_CREDENTIAL",
    "REPLACE_GRANT",
    "REVOKE_ALL",
    "SWAP_VALUE",
    "Script",
]


@dataclass(frozen=True, slots=True)
class Script:
    """A Lua source and its SHA1, for ``EVALSHA`` with an ``EVAL`` fallback."""

    name: str
    source: str = field(repr=False)
    sha: str = field(init=False)
    #: ``EVALSHA <sha> 1``, the start of every call (each script takes one key), as
    #: bytes where redis-py would otherwise test and encode a ``str`` on every call.
    head: tuple[str, bytes, bytes] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        sha = hashlib.sha1(self.source.encode(), usedforsecurity=False).hexdigest()
        object.__setattr__(self, "sha", sha)
        object.__setattr__(self, "head", ("EVALSHA", sha.encode(), b"1"))


#: The mirror of :func:`stepup.throttle.apply_attempt` (a step given) and
#: :func:`stepup.throttle.apply_charge` (``""`` for the step: a stepless attempt and a
#: charge are the same transition); the delay is
#: :meth:`stepup.throttle.ThrottlePolicy.delay_after`, forgiveness
#: :meth:`~stepup.throttle.ThrottlePolicy.failures_at` and the TTL
#: :func:`stepup.throttle.keep_until`, with the policy's numbers as ARGV.
#:
#: KEYS[1]: the attempt state, one string "<last step or -> <failures> <blocked until>".
#: ARGV: step ("" for none), now, forget_after in ms, and the rest of the policy as
#: "free_failures base_delay max_delay most_failures".
#: Returns "accepted", or "<outcome> <failures> <retry_at or ->" (one string to read).
#:
#: Each ``redis.call`` costs about as much server time as a bare command, so the hot
#: path (a code accepted for a key with no failure still counted) is one call: such an
#: accepted attempt leaves (step, 0, not blocked), so that is written first with
#: ``SET ... GET``, which also answers the old state. A success does not clear counted
#: failures: if the old state still counts some, or refuses the attempt, the script
#: writes the right state over it before returning; a script runs atomically, so no
#: one ever sees the optimistic value. ``SET ... GET`` on a key of another type fails
#: without writing.
ATTEMPT = Script(
    "attempt",
    r"""
local key, step, now, forget_ms = KEYS[1], ARGV[1], tonumber(ARGV[2]), ARGV[3]

local old, wrote
if step ~= "" and now >= 0 then
  -- no old state means "not blocked" (blocked until 0), so only a time before 0
  -- could refuse a first attempt; such times take the general path below
  old = redis.call("SET", key, step .. " 0 0", "PX", forget_ms, "GET")
  if not old then return "accepted" end
  wrote = true
else
  old = redis.call("GET", key)
end

local last, failures, blocked, blocked_text = "-", "0", 0, "0"
if old then
  local l, f, b = string.match(old, "^(%-?%d*) (%d+) (%S+)$")
  blocked = tonumber(b)
  if not blocked or l == "" then
    -- not ours: put it back (its old TTL is lost) and fail closed
    if wrote then redis.call("SET", key, old, "KEEPTTL") end
    return redis.error_reply("ERR stepup: unreadable attempt state")
  end
  last, failures, blocked_text = l, f, b
end

local free, base, cap, most = string.match(ARGV[4], "^(%S+) (%S+) (%S+) (%S+)$")
cap = tonumber(cap)
local count = tonumber(failures)

local function keep_ms(n, b)
  -- keep_until: forget_after from now, and never while a failure is still counted
  local ms = tonumber(forget_ms)
  if n > 0 then
    local counted_ms = math.ceil((b + n * cap - now) * 1000)
    if counted_ms > ms then ms = counted_ms end
  end
  return string.format("%d", ms)
end

if now < blocked then
  if wrote then
    redis.call("SET", key, old, "PX", keep_ms(count, blocked))
  elseif old then
    redis.call("PEXPIRE", key, keep_ms(count, blocked))
  end
  return "throttled " .. failures .. " " .. blocked_text
end

local function later(a, b)
  -- a > b for canonical decimal integers (optional leading "-"): exact at any
  -- size, and byte-wise so that the server's locale plays no part
  local a_neg, b_neg = a:sub(1, 1) == "-", b:sub(1, 1) == "-"
  if a_neg ~= b_neg then return b_neg end
  if a == b then return false end
  local greater = #a > #b
  if #a == #b then
    for i = 1, #a do
      local x, y = a:byte(i), b:byte(i)
      if x ~= y then greater = x > y break end
    end
  end
  if a_neg then return not greater end
  return greater
end

if step ~= "" and (last == "-" or later(step, last)) then
  if count > 0 and blocked + count * cap > now then
    -- failures still counted: a success keeps them and their block reference
    local value = step .. " " .. failures .. " " .. blocked_text
    redis.call("SET", key, value, "PX", keep_ms(count, blocked))
  elseif not wrote then
    redis.call("SET", key, step .. " 0 0", "PX", forget_ms)
  end
  return "accepted"
end

-- forgiveness: one failure per full max_delay since the end of the last block
if count > 0 then
  if blocked + count * cap <= now then
    count = 0
  elseif now > blocked then
    count = count - math.floor((now - blocked) / cap)
    if count < 0 then count = 0 end
  end
end
free, base, most = tonumber(free), tonumber(base), tonumber(most)
count = count + 1
if count > most then count = most end
local excess, delay = count - free, 0
if excess > 62 then
  delay = cap
elseif excess > 0 then
  delay = math.min(base * 2 ^ (excess - 1), cap)
end
local retry_at, reference = "-", now
if delay > 0 then
  reference = now + delay
  retry_at = string.format("%.17g", reference)
  blocked_text = retry_at
else
  blocked_text = ARGV[2]  -- a free failure marks its time: forgiveness counts from it
end
local ttl = keep_ms(count, reference)
count = string.format("%d", count)
redis.call("SET", key, last .. " " .. count .. " " .. blocked_text, "PX", ttl)
if step == "" then return "rejected " .. count .. " " .. retry_at end
return "replayed " .. count .. " " .. retry_at
""",
)

#: The mirror of :func:`stepup.throttle.apply_refund`: take back one charge's failure,
#: keeping the TTL. KEYS[1]: the attempt state (see :data:`ATTEMPT`). ARGV: the
#: charge's failures ("-" for a charge that counted nothing), the blocked_until it
#: wrote, and the time it was made. A state left empty with no step goes.
REFUND = Script(
    "refund",
    r"""
if ARGV[1] == "-" then return 0 end
local old = redis.call("GET", KEYS[1])
if not old then return 0 end
local last, f, b = string.match(old, "^(%-?%d*) (%d+) (%S+)$")
if not last or last == "" or not tonumber(b) then
  return redis.error_reply("ERR stepup: unreadable attempt state")
end
local count = tonumber(f)
if count <= 0 then return 0 end
count = count - 1
local value
if count == 0 then
  if last == "-" then
    redis.call("DEL", KEYS[1])
    return 1
  end
  value = last .. " 0 0"
elseif f == ARGV[1] and tonumber(b) == tonumber(ARGV[2]) then
  -- still what the charge wrote: undo it, block included
  value = last .. " " .. string.format("%d", count) .. " " .. ARGV[3]
else
  -- counted since: only the count drops, their block stands
  value = last .. " " .. string.format("%d", count) .. " " .. b
end
redis.call("SET", KEYS[1], value, "KEEPTTL")
return 1
""",
)

#: Clear failures and block, keeping the last step and the TTL (clearing is not an
#: attempt). State with no step left is the empty state, so the key goes.
#: KEYS[1]: the attempt state (see :data:`ATTEMPT`).
CLEAR_THROTTLE = Script(
    "clear_throttle",
    r"""
local old = redis.call("GET", KEYS[1])
if not old then return 0 end
local last, rest = string.match(old, "^(%-?%d*) (.*)$")
if not last or last == "" then
  return redis.error_reply("ERR stepup: unreadable attempt state")
end
if rest == "0 0" then return 0 end
if last == "-" then
  redis.call("DEL", KEYS[1])
else
  redis.call("SET", KEYS[1], last .. " 0 0", "KEEPTTL")
end
return 1
""",
)

#: Replace a credential's hash with a version one above the stored one (a credential
#: stored before versions existed counts as 0); a new credential (no ``record`` field,
#: as a read sees it) starts at the fresh version given, never at one a deleted
#: credential had, so no compare-and-set read from that one matches it.
#: KEYS[1]: the credential hash. ARGV[1]: the fresh version (drawn in Python: a script
#: draws nothing random); then field, value, field, value, ... (no "v").
PUT_CREDENTIAL = Script(
    "put_credential",
    r"""
local version = ARGV[1]
if redis.call("HEXISTS", KEYS[1], "record") == 1 then
  local stored = tonumber(redis.call("HGET", KEYS[1], "v") or "0")
  if not stored then return redis.error_reply("ERR stepup: unreadable credential version") end
  version = string.format("%d", stored + 1)
end
redis.call("DEL", KEYS[1])
redis.call("HSET", KEYS[1], "v", version, unpack(ARGV, 2))
return 1
""",
)

#: Insert-if-absent of a credential: store the hash at the fresh version given only if
#: the user has no credential (no ``record`` field, as a read sees it). Returns 1 if it
#: stored it. KEYS[1]: the credential hash. ARGV[1]: the fresh version; then field,
#: value, field, value, ... (no "v").
ADD_CREDENTIAL = Script(
    "add_credential",
    r"""
if redis.call("HEXISTS", KEYS[1], "record") == 1 then return 0 end
redis.call("DEL", KEYS[1])
redis.call("HSET", KEYS[1], "v", ARGV[1], unpack(ARGV, 2))
return 1
""",
)

#: The compare-and-set of a credential: replace the hash only if the credential is
#: there and at the expected version, moving it one up. Returns 1 if it replaced it.
#: KEYS[1]: the credential hash. ARGV: the expected version, then field, value, ...
REPLACE_CREDENTIAL = Script(
    "replace_credential",
    r"""
if redis.call("HEXISTS", KEYS[1], "record") == 0 then return 0 end
local version = redis.call("HGET", KEYS[1], "v") or "0"
if version ~= ARGV[1] then return 0 end
redis.call("DEL", KEYS[1])
redis.call("HSET", KEYS[1], "v", string.format("%d", tonumber(version) + 1),
  unpack(ARGV, 2))
return 1
""",
)

#: Spend one recovery hash: remove its field and move the version one up; 1 once only.
#: KEYS[1]: the credential hash. ARGV[1]: the hash's field.
CONSUME_RECOVERY = Script(
    "consume_recovery",
    r"""
if redis.call("HDEL", KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call("HINCRBY", KEYS[1], "v", 1)
return 1
""",
)

#: Set a string unless it exists; answer the stored value either way (``SET ... NX GET``
#: needs Redis 7). KEYS[1]: the string. ARGV[1]: the value to add.
ADD_VALUE = Script(
    "add_value",
    r"""
local current = redis.call("GET", KEYS[1])
if current then return current end
redis.call("SET", KEYS[1], ARGV[1])
return ARGV[1]
""",
)

#: A compare-and-set of a whole string value (a tenant): set it to ARGV[2] if it still
#: is ARGV[1]. Returns {1} if it did; otherwise {0, the current value or nil}, so the
#: caller can merge again without another read.
#: KEYS[1]: the string. ARGV: the value read, the value to write.
SWAP_VALUE = Script(
    "swap_value",
    r"""
local current = redis.call("GET", KEYS[1])
if current == ARGV[1] then
  redis.call("SET", KEYS[1], ARGV[2])
  return {1}
end
return {0, current}
""",
)

#: Record one session's grant in the user's grants hash, drop grants that expired
#: by ``now`` (the new grant's ``authenticated_at``), and let the hash live exactly
#: until the latest remaining ``expires_at``. Field values are "<expires_at> <json>".
#: A grant that would be over before it starts (``expires_at`` not after ``now``, or
#: either not a finite number) is refused with nothing changed (returns 0): the store checks
#: that first (:func:`~.base.check_grant`), and a refused write never costs the session
#: the grant it has.
#: KEYS[1]: the grants hash. ARGV: session_id, value, expires_at, now.
_GRANT_ARGS = r"""
local key, session, value = KEYS[1], ARGV[1], ARGV[2]
local expires, now = tonumber(ARGV[3]), tonumber(ARGV[4])
local function finite(x) return x ~= nil and x > -math.huge and x < math.huge end
if not (finite(expires) and finite(now) and expires > now) then
  return 0
end
"""
_WRITE_GRANT = r"""
local latest = now
local fields = redis.call("HGETALL", key)
for i = 1, #fields, 2 do
  if fields[i] ~= session then
    local at = tonumber(string.match(fields[i + 1], "^%S+"))
    if at == nil or at <= now then
      redis.call("HDEL", key, fields[i])
    elseif at > latest then
      latest = at
    end
  end
end
redis.call("HSET", key, session, value)
if expires > latest then latest = expires end
if latest > now then
  redis.call("PEXPIRE", key, string.format("%d", math.ceil((latest - now) * 1000)))
end
return 1
"""
PUT_GRANT = Script("put_grant", _GRANT_ARGS + _WRITE_GRANT[1:])

#: :data:`PUT_GRANT`, only if the grant stored under ARGV[5] (the session it moves
#: from, which may be ARGV[1]) is still the one expected: its JSON (the value after
#: "<expires_at> ") is ARGV[6]; that field is removed first. Returns 1 if written,
#: 0 with nothing changed (revoked or replaced meanwhile, or a grant over before it
#: starts). KEYS[1]: the grants hash. ARGV: as PUT_GRANT's, then from_session and
#: the expected JSON.
REPLACE_GRANT = Script(
    "replace_grant",
    _GRANT_ARGS
    + r"""local stored = redis.call("HGET", key, ARGV[5])
if not stored or string.match(stored, "^%S+ (.*)$") ~= ARGV[6] then
  return 0
end
redis.call("HDEL", key, ARGV[5])
"""
    + _WRITE_GRANT[1:],
)

#: Count and delete a hash. KEYS[1]: the hash. Returns the number of fields.
REVOKE_ALL = Script(
    "revoke_all",
    r"""
local count = redis.call("HLEN", KEYS[1])
redis.call("DEL", KEYS[1])
return count
""",
)


#: Add a passkey to the user's passkeys hash unless its id is there already or the user
#: has ``max`` passkeys (three fields each: see :meth:`.RedisKeys.passkeys`).
#: KEYS[1]: the passkeys hash. ARGV: credential id, max, static JSON, name, counter
#: state. Returns 1 if added.
ADD_PASSKEY = Script(
    "add_passkey",
    r"""
local id = ARGV[1]
if redis.call("HEXISTS", KEYS[1], "k:" .. id) == 1 then return 0 end
if redis.call("HLEN", KEYS[1]) >= 3 * tonumber(ARGV[2]) then return 0 end
redis.call("HSET", KEYS[1], "k:" .. id, ARGV[3], "n:" .. id, ARGV[4], "c:" .. id, ARGV[5])
return 1
""",
)

#: The compare-and-set of a passkey's use: write the new counter state only if the
#: stored sign count is still the expected one (compared as canonical decimal text).
#: KEYS[1]: the passkeys hash. ARGV: credential id, expected count, new counter state.
#: Returns 1 if written.
RECORD_PASSKEY_USE = Script(
    "record_passkey_use",
    r"""
local field = "c:" .. ARGV[1]
local state = redis.call("HGET", KEYS[1], field)
if not state then return 0 end
if string.match(state, "^(%d+) ") ~= ARGV[2] then return 0 end
redis.call("HSET", KEYS[1], field, ARGV[3])
return 1
""",
)

#: Rename a passkey that is there. KEYS[1]: the passkeys hash. ARGV: credential id,
#: name. Returns 1 if renamed.
RENAME_PASSKEY = Script(
    "rename_passkey",
    r"""
if redis.call("HEXISTS", KEYS[1], "k:" .. ARGV[1]) == 0 then return 0 end
redis.call("HSET", KEYS[1], "n:" .. ARGV[1], ARGV[2])
return 1
""",
)

#: Make a credential id's claim permanent if it is still ours: its value becomes the
#: owner's user id, with no expiry. KEYS[1]: the passkey-id index entry. ARGV: the
#: value the claim was made with, the user id. Returns 1 if it was ours.
CONFIRM_CLAIM = Script(
    "confirm_claim",
    r"""
if redis.call("GET", KEYS[1]) ~= ARGV[1] then return 0 end
redis.call("SET", KEYS[1], ARGV[2])
return 1
""",
)

#: Delete a credential id's index entry if it holds ARGV[1] (ours to release).
#: KEYS[1]: the passkey-id index entry. Returns 1 if deleted.
RELEASE_CLAIM = Script(
    "release_claim",
    r"""
if redis.call("GET", KEYS[1]) ~= ARGV[1] then return 0 end
redis.call("DEL", KEYS[1])
return 1
""",
)
