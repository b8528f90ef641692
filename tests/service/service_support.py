"""Helpers of the service tests (the fixtures are in conftest.py): constants, settings
builders, upload and polling helpers, subprocess environments."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from service.settings import Settings
from worker.settings import WorkerConfig

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "test-key-0123456789"
OTHER_KEY = "second-key-abcdef"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
SIGNING = {
    "signing_keys": "11" * 32 + "," + "22" * 32,
    "signing_salts": "33" * 16 + "," + "44" * 16,
}
MODEL = {"task": "sr4", "model": "edsr", "width": "32"}


def make_settings(redis_url: str, blob_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "redis_url": redis_url,
        "api_keys": f"{API_KEY},{OTHER_KEY}",
        "blob_dir": blob_dir,
        "blob_fsync": False,
        "ready_requires_workers": False,
        "rate_limit_requests": 10_000,
        "max_upload_bytes": 2 * 1024 * 1024,
        "max_pixels": 4_000_000,
        "max_side": 8192,
        **SIGNING,
    }
    values.update(overrides)
    return Settings(**values)


def make_worker_config(redis_url: str, blob_dir: Path, **overrides: Any) -> WorkerConfig:
    values: dict[str, Any] = {
        "redis_url": redis_url,
        "blob_dir": blob_dir,
        "blob_fsync": False,
        "worker_metrics_port": 0,
        "visibility_timeout_s": 3.0,
        "heartbeat_interval_s": 0.5,
        "retry_backoff_s": 0.05,
        "retry_backoff_max_s": 0.2,
        "reclaim_interval_s": 0.2,
        "block_ms": 100,
        "burst_timeout_s": 60.0,
        "job_timeout_s": 60.0,
        "max_tries": 3,
    }
    values.update(overrides)
    return WorkerConfig(**values)


def encode_image(image: np.ndarray, fmt: str = "PNG", **kwargs: Any) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, fmt, **kwargs)
    return buf.getvalue()


def upload(
    client: Any,
    data: bytes,
    *,
    headers: dict[str, str] | None = None,
    filename: str = "photo.png",
    content_type: str = "image/png",
    **params: Any,
) -> Any:
    fields = {**MODEL, "jpeg_quality": "75", **{k: str(v) for k, v in params.items()}}
    fields = {k: v for k, v in fields.items() if v != "None"}
    return client.post(
        "/v1/images",
        files={"file": (filename, data, content_type)},
        data=fields,
        headers={**AUTH, **(headers or {})},
    )


def job_status(client: Any, job_id: str) -> dict[str, Any]:
    response = client.get(f"/v1/jobs/{job_id}", headers=AUTH)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


def subprocess_env(redis_url: str, blob_dir: Path, weights: Path, **extra: Any) -> dict[str, str]:
    """Environment for a worker or gateway subprocess (no inherited multiprocess metrics dir)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ACCELIR_", "PROMETHEUS_"))}
    env.update(
        {
            "ACCELIR_REDIS_URL": redis_url,
            "ACCELIR_BLOB_DIR": str(blob_dir),
            "ACCELIR_BLOB_FSYNC": "false",
            "ACCELIR_WEIGHTS_DIR": str(weights),
            "ACCELIR_WORKER_METRICS_PORT": "0",
            "ACCELIR_API_KEYS": f"{API_KEY},{OTHER_KEY}",
            "ACCELIR_SIGNING_KEYS": SIGNING["signing_keys"],
            "ACCELIR_SIGNING_SALTS": SIGNING["signing_salts"],
            "PYTHONPATH": str(ROOT),
            "OMP_NUM_THREADS": "1",
        }
    )
    env.update({k: str(v) for k, v in extra.items()})
    return env


def start_worker(
    kind: str, env: dict[str, str], *, burst: bool = False, log: Path | None = None, nice: int = 0
) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "worker", kind, *(["--burst"] if burst else [])]
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115
    return subprocess.Popen(
        args,
        env=env,
        cwd=ROOT,
        stdout=out,
        stderr=subprocess.STDOUT,
        preexec_fn=(lambda: os.nice(nice)) if nice else None,
    )


def png_with_size(width: int, height: int) -> bytes:
    """A tiny, valid-looking PNG whose header claims ``width`` × ``height`` (a decompression bomb)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return (
            struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024, 9)  # far less than the header promises
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def jpeg_with_size(jpeg: bytes, width: int, height: int) -> bytes:
    """``jpeg`` with its SOF header patched to claim ``width`` × ``height``."""
    import struct

    i = 2
    while i < len(jpeg):
        marker = jpeg[i + 1]
        length = struct.unpack(">H", jpeg[i + 2 : i + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            return jpeg[: i + 5] + struct.pack(">HH", height, width) + jpeg[i + 9 :]
        i += 2 + length
    raise ValueError("no SOF marker")


def live_gateway_env(redis_url: str, blob_dir: Path, weights: Path, **extra: Any) -> dict[str, str]:
    return subprocess_env(
        redis_url, blob_dir, weights, ACCELIR_READY_REQUIRES_WORKERS="false", **extra
    )


class LiveGateway:
    """A real uvicorn server (subprocess) on a free loopback port."""

    def __init__(self, env: dict[str, str], workers: int = 1) -> None:
        from service.redis_server import free_port

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [
                sys.executable, "-m", "uvicorn", "--factory", "service.app:create_app",
                "--host", "127.0.0.1", "--port", str(self.port), "--workers", str(workers),
                "--no-access-log", "--log-level", "warning", "--timeout-graceful-shutdown", "10",
            ],
            env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def wait_ready(self, timeout: float = 60.0) -> LiveGateway:
        import httpx

        def up() -> bool:
            assert self.process.poll() is None, "the gateway exited"
            try:
                return httpx.get(self.url + "/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(up, timeout, 0.2)
        return self

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
