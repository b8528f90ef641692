"""Datasets of photographs: build one from Debian wallpapers, and find/load images in the
layouts AccelIR reads (our manifest, DIV2K, DIV8K-style numbered folders, any image folder).
"""

from accelir.data.datasets import (
    DEFAULT_MAX_PIXELS,
    DatasetError,
    DatasetSummary,
    ImageTooLargeError,
    assign_splits,
    cap_size,
    describe,
    detect_layout,
    find_images,
    load_image,
    stable_unit,
)
from accelir.data.wallpapers import (
    DEFAULT_PACKAGES,
    FetchError,
    build_dataset,
    dhash,
    is_photograph,
    photo_score,
    select_photographs,
)

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_PACKAGES",
    "DatasetError",
    "DatasetSummary",
    "FetchError",
    "ImageTooLargeError",
    "assign_splits",
    "build_dataset",
    "cap_size",
    "describe",
    "detect_layout",
    "dhash",
    "find_images",
    "is_photograph",
    "load_image",
    "photo_score",
    "select_photographs",
    "stable_unit",
]
