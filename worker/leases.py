"""Job leases: a lock per job and stage (SET NX PX, with a random token) plus ownership of its stream entry.

The heartbeat extends both in one Lua script, and only while the lock still holds this worker's
token: the entry's idle time is reset with ``XCLAIM ... JUSTID`` (which does not count a
delivery), so ``XAUTOCLAIM`` never hands a live job to another worker. Every lock has a TTL (the
visibility timeout): a SIGKILLed worker's lock simply expires, so nothing deadlocks.
"""

from __future__ import annotations

import secrets
from typing import Any

from service import keys

EXTEND_LUA = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
redis.call('XCLAIM', KEYS[2], ARGV[3], ARGV[4], 0, ARGV[5], 'JUSTID')
return 1
"""

RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def acquire(redis: Any, job_id: str, ttl_s: float, stage: keys.StreamName) -> str | None:
    """A token when this worker now holds the lock of the job's stage, None when another does."""
    token = secrets.token_hex(16)
    if redis.set(keys.job_lock(job_id, stage), token, nx=True, px=int(ttl_s * 1000)):
        return token
    return None


def extend(
    redis: Any,
    job_id: str,
    token: str,
    ttl_s: float,
    stage: keys.StreamName,
    consumer: str,
    message_id: str,
) -> bool:
    """Extend the lock and reset the entry's idle time; False when the lock was lost."""
    result = redis.eval(
        EXTEND_LUA,
        2,
        keys.job_lock(job_id, stage),
        keys.STREAMS[stage],
        token,
        int(ttl_s * 1000),
        keys.CONSUMER_GROUPS[stage],
        consumer,
        message_id,
    )
    return bool(result)


def release(redis: Any, job_id: str, token: str, stage: keys.StreamName) -> None:
    redis.eval(RELEASE_LUA, 1, keys.job_lock(job_id, stage), token)
