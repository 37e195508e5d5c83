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

__all__ = ["ATTEMPT", "CLEAR_THROTTLE", "PUT_GRANT", "REPLACE_HASH", "REVOKE_ALL", "Script"]


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
#: :meth:`stepup.throttle.ThrottlePolicy.delay_after`, with the policy's numbers as ARGV.
#:
#: KEYS[1]: the attempt state, one string "<last step or -> <failures> <blocked until>".
#: ARGV: step ("" for none), now, forget_after in ms, and the rest of the policy as
#: "free_failures base_delay max_delay" (read only when a failure is counted).
#: Returns "accepted", or "<outcome> <failures> <retry_at or ->" (one string to read).
#:
#: Each ``redis.call`` costs about as much server time as a bare command, so the hot
#: path (a code accepted) is one call: an accepted attempt leaves (step, 0, not
#: blocked) whatever the old state was, so that is written first with ``SET ... GET``,
#: which also answers the old state. If the old state refuses the attempt, the script
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

if now < blocked then
  if wrote then
    redis.call("SET", key, old, "PX", forget_ms)
  elseif old then
    redis.call("PEXPIRE", key, forget_ms)
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
  if not wrote then redis.call("SET", key, step .. " 0 0", "PX", forget_ms) end
  return "accepted"
end

local free, base, cap = string.match(ARGV[4], "^(%S+) (%S+) (%S+)$")
free, base, cap = tonumber(free), tonumber(base), tonumber(cap)
local count = tonumber(failures) + 1
local excess, delay = count - free, 0
if excess > 62 then
  delay = cap
elseif excess > 0 then
  delay = math.min(base * 2 ^ (excess - 1), cap)
end
local retry_at = "-"
if delay > 0 then
  retry_at = string.format("%.17g", now + delay)
  blocked_text = retry_at
else
  blocked_text = "0"
end
count = string.format("%d", count)
redis.call("SET", key, last .. " " .. count .. " " .. blocked_text, "PX", forget_ms)
if step == "" then return "rejected " .. count .. " " .. retry_at end
return "replayed " .. count .. " " .. retry_at
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

#: Replace a whole hash. KEYS[1]: the hash. ARGV: field, value, field, value, ...
REPLACE_HASH = Script(
    "replace_hash",
    r"""
redis.call("DEL", KEYS[1])
if #ARGV > 0 then redis.call("HSET", KEYS[1], unpack(ARGV)) end
return 1
""",
)

#: Record one session's grant in the user's grants hash, drop grants that expired
#: by ``now`` (the new grant's ``authenticated_at``), and let the hash live exactly
#: until the latest remaining ``expires_at``. Field values are "<expires_at> <json>".
#: KEYS[1]: the grants hash. ARGV: session_id, value, expires_at, now.
PUT_GRANT = Script(
    "put_grant",
    r"""
local key, session, value = KEYS[1], ARGV[1], ARGV[2]
local expires, now = tonumber(ARGV[3]), tonumber(ARGV[4])
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
if expires > now then
  redis.call("HSET", key, session, value)
  if expires > latest then latest = expires end
else
  redis.call("HDEL", key, session)
end
if latest > now then
  redis.call("PEXPIRE", key, string.format("%d", math.ceil((latest - now) * 1000)))
end
return 1
""",
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
