"""The stream consumer loop shared by every worker kind (Redis Streams, one consumer group).

Delivery is at least once; handlers are idempotent. The loop:

1. on start, re-reads this consumer's own pending entries (``XREADGROUP ... 0``), then
2. alternates ``XAUTOCLAIM`` of entries idle longer than the visibility timeout (dead or stuck
   workers, and retries whose back-off is over) with ``XREADGROUP ... >`` for new ones.

Each entry: its delivery count comes from ``XPENDING``; over ``max_tries`` it goes to the
dead-letter stream (``XADD`` with the error, ``MAXLEN ~``), is acked and the job fails. Otherwise
the job's lock is taken (another worker holding it means the job is running: leave the entry),
the handler runs under the job timeout, and only after it returned — the result durably stored
— is the entry acked and deleted (``XACK`` + ``XDEL`` in one transaction, so streams stay small).
A transient error schedules a retry by setting the entry's idle time to ``visibility − back-off``
(``XCLAIM ... IDLE``): it becomes claimable after the back-off, which therefore never exceeds
the reclaim window. A permanent error fails the job at once.

A background heartbeat keeps the worker registered (``accelir:workers:<kind>``) and extends the
current job's lease; if a job outlives its timeout without the timeout firing (stuck in native
code), the process exits rather than let another worker run the job concurrently.

``drain()`` (SIGTERM) unregisters the worker first (readiness), stops reading, lets the current
job finish within ``drain_grace_s`` or hands it back (immediately claimable), then returns.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from service import keys
from service.jobs import TERMINAL, JobState, error_fields
from worker import leases
from worker.context import Job, WorkerContext
from worker.errors import HandBack, JobTimeout, PermanentJobError
from worker.settings import WorkerSettings

log = logging.getLogger("accelir.worker")
_REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, ConnectionError, TimeoutError)


class Consumer:
    def __init__(self, settings: WorkerSettings, ctx: WorkerContext) -> None:
        self.ws = settings
        self.ctx = ctx
        self.redis = ctx.redis
        self.config = ctx.config
        self.draining = threading.Event()
        self._stop_heartbeat = threading.Event()
        self._lease: tuple[str, str, str, float] | None = None  # message id, job id, token, start
        self._held: set[str] = set()
        self._handback = False
        self._reclaim_cursor = "0-0"
        self._lock = threading.Lock()
        self.processed = 0

    # -- lifecycle -------------------------------------------------------------------------

    def run(self, *, burst: bool = False) -> int:
        """Consume until drained (or, in burst mode, until nothing is queued or pending).
        Returns the number of entries whose handler ran to completion."""
        self.ws.on_startup(self.ctx)
        heartbeat = threading.Thread(target=self._heartbeat_loop, name="heartbeat", daemon=True)
        try:
            self._with_redis(self.ensure_group)
            self._with_redis(self.register)
            heartbeat.start()
            self._with_redis(self._read_own_pending)
            self._loop(burst)
        finally:
            self._stop_heartbeat.set()
            if heartbeat.is_alive():
                heartbeat.join(timeout=5)
            with contextlib.suppress(*_REDIS_DOWN):
                self.unregister()
            self.ws.on_shutdown(self.ctx)
        return self.processed

    def drain(self) -> None:
        """Stop reading; the current job gets ``drain_grace_s`` to finish, then is handed back."""
        if self.draining.is_set():
            return
        self.draining.set()
        with contextlib.suppress(*_REDIS_DOWN):
            self.unregister()
        if self._lease is not None and threading.current_thread() is threading.main_thread():
            self._handback = True
            remaining = signal.getitimer(signal.ITIMER_REAL)[0]
            grace = max(self.config.drain_grace_s, 0.001)
            if remaining == 0 or grace < remaining:
                signal.setitimer(signal.ITIMER_REAL, grace)

    def ensure_group(self) -> None:
        try:
            self.redis.xgroup_create(self.ws.stream, self.ws.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def register(self) -> None:
        now = time.time()
        pipe = self.redis.pipeline(transaction=False)
        pipe.zadd(self.ws.health_key, {self.ctx.consumer: now + self.config.worker_heartbeat_ttl_s})
        pipe.zremrangebyscore(self.ws.health_key, "-inf", now - 3600)
        pipe.execute()

    def unregister(self) -> None:
        self.redis.zrem(self.ws.health_key, self.ctx.consumer)

    # -- reading ---------------------------------------------------------------------------

    def _loop(self, burst: bool) -> None:
        deadline = time.monotonic() + self.config.burst_timeout_s
        last_reclaim = 0.0
        outage = 0
        while not self.draining.is_set():
            try:
                claimed = 0
                if burst or time.monotonic() - last_reclaim >= self.config.reclaim_interval_s:
                    claimed = self._reclaim()
                    last_reclaim = time.monotonic()
                block = 100 if burst else self.config.block_ms
                entries = self._read(">", block)
                self._handle_all(entries)
                outage = 0
                if burst and not entries and not claimed:
                    if self._group_pending() == 0 and self.redis.xlen(self.ws.stream) == 0:
                        return
                    if time.monotonic() > deadline:
                        log.warning("burst mode gave up waiting for pending entries")
                        return
                    time.sleep(0.1)
            except _REDIS_DOWN as exc:
                outage += 1
                log.warning("Redis unavailable (%s); retrying", type(exc).__name__)
                time.sleep(min(5.0, 0.2 * 2 ** min(outage, 5)))
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                self.ensure_group()  # Redis lost its data (failover without persistence)

    def _read(self, start: str, block_ms: int | None) -> list[tuple[str, dict[str, str]]]:
        reply = self.redis.xreadgroup(
            self.ws.group,
            self.ctx.consumer,
            {self.ws.stream: start},
            count=self.ws.batch_size,
            block=block_ms,
        )
        if not reply:
            return []
        _, entries = reply[0]
        return list(entries)

    def _read_own_pending(self) -> None:
        start = "0"
        while not self.draining.is_set():
            entries = self._read(start, None)
            if not entries:
                return
            self._handle_all(entries)
            start = entries[-1][0]

    def _reclaim(self) -> int:
        reply = self.redis.xautoclaim(
            self.ws.stream,
            self.ws.group,
            self.ctx.consumer,
            min_idle_time=int(self.config.visibility_timeout_s * 1000),
            start_id=self._reclaim_cursor,
            count=self.ws.batch_size,
        )
        # XAUTOCLAIM scans a bounded slice of the pending list: walk it with the cursor so idle
        # entries behind busy ones are found too (the cursor wraps to 0-0 at the end).
        self._reclaim_cursor = reply[0] if reply else "0-0"
        entries = reply[1] if reply else []
        if entries:
            log.info("reclaimed %d idle entries", len(entries))
        self._handle_all(entries)
        return len(entries)

    def _group_pending(self) -> int:
        return int(self.redis.xpending(self.ws.stream, self.ws.group)["pending"])

    def _deliveries(self, message_id: str) -> int:
        rows = self.redis.xpending_range(
            self.ws.stream, self.ws.group, min=message_id, max=message_id, count=1
        )
        return int(rows[0]["times_delivered"]) if rows else 1

    # -- handling --------------------------------------------------------------------------

    def _handle_all(self, entries: list[tuple[str, Any]]) -> None:
        valid = [(mid, fields) for mid, fields in entries if mid]
        with self._lock:
            self._held.update(mid for mid, _ in valid)
        try:
            if self.ws.prefetch is not None and len(valid) > 1 and not self.draining.is_set():
                job_ids = [f["job_id"] for _, f in valid if f and f.get("job_id")]
                try:
                    self.ws.prefetch(self.ctx, job_ids)
                except _REDIS_DOWN:
                    raise
                except Exception:  # each job still runs on its own below and reports its error
                    log.exception("batch prefetch failed; handling the entries one by one")
            for message_id, fields in valid:
                if self.draining.is_set():
                    self._hand_back(message_id)
                    continue
                self._handle(message_id, fields or {})
        finally:
            self.ctx.prefetched.clear()
            with self._lock:
                self._held.difference_update(mid for mid, _ in valid)

    def _handle(self, message_id: str, fields: dict[str, str]) -> None:
        job_id = fields.get("job_id")
        record = self.ctx.load_job(job_id) if job_id else None
        if job_id is None or record is None:
            log.warning("entry %s: job %s is unknown or expired; dropping it", message_id, job_id)
            self._ack(message_id)
            return
        if record.state in TERMINAL:
            self._ack(message_id)  # a duplicate delivery of a finished job
            return
        deliveries = self._deliveries(message_id)
        if deliveries > self.ws.max_tries:
            self._dead_letter(
                message_id,
                job_id,
                deliveries,
                record.error_type or "Unknown",
                record.error_detail or "",
            )
            return
        token = leases.acquire(
            self.redis, job_id, self.config.visibility_timeout_s, self.ws.stream_name
        )
        if token is None:
            log.info("job %s is running on another worker; leaving entry %s", job_id, message_id)
            return
        enqueued_at = float(fields.get("enqueued_at", time.time()))
        job = Job(message_id, job_id, enqueued_at, deliveries, record)
        self._run(job, token)

    def _run(self, job: Job, token: str) -> None:
        kind, metrics = self.ws.kind, self.ctx.metrics
        started = time.monotonic()
        self._lease = (job.message_id, job.job_id, token, started)
        self._handback = False
        metrics.in_progress.labels(kind).inc()
        self.redis.hincrby(keys.job(job.job_id), "attempts", 1)
        metrics.stage_duration.labels("queue_wait").observe(max(0.0, time.time() - job.enqueued_at))
        try:
            with self._deadline(self.ws.job_timeout_s):
                self.ws.handler(self.ctx, job)
        except HandBack:
            log.info("job %s handed back while draining", job.job_id)
            self._hand_back(job.message_id, job.deliveries)
        except PermanentJobError as exc:
            metrics.job_errors.labels(kind, exc.error_type).inc()
            self.ctx.transition(
                job.job_id, JobState.FAILED, error_fields(exc.error_type, exc.detail)
            )
            self._ack(job.message_id)
            metrics.jobs_processed.labels(kind, "failed").inc()
        except _REDIS_DOWN:
            raise
        except Exception as exc:
            error_type = type(exc).__name__
            metrics.job_errors.labels(kind, error_type).inc()
            log.warning(
                "job %s failed (delivery %d): %s: %s", job.job_id, job.deliveries, error_type, exc
            )
            self.redis.hset(
                keys.job(job.job_id), mapping=error_fields(error_type, str(exc) or error_type)
            )
            if job.deliveries >= self.ws.max_tries:
                self._dead_letter(job.message_id, job.job_id, job.deliveries, error_type, str(exc))
            else:
                self._retry_later(job.message_id, job.deliveries)
                metrics.jobs_processed.labels(kind, "retried").inc()
        else:
            self._ack(job.message_id)
            self.processed += 1
            metrics.jobs_processed.labels(kind, "done").inc()
        finally:
            self._lease = None
            metrics.in_progress.labels(kind).dec()
            metrics.busy_seconds.labels(kind).inc(time.monotonic() - started)
            with contextlib.suppress(*_REDIS_DOWN):
                leases.release(self.redis, job.job_id, token, self.ws.stream_name)

    @contextlib.contextmanager
    def _deadline(self, seconds: float) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield  # timeouts need SIGALRM, i.e. the main thread; the heartbeat still guards
            return

        def on_alarm(signum: int, frame: Any) -> None:
            if self._handback:
                raise HandBack()
            raise JobTimeout(f"the job ran past {seconds:g} s")

        previous = signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            yield
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)

    # -- outcomes --------------------------------------------------------------------------

    def _ack(self, message_id: str) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.xack(self.ws.stream, self.ws.group, message_id)
        pipe.xdel(self.ws.stream, message_id)
        pipe.execute()

    def _retry_later(self, message_id: str, deliveries: int) -> None:
        backoff = self.config.backoff(deliveries)
        idle_ms = max(0, int((self.config.visibility_timeout_s - backoff) * 1000))
        self.redis.xclaim(
            self.ws.stream,
            self.ws.group,
            self.ctx.consumer,
            0,
            [message_id],
            idle=idle_ms,
            justid=True,
        )

    def _hand_back(self, message_id: str, deliveries: int | None = None) -> None:
        """Make the entry claimable now, without counting this delivery."""
        kwargs: dict[str, Any] = {
            "idle": int(self.config.visibility_timeout_s * 1000) + 1,
            "justid": True,
        }
        if deliveries:
            kwargs["retrycount"] = max(0, deliveries - 1)
        self.redis.xclaim(
            self.ws.stream, self.ws.group, self.ctx.consumer, 0, [message_id], **kwargs
        )

    def _dead_letter(
        self, message_id: str, job_id: str, deliveries: int, error_type: str, detail: str
    ) -> None:
        log.error("job %s dead-lettered after %d deliveries: %s", job_id, deliveries, error_type)
        self.ctx.transition(
            job_id,
            JobState.FAILED,
            error_fields(error_type, f"gave up after {deliveries} deliveries: {detail}"),
        )
        pipe = self.redis.pipeline(transaction=True)
        pipe.xadd(
            self.ws.dead_letter_stream,
            {
                "job_id": job_id,
                "stream": self.ws.stream,
                "message_id": message_id,
                "deliveries": str(deliveries),
                "error_type": error_type,
                "error": detail[:2000],
                "failed_at": repr(time.time()),
            },
            maxlen=self.config.dead_letter_maxlen,
            approximate=True,
        )
        pipe.xack(self.ws.stream, self.ws.group, message_id)
        pipe.xdel(self.ws.stream, message_id)
        pipe.execute()
        self.ctx.metrics.jobs_processed.labels(self.ws.kind, "dead_lettered").inc()

    # -- heartbeat -------------------------------------------------------------------------

    def _heartbeat_loop(self) -> None:
        interval = self.config.heartbeat_interval_s
        while not self._stop_heartbeat.wait(interval):
            try:
                self._beat()
            except _REDIS_DOWN as exc:
                log.warning("heartbeat: Redis unavailable (%s)", type(exc).__name__)
            except Exception:
                log.exception("heartbeat failed")

    def _beat(self) -> None:
        if not self.draining.is_set():
            self.register()
        lease = self._lease
        if lease is not None:
            message_id, job_id, token, started = lease
            overdue = time.monotonic() - started - self.ws.job_timeout_s
            if overdue > max(self.config.heartbeat_interval_s, self.config.drain_grace_s):
                log.critical(
                    "job %s is stuck past its timeout; exiting so it can be reclaimed", job_id
                )
                os._exit(70)
            if not leases.extend(
                self.redis,
                job_id,
                token,
                self.config.visibility_timeout_s,
                self.ws.stream_name,
                self.ctx.consumer,
                message_id,
            ):
                log.error("lost the lease of job %s", job_id)
        with self._lock:
            waiting = [m for m in self._held if lease is None or m != lease[0]]
        if waiting:
            self.redis.xclaim(
                self.ws.stream, self.ws.group, self.ctx.consumer, 0, waiting, justid=True
            )

    def _with_redis(self, fn: Any) -> Any:
        """Run ``fn`` until Redis answers (start-up may race a restarting Redis)."""
        for attempt in range(60):
            try:
                return fn()
            except _REDIS_DOWN as exc:
                if self.draining.is_set():
                    raise
                log.warning("Redis unavailable at start (%s)", type(exc).__name__)
                time.sleep(min(5.0, 0.2 * 2 ** min(attempt, 5)))
        return fn()
