"""Jobs: their states, the order transitions must follow, the stored record, and the Lua script
that applies a transition atomically.

States move forward only (``queued → encoding → encoded → restoring → done``; ``failed`` from
anywhere that is not terminal). A restoration job skips the encoding states. Re-entering the
current state is allowed (a redelivered message), going back is not, and ``done``/``failed`` are
final. The record is a Redis hash of strings (``service.keys.job``) with a TTL; timings are
stored as ``timing:<stage>`` fields so that each stage can be written by the process that ran it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal


class JobState(StrEnum):
    QUEUED = "queued"
    ENCODING = "encoding"
    ENCODED = "encoded"
    RESTORING = "restoring"
    DONE = "done"
    FAILED = "failed"


RANK: dict[JobState, int] = {
    JobState.QUEUED: 0,
    JobState.ENCODING: 1,
    JobState.ENCODED: 2,
    JobState.RESTORING: 3,
    JobState.DONE: 4,
    JobState.FAILED: 4,
}
TERMINAL = frozenset({JobState.DONE, JobState.FAILED})

JobKind = Literal["encode", "restoration"]
TargetKind = Literal["bpp", "bytes", "jpeg_quality", "psnr"]
#: Stages each worker kind times (both wait in a queue first; the gateway times ``upload``).
ENCODER_STAGES = (
    "queue_wait",
    "degradation",
    "qpnet",
    "allocation",
    "entropy_coding",
    "verification",
)
DECODER_STAGES = ("queue_wait", "decode", "restoration")
TIMING_PREFIX = "timing:"

# KEYS[1] job hash; [2] stream to XADD to when the transition applies ("" for none).
# ARGV: new state, ttl seconds, now, maxlen, number of field/value pairs n, the n pairs, then the
# message's field/value pairs. Returns {applied (0/1), state after the call}.
TRANSITION_LUA = """
local cur = redis.call('HGET', KEYS[1], 'state')
if not cur then return {0, ''} end
local rank = {queued=0, encoding=1, encoded=2, restoring=3, done=4, failed=4}
local to = ARGV[1]
if cur == 'done' or cur == 'failed' or rank[to] == nil or rank[to] < rank[cur] then
  return {0, cur}
end
local n = tonumber(ARGV[5])
local args = {'state', to, 'updated_at', ARGV[3]}
for i = 6, 5 + 2 * n do args[#args + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(args))
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
if KEYS[2] ~= '' then
  local msg = {}
  for i = 6 + 2 * n, #ARGV do msg[#msg + 1] = ARGV[i] end
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', unpack(msg))
end
return {1, to}
"""


def transition_args(
    state: JobState,
    ttl_s: int,
    now: float,
    maxlen: int,
    fields: dict[str, str],
    message: dict[str, str] | None = None,
) -> list[str]:
    """ARGV for ``TRANSITION_LUA``."""
    args = [state.value, str(ttl_s), repr(now), str(maxlen), str(len(fields))]
    for key, value in fields.items():
        args += [key, value]
    for key, value in (message or {}).items():
        args += [key, value]
    return args


def _float(value: str | None) -> float | None:
    if value is None or value == "":
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _int(value: str | None) -> int | None:
    return None if value is None or value == "" else int(value)


@dataclass(frozen=True)
class JobRecord:
    """One job as stored in Redis (internal; the API's view is ``service.schemas.JobStatus``)."""

    id: str
    kind: JobKind
    image_id: str
    state: JobState
    task: str
    model: str
    width: int
    target_kind: TargetKind | None = None
    target_value: float | None = None
    allocator: str = "lagrangian"
    restore: bool = False
    degraded: bool = False
    verify: bool = False
    created_at: float = 0.0
    updated_at: float = 0.0
    attempts: int = 0
    upload_key: str | None = None
    upload_bytes: int | None = None
    image_width: int | None = None
    image_height: int | None = None
    container_key: str | None = None
    container_digest: str | None = None
    container_bytes: int | None = None
    bpp: float | None = None
    predicted_psnr: float | None = None
    measured_psnr: float | None = None
    flops: int | None = None
    output_key: str | None = None
    output_digest: str | None = None
    output_bytes: int | None = None
    error_type: str | None = None
    error_detail: str | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_hash(cls, data: dict[str, str]) -> JobRecord:
        timings = {
            k[len(TIMING_PREFIX) :]: float(v)
            for k, v in data.items()
            if k.startswith(TIMING_PREFIX)
        }
        return cls(
            id=data["id"],
            kind=data["kind"],  # type: ignore[arg-type]
            image_id=data["image_id"],
            state=JobState(data["state"]),
            task=data["task"],
            model=data["model"],
            width=int(data["width"]),
            target_kind=data.get("target_kind") or None,  # type: ignore[arg-type]
            target_value=_float(data.get("target_value")),
            allocator=data.get("allocator", "lagrangian"),
            restore=data.get("restore") == "1",
            degraded=data.get("degraded") == "1",
            verify=data.get("verify") == "1",
            created_at=float(data.get("created_at", 0)),
            updated_at=float(data.get("updated_at", 0)),
            attempts=int(data.get("attempts", 0)),
            upload_key=data.get("upload_key"),
            upload_bytes=_int(data.get("upload_bytes")),
            image_width=_int(data.get("image_width")),
            image_height=_int(data.get("image_height")),
            container_key=data.get("container_key"),
            container_digest=data.get("container_digest"),
            container_bytes=_int(data.get("container_bytes")),
            bpp=_float(data.get("bpp")),
            predicted_psnr=_float(data.get("predicted_psnr")),
            measured_psnr=_float(data.get("measured_psnr")),
            flops=_int(data.get("flops")),
            output_key=data.get("output_key"),
            output_digest=data.get("output_digest"),
            output_bytes=_int(data.get("output_bytes")),
            error_type=data.get("error_type"),
            error_detail=data.get("error_detail"),
            timings=timings,
        )

    def to_hash(self) -> dict[str, str]:
        """The fields written when the job is created (later ones are written by transitions)."""
        data = {
            "id": self.id,
            "kind": self.kind,
            "image_id": self.image_id,
            "state": self.state.value,
            "task": self.task,
            "model": self.model,
            "width": str(self.width),
            "allocator": self.allocator,
            "restore": "1" if self.restore else "0",
            "degraded": "1" if self.degraded else "0",
            "verify": "1" if self.verify else "0",
            "created_at": repr(self.created_at),
            "updated_at": repr(self.updated_at),
            "attempts": str(self.attempts),
        }
        optional = {
            "target_kind": self.target_kind,
            "target_value": None if self.target_value is None else repr(self.target_value),
            "upload_key": self.upload_key,
            "upload_bytes": self.upload_bytes,
            "image_width": self.image_width,
            "image_height": self.image_height,
            "container_key": self.container_key,
            "container_digest": self.container_digest,
            "container_bytes": self.container_bytes,
        }
        data.update({k: str(v) for k, v in optional.items() if v is not None})
        data.update({TIMING_PREFIX + k: repr(v) for k, v in self.timings.items()})
        return data


def timing_fields(timings: dict[str, float]) -> dict[str, str]:
    return {TIMING_PREFIX + k: repr(float(v)) for k, v in timings.items()}


def error_fields(error_type: str, detail: str) -> dict[str, str]:
    return {"error_type": error_type, "error_detail": detail[:2000]}


def dumps(data: object) -> str:
    return json.dumps(data, separators=(",", ":"), sort_keys=True)
