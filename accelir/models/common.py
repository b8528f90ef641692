"""Small pieces several networks of the zoo share (BasicSR's ``arch_util`` idea)."""

from __future__ import annotations

from torch import nn

#: Mean RGB of DIV2K's training images, subtracted at the input of the SR networks (as in their
#: papers' code) and added back at the output.
DIV2K_RGB_MEAN = (0.4488, 0.4371, 0.4040)


def kaiming_init(module: nn.Module) -> None:
    """He (Kaiming) normal initialisation of every convolution, zero biases (DnCNN's scheme)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
