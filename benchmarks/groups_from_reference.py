"""How well a block's utility group can be read from its reference error curve, against QP-NET.

On cached profiles (`accelir profile --split train|val`): the utility groups are fitted on the
training blocks as `accelir train qpnet` does; each block's *reference utility*
(`reference_error.reference_utility`: the same scalar as the groups', computed from the bicubic
reference curves the encoder already has) is binned by thresholds fitted on the training blocks
(equal-count quantiles, as the groups are); a QP-NET (the paper's CNN on the degraded pixels) is
trained on the same blocks. Both are scored on the held-out blocks: top-1 and adjacent (±1).

    python -m benchmarks.groups_from_reference --model edsr --task sr4 --width 32 --max-side 2048
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from accelir import groups as G
from accelir import qpnet as Q
from accelir import tasks
from accelir.cli.profile import load_split
from accelir.codec.layout import Layout
from accelir.codec.transform import block_dct
from accelir.data import cap_size, find_images, load_image
from accelir.profiles import QUALITY_SET, Profiles
from accelir.reference_error import reference_sse, reference_utility
from benchmarks.allocation_on_profiles import profile_parser


def reference_curves(
    profiles: Profiles, data: Path, split: str, task: str, max_side: int
) -> np.ndarray:
    """(N, Q) reference curves of every profiled block, image by image in profile order."""
    paths = {p.stem: p for p in find_images(data, split)}
    scale = tasks.scale_of(task)
    parts = []
    for i, name in enumerate(profiles.names):
        low = tasks.degrade(cap_size(load_image(paths[name]), max_side), task)
        curves = reference_sse(low, block_dct(low, Layout(32)), scale, QUALITY_SET)
        if len(curves) != np.count_nonzero(profiles.image == i):
            raise ValueError(f"{name}: the photograph does not match its profile (--max-side?)")
        parts.append(curves)
    return np.concatenate(parts)


def main(argv: list[str] | None = None) -> None:
    parser = profile_parser(__doc__)
    parser.add_argument("--epochs", type=int, default=60)
    args = parser.parse_args(argv)
    train = load_split(args.profiles, args.model, args.task, args.width, "train")
    val = load_split(args.profiles, args.model, args.task, args.width, "val")
    fitted = G.fit_groups(train, G.DEFAULT_GROUPS)
    y_train, y_val = G.labels(train, fitted), G.labels(val, fitted)
    u_train = reference_utility(
        reference_curves(train, args.data, "train", args.task, args.max_side), train.area
    )
    u_val = reference_utility(
        reference_curves(val, args.data, "val", args.task, args.max_side), val.area
    )
    cuts = np.quantile(u_train, np.arange(1, G.DEFAULT_GROUPS) / G.DEFAULT_GROUPS)
    from_reference = np.searchsorted(cuts, u_val, side="right")
    torch.manual_seed(0)
    net, _ = Q.train_classifier(
        train.pixels, y_train, val.pixels, y_val, G.DEFAULT_GROUPS, epochs=args.epochs
    )
    print(
        f"{args.model}-{args.width} {args.task}: {len(y_train)} training / {len(y_val)} held-out blocks"
    )
    corr = np.corrcoef(u_train, G.utility(train.mse))[0, 1]
    print(f"correlation of the reference and the restored utility (training blocks): {corr:.4f}")
    print("| group from | top-1 | adjacent |\n|---|---|---|")
    for label, predicted in (
        ("QP-NET (degraded pixels)", Q.predict_groups(net, val.pixels)),
        ("reference utility, training quantiles", from_reference),
    ):
        top1, adjacent = Q.accuracy(predicted, y_val)
        print(f"| {label} | {100 * top1:.1f} % | {100 * adjacent:.1f} % |")


if __name__ == "__main__":
    main()
