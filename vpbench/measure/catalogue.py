"""The metrics by name: direction and description, without torch (the report reads them)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    name: str
    higher_is_better: bool
    description: str


METRICS = {
    "psnr": Metric("psnr", True, "PSNR (dB) per frame on [0, 1], predictions clipped"),
    "ssim": Metric("ssim", True, "SSIM, Gaussian σ 1.5, data range 1, channels averaged"),
    "lpips": Metric("lpips", False, "LPIPS AlexNet v0.1, RGB in [-1, 1]"),
}

# OpenSTL's conventions (Tan et al., NeurIPS 2023 D&B), by name, beside vpbench's own: the numbers its tables
# print, so a row can be placed against them. Computed on the same clipped predictions as every metric here.
OPENSTL_METRICS = {
    "mse_sum": Metric("mse_sum", False, "OpenSTL's MSE: squared error summed over a frame's C·H·W pixels on [0, 1], "
                                        "averaged over frames and clips"),
    "mae_sum": Metric("mae_sum", False, "OpenSTL's MAE: absolute error summed over a frame's C·H·W pixels on [0, 1], "
                                        "averaged over frames and clips"),
    "psnr_array": Metric("psnr_array", True, "PSNR (dB) of the whole test array: 10·log10(1 / MSE) with the MSE taken "
                                             "over every predicted pixel of every clip at once"),
}
