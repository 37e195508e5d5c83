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

__all__ = ["ATTEMPT", "PUT_GRANT", "REPLACE_HASH", "REVOKE_ALL", "Script"]


@dataclass(frozen=True, slots=True)
class Script:
    """A Lua source and its SHA1, for ``EVALSHA`` with an ``EVAL`` fallback."""

    name: str
    source: str = field(repr=False)
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        sha = hashlib.sha1(self.source.encode(), usedforsecurity=False).hexdigest()
        object.__setattr__(self, "sha", sha)


#: The mirror of :func:`stepup.throttle.apply_attempt` (``mode == "attempt"``) and
#: :func:`stepup.throttle.apply_charge` (``mode == "charge"``); the delay is
#: :meth:`stepup.throttle.ThrottlePolicy.delay_after`, with the policy's numbers as ARGV.
#: KEYS[1]: the attempt hash. ARGV: mode, now, step ("" for none), and the policy as
#: "free_failures base_delay max_delay forget_after_ms" (one argument: fewer to send).
#: Returns "accepted", or "<outcome> <failures> <retry_at or ->" (one string to read).
ATTEMPT = Script(
    "attempt",
    r"""
local key, mode, now, step = KEYS[1], ARGV[1], tonumber(ARGV[2]), ARGV[3]
local free, base, cap, forget_ms = string.match(ARGV[4], "^(%S+) (%S+) (%S+) (%S+)$")
free, base, cap = tonumber(free), tonumber(base), tonumber(cap)

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

local function delay_after(failures)
  local excess = failures - free
  if excess <= 0 then return 0 end
  if excess > 62 then return cap end
  return math.min(base * 2 ^ (excess - 1), cap)
end

local state = redis.call("HMGET", key, "f", "b", "s")
local failures = tonumber(state[1] or "0")
local blocked = tonumber(state[2] or "0")
local last = state[3]

if now < blocked then
  redis.call("PEXPIRE", key, forget_ms)
  return "throttled " .. string.format("%d", failures) .. " " .. string.format("%.17g", blocked)
end
if mode == "attempt" and step ~= "" and (not last or later(step, last)) then
  redis.call("HSET", key, "s", step, "f", "0", "b", "0")
  redis.call("PEXPIRE", key, forget_ms)
  return "accepted"
end
failures = failures + 1
local delay = delay_after(failures)
local retry_at = "-"
blocked = 0
if delay > 0 then
  blocked = now + delay
  retry_at = string.format("%.17g", blocked)
end
redis.call("HSET", key, "f", string.format("%d", failures), "b", string.format("%.17g", blocked))
redis.call("PEXPIRE", key, forget_ms)
local outcome = "replayed"
if mode == "charge" or step == "" then outcome = "rejected" end
return outcome .. " " .. string.format("%d", failures) .. " " .. retry_at
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
