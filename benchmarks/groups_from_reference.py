"""How well a block's utility group can be read from its reference error curve, against QP-NET.

On cached profiles (`accelir profile --split train|val`): the utility groups are fitted on the
training blocks as `accelir train qpnet` does; each block's *reference utility*
(`reference_error.reference_utility`: the same scalar as the groups', computed from the bicubic
reference curves the encoder already has) is binned by thresholds fitted on the training blocks
(equal-count quantiles, as the groups are); a QP-NET (the paper's CNN on the degraded pixels) is
trained on the same blocks, and so is a QP-NET given the reference utility as a side input (what
`accelir train qpnet` ships for super-resolution): its side map alone (a 1-D calibration, where
its training starts) and the whole network. All are scored on the held-out blocks: top-1 and
adjacent (±1).

    python -m benchmarks.groups_from_reference --model edsr --task sr4 --width 32 --max-side 2048
"""

from __future__ import annotations

import numpy as np

from accelir import groups as G
from accelir import qpnet as Q
from accelir.cli.profile import load_split, reference_curves
from accelir.reference_error import qpnet_side_inputs, reference_utility
from benchmarks.allocation_on_profiles import profile_parser


def main(argv: list[str] | None = None) -> None:
    parser = profile_parser(__doc__)
    parser.add_argument("--epochs", type=int, default=60)
    args = parser.parse_args(argv)
    train = load_split(args.profiles, args.model, args.task, args.width, "train")
    val = load_split(args.profiles, args.model, args.task, args.width, "val")
    fitted = G.fit_groups(train, G.DEFAULT_GROUPS)
    y_train, y_val = G.labels(train, fitted), G.labels(val, fitted)
    curves_train = reference_curves(train, args.data, "train", args.task, args.max_side)
    curves_val = reference_curves(val, args.data, "val", args.task, args.max_side)
    u_train = reference_utility(curves_train, train.area)
    u_val = reference_utility(curves_val, val.area)
    cuts = np.quantile(u_train, np.arange(1, G.DEFAULT_GROUPS) / G.DEFAULT_GROUPS)
    from_reference = np.searchsorted(cuts, u_val, side="right")
    k = G.DEFAULT_GROUPS
    plain, _ = Q.train_classifier(train.pixels, y_train, val.pixels, y_val, k, epochs=args.epochs)
    side, val_side = (
        qpnet_side_inputs(curves_train, train.area),
        qpnet_side_inputs(curves_val, val.area),
    )
    hybrid, history = Q.train_classifier(train.pixels, y_train, val.pixels, y_val, k, epochs=args.epochs,
                                         side=side, val_side=val_side)  # fmt: skip
    print(
        f"{args.model}-{args.width} {args.task}: {len(y_train)} training / {len(y_val)} held-out blocks"
    )
    corr = np.corrcoef(u_train, G.utility(train.mse))[0, 1]
    print(f"correlation of the reference and the restored utility (training blocks): {corr:.4f}")
    print("| group from | top-1 | adjacent |\n|---|---|---|")
    rows = (
        ("QP-NET (degraded pixels)", Q.accuracy(Q.predict_groups(plain, val.pixels), y_val)),
        ("reference utility, training quantiles", Q.accuracy(from_reference, y_val)),
        ("QP-NET's side map alone (epoch 0)", (history.top1[0], history.adjacent[0])),
        ("QP-NET + reference utility (shipped for SR)",
         Q.accuracy(Q.predict_groups(hybrid, val.pixels, val_side), y_val)),
    )  # fmt: skip
    for label, (top1, adjacent) in rows:
        print(f"| {label} | {100 * top1:.1f} % | {100 * adjacent:.1f} % |")


if __name__ == "__main__":
    main()
