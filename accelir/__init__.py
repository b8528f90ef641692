"""AccelIR: task-aware block-adaptive JPEG compression for accelerating neural image restoration.

Subpackages: ``codec`` (the block container), ``data`` (datasets of photographs), ``cli`` (the
``accelir`` command). Modules: ``tasks`` (degradations), ``metrics`` (PSNR, SSIM, BD, FLOPs).
"""

__version__ = "0.1.0"
