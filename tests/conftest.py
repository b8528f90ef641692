"""Shared fixtures: a real photograph shipped with the package, and small crops of it."""

from __future__ import annotations

from importlib import resources

import numpy as np
import pytest
from PIL import Image


@pytest.fixture(scope="session")
def photo() -> np.ndarray:
    """The bundled 960×600 photograph (RGB uint8)."""
    with resources.as_file(resources.files("accelir") / "assets" / "path-960x600.jpg") as path:
        return np.asarray(Image.open(path).convert("RGB"))


@pytest.fixture(scope="session")
def small_photo(photo: np.ndarray) -> np.ndarray:
    """A 100×140 crop with texture and an odd-free size (not a multiple of 32)."""
    return np.ascontiguousarray(photo[200:300, 400:540])
