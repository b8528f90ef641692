"""The gateway's side of Redis: creating jobs atomically, reading them, idempotency records,
rate limits and the backlog bound (async client).

A job is created by one Lua script that checks the Idempotency-Key record, checks the backlog,
writes the job hash and its TTL, appends the stream entry and records the Idempotency-Key — all or
nothing, so a crash or a race never leaves a job without its message or a key without its job.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

from redis.exceptions import ResponseError

from service import keys
from service.jobs import JobRecord

CREATE_LUA = """
if KEYS[3] ~= '' then
  local existing = redis.call('GET', KEYS[3])
  if existing then return {'exists', existing} end
end
if redis.call('XLEN', KEYS[2]) >= tonumber(ARGV[3]) then return {'backlog', ''} end
local n = tonumber(ARGV[6])
local args = {}
for i = 7, 6 + 2 * n do args[#args + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(args))
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[1]))
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'job_id', ARGV[4], 'enqueued_at', ARGV[5])
if KEYS[3] ~= '' then
  redis.call('SET', KEYS[3], ARGV[7 + 2 * n] .. ' ' .. ARGV[4], 'EX', tonumber(ARGV[1]))
end
return {'created', ARGV[4]}
"""

RATE_LUA = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], tonumber(ARGV[1])) end
return n
"""


@dataclass(frozen=True)
class Created:
    outcome: Literal["created", "exists", "backlog"]
    job_id: str = ""
    fingerprint: str = ""


async def load_scripts(redis: Any) -> None:
    """Load the Lua scripts so that the first EVALSHA of each finds them."""
    for source in (CREATE_LUA, RATE_LUA):
        await redis.script_load(source)


async def ensure_groups(redis: Any) -> None:
    """Create each stream's consumer group (and the stream) if missing."""
    for name, stream in keys.STREAMS.items():
        try:
            await redis.xgroup_create(stream, keys.CONSUMER_GROUPS[name], id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise


async def create_job(
    redis: Any,
    record: JobRecord,
    stream: str,
    *,
    ttl_s: int,
    maxlen: int,
    max_backlog: int,
    idempotency: tuple[str, str] | None = None,
) -> Created:
    """Create the job and enqueue it, unless the Idempotency-Key exists or the backlog is full.

    ``idempotency`` is (Redis key of the record, request fingerprint).
    """
    fields = record.to_hash()
    argv: list[Any] = [ttl_s, maxlen, max_backlog, record.id, repr(time.time()), len(fields)]
    for k, v in fields.items():
        argv += [k, v]
    idem_key = ""
    if idempotency is not None:
        idem_key, fingerprint = idempotency
        argv.append(fingerprint)
    script = redis.register_script(CREATE_LUA)  # EVALSHA, loading the script when missing
    outcome, value = await script(keys=[keys.job(record.id), stream, idem_key], args=argv)
    if outcome == "exists":
        fingerprint, _, job_id = value.partition(" ")
        return Created("exists", job_id, fingerprint)
    return Created(outcome, value)


async def idempotency_record(redis: Any, key: str) -> tuple[str, str] | None:
    """(fingerprint, job id) stored for an Idempotency-Key, if any."""
    value = await redis.get(key)
    if not value:
        return None
    fingerprint, _, job_id = value.partition(" ")
    return fingerprint, job_id


async def get_job(redis: Any, job_id: str) -> JobRecord | None:
    data = await redis.hgetall(keys.job(job_id))
    if not data or "state" not in data:
        return None
    return JobRecord.from_hash(data)


async def backlog(redis: Any, stream: str) -> int:
    return int(await redis.xlen(stream))


async def hit_rate_limit(redis: Any, client_id: str, limit: int, window_s: int) -> int:
    """0 when allowed; otherwise the seconds until the window resets (Retry-After)."""
    now = time.time()
    window = int(now // window_s)
    script = redis.register_script(RATE_LUA)
    count = await script(keys=[keys.rate_limit(client_id, window)], args=[window_s + 1])
    if int(count) <= limit:
        return 0
    return max(1, int((window + 1) * window_s - now + 0.999))


async def workers_alive(redis: Any, now: float) -> dict[str, int]:
    pipe = redis.pipeline(transaction=False)
    for kind in keys.WORKER_STREAM:
        pipe.zcount(keys.workers(kind), now, "+inf")
    counts = await pipe.execute()
    return dict(zip(keys.WORKER_STREAM, (int(c) for c in counts), strict=True))
