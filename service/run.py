"""``python -m service.run``: the whole service on one machine, for development.

Starts a local Redis (AOF, ``appendfsync everysec``, data in ``.accelir/redis``) unless
``REDIS_URL`` is set, the gateway on http://127.0.0.1:8000 (uvicorn; ``--gateway-workers N``
for several processes with multiprocess metrics) and one encoder and one decoder worker. Without
``ACCELIR_API_KEYS`` it creates a development key, prints it and writes it to
``.accelir/dev-api-key``; without signing keys it creates a development pair. Ctrl-C (or
SIGTERM) drains and stops everything, Redis last.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from service.redis_server import RedisServer

STATE_DIR = Path(".accelir")


def prepare_multiprocess_dir(path: Path) -> Path:
    """An empty ``PROMETHEUS_MULTIPROC_DIR``: files of earlier runs would add stale counts."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def _dev_key(env: dict[str, str]) -> str | None:
    if env.get("ACCELIR_API_KEYS"):
        return None
    key = secrets.token_urlsafe(32)
    STATE_DIR.mkdir(exist_ok=True)
    path = STATE_DIR / "dev-api-key"
    path.write_text(key + "\n")
    path.chmod(0o600)
    env["ACCELIR_API_KEYS"] = key
    return key


def _dev_signing(env: dict[str, str]) -> None:
    if env.get("ACCELIR_SIGNING_KEYS"):
        return
    env["ACCELIR_SIGNING_KEYS"] = secrets.token_hex(32)
    env["ACCELIR_SIGNING_SALTS"] = secrets.token_hex(16)


def _stop(processes: list[subprocess.Popen[bytes]], grace_s: float) -> None:
    for p in processes:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for p in processes:
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m service.run", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--gateway-workers", type=int, default=1)
    parser.add_argument("--grace", type=float, default=30.0, help="seconds to drain on stop")
    args = parser.parse_args(argv)

    env = dict(os.environ)
    STATE_DIR.mkdir(exist_ok=True)
    redis_server = None
    if not (env.get("REDIS_URL") or env.get("ACCELIR_REDIS_URL")):
        redis_server = RedisServer(
            STATE_DIR / "redis", port=6379 if _port_free(6379) else None
        ).start()
        env["ACCELIR_REDIS_URL"] = redis_server.url
    key = _dev_key(env)
    _dev_signing(env)
    env.setdefault("ACCELIR_BLOB_DIR", str(STATE_DIR / "blobs"))
    base_url = f"http://{args.host}:{args.port}"
    env.setdefault("ACCELIR_PUBLIC_BASE_URL", base_url)

    metrics_dir = prepare_multiprocess_dir(STATE_DIR / "prometheus")
    gateway_env = {**env, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir.resolve())}
    worker_env = {k: v for k, v in env.items() if k != "PROMETHEUS_MULTIPROC_DIR"}

    py = sys.executable
    spawn: dict[str, Any] = {"start_new_session": True}
    workers = [
        subprocess.Popen([py, "-m", "worker", kind], env=worker_env, **spawn)
        for kind in ("encoder", "decoder")
    ]
    gateway = subprocess.Popen(
        [
            py, "-m", "uvicorn", "--factory", "service.app:create_app",
            "--host", args.host, "--port", str(args.port),
            "--workers", str(args.gateway_workers),
            "--timeout-keep-alive", "5", "--timeout-graceful-shutdown", str(int(args.grace)),
            "--no-access-log",
        ],
        env=gateway_env,
        **spawn,
    )  # fmt: skip
    processes = [gateway, *workers]
    print(f"AccelIR gateway   {base_url}  (OpenAPI: {base_url}/docs)")
    print(f"metrics           {base_url}/metrics, workers :9101 and :9102")
    print(f"redis             {env['ACCELIR_REDIS_URL']}")
    if key:
        print(f"development key   {key}  (also in {STATE_DIR / 'dev-api-key'})")
    print("Ctrl-C stops everything.", flush=True)

    stopping = False

    def on_signal(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    code = 0
    try:
        while not stopping:
            if any(p.poll() is not None for p in processes):
                print("a component exited; stopping", file=sys.stderr)
                code = 1
                break
            time.sleep(0.2)
    finally:
        _stop(processes, args.grace)
        if redis_server is not None:
            redis_server.stop()
    print("stopped")
    return code


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


if __name__ == "__main__":
    raise SystemExit(main())
