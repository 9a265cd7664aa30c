"""Metrics against reference implementations: scikit-image's SSIM, the PSNR formula, LPIPS known answers."""

import sysconfig
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data as skdata
from skimage.metrics import structural_similarity

from conftest import require_lpips_assets
from vpbench.measure.metrics import frame_metrics, load_lpips, lpips_distance, psnr, ssim

CALIBRATION = Path(sysconfig.get_paths()["purelib"]) / "ResultsCalibra"  # from `pip install --no-deps pyiqa==0.1.16`
# pyiqa's published "official lpips" (AlexNet) values for its calibration pairs (offline-assets.md §2)
KNOWN_LPIPS = {"I03": 0.7237, "I04": 0.2572, "I06": 0.05079, "I08": 0.05205, "I19": 0.4253}


def skimage_ssim(x: torch.Tensor, y: torch.Tensor) -> float:
    return structural_similarity(x.double().numpy(), y.double().numpy(), gaussian_weights=True, sigma=1.5,
                                 use_sample_covariance=False, data_range=1, channel_axis=0)


def _image(array: np.ndarray) -> torch.Tensor:
    tensor = torch.from_numpy(np.array(array)).float() / 255
    return tensor.permute(2, 0, 1) if tensor.dim() == 3 else tensor[None]


def test_ssim_matches_skimage_on_random_pairs():
    generator = torch.Generator().manual_seed(0)
    for channels, h, w in [(1, 16, 16), (3, 32, 48), (3, 64, 64)]:
        x = torch.rand(channels, h, w, generator=generator)
        y = (x + 0.2 * torch.randn(channels, h, w, generator=generator)).clamp(0, 1)
        assert abs(ssim(y[None], x[None]).item() - skimage_ssim(y, x)) < 1e-4


def test_ssim_matches_skimage_on_real_images():
    astronaut = _image(skdata.astronaut())[:, :256, :256]
    camera = _image(skdata.camera())[:, :256, :256]
    for reference in (astronaut, camera):
        noisy = (reference + 0.05 * torch.randn_like(reference, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
        shifted = torch.roll(reference, shifts=3, dims=2)
        for distorted in (noisy, shifted):
            assert abs(ssim(distorted[None], reference[None]).item() - skimage_ssim(distorted, reference)) < 1e-4


def test_ssim_of_identical_frames_is_one_and_small_frames_are_refused():
    x = torch.rand(2, 3, 20, 20)
    assert torch.allclose(ssim(x, x), torch.ones(2, dtype=torch.float64))
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 8))


def test_psnr_matches_the_formula_and_clips_predictions():
    target = torch.full((1, 3, 8, 8), 0.5, dtype=torch.float64)
    prediction = target + 0.1
    assert psnr(prediction, target).item() == pytest.approx(10 * np.log10(1 / 0.01), abs=1e-9)
    assert psnr(torch.full_like(target, 3.0), torch.ones_like(target)).item() == pytest.approx(100.0)  # clipped to 1


def _lpips_or_skip():
    model = load_lpips()
    if not model.available:
        if require_lpips_assets():
            pytest.fail(f"LPIPS weights required in CI but unavailable: {model.source}")
        pytest.skip(model.source)
    return model


def test_lpips_is_zero_for_identical_frames_and_grows_with_noise():
    model = _lpips_or_skip()
    x = _image(skdata.astronaut())[None, :, :128, :128]
    noise = torch.randn_like(x, generator=torch.Generator().manual_seed(0))
    distances = [lpips_distance(model, (x + s * noise).clamp(0, 1), x).item() for s in (0.0, 0.05, 0.2)]
    assert distances[0] == pytest.approx(0.0, abs=1e-6)
    assert distances[0] < distances[1] < distances[2]


def test_lpips_reproduces_the_known_answer_pairs():
    model = _lpips_or_skip()
    if not CALIBRATION.is_dir():
        if require_lpips_assets():
            pytest.fail(f"calibration images missing: {CALIBRATION} (pip install --no-deps pyiqa==0.1.16)")
        pytest.skip(f"calibration images missing: {CALIBRATION}")
    for name, expected in KNOWN_LPIPS.items():
        reference = _image(np.asarray(Image.open(CALIBRATION / "ref_dir" / f"{name}.bmp").convert("RGB")))
        distorted = _image(np.asarray(Image.open(CALIBRATION / "dist_dir" / f"{name}.bmp").convert("RGB")))
        assert lpips_distance(model, distorted[None], reference[None]).item() == pytest.approx(expected, abs=1e-3)


def test_frame_metrics_shapes_and_lpips_absent_without_model():
    prediction, target = torch.rand(2, 3, 3, 16, 16), torch.rand(2, 3, 3, 16, 16)
    metrics = frame_metrics(prediction, target, None)
    assert set(metrics) == {"psnr", "ssim", "mse_sum", "mae_sum"}  # the last two in OpenSTL's units
    assert metrics["psnr"].shape == (2, 3) and metrics["ssim"].shape == (2, 3)
