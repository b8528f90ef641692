"""``python -m service.run``: a local Redis with AOF, the gateway and one worker of each kind;
a development key printed and written to .accelir/dev-api-key; Ctrl-C stops everything."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest
from service_support import ROOT, encode_image, wait_for

from service.redis_server import free_port


@pytest.mark.slow
def test_run_starts_everything_and_stops_on_ctrl_c(tmp_path, weights_env, photo_small) -> None:
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ACCELIR_", "PROMETHEUS_")) and k != "REDIS_URL"
    }
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "ACCELIR_WEIGHTS_DIR": str(weights_env),
            "ACCELIR_WORKER_METRICS_PORT": "0",
        }
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "service.run", "--port", str(port), "--grace", "10"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        lines = [process.stdout.readline() for _ in range(5)]
        assert f"http://127.0.0.1:{port}" in lines[0]
        key = (tmp_path / ".accelir" / "dev-api-key").read_text().strip()
        assert key and key in "".join(lines)
        assert oct((tmp_path / ".accelir" / "dev-api-key").stat().st_mode & 0o777) == "0o600"
        redis_line = next(line for line in lines if line.startswith("redis"))
        redis_port = int(redis_line.rsplit(":", 1)[1].split("/")[0])
        base = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            try:
                return httpx.get(base + "/readyz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(ready, timeout=120, interval=0.5)  # both workers up: their models loaded
        response = httpx.post(
            base + "/v1/images",
            files={"file": ("p.png", encode_image(photo_small[:64, :64]), "image/png")},
            data={"width": "32", "jpeg_quality": "80"},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert response.status_code == 202, response.text
        job = base + response.headers["location"]
        wait_for(
            lambda: (
                httpx.get(job, headers={"Authorization": f"Bearer {key}"}).json()["state"] == "done"
            ),
            timeout=120,
            interval=0.5,
        )
        assert (tmp_path / ".accelir" / "redis" / "appendonly.aof").exists()
        process.send_signal(signal.SIGINT)
        assert process.wait(60) == 0
        assert "stopped" in process.stdout.read()
        time.sleep(0.2)
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", redis_port), 0.5).close()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
