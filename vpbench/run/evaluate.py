"""The test loop: per-frame metrics at every horizon step, and sample strips and GIFs.

The model predicts ``horizon`` frames from ``context`` autoregressively (no ground truth is fed
back). Every test clip's PSNR, SSIM and LPIPS are kept per step, so tables can show per-step means,
means over the horizon and paired comparisons between runs on the same clips. Several processes
(:mod:`vpbench.run.distributed`) each predict a contiguous range of the clips, and the per-clip values are
gathered in clip order before any mean is taken.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch.utils.data import Subset

from vpbench import progress as progress_report
from vpbench.data import ClipDataset, eval_loader, to_float
from vpbench.run.distributed import SINGLE, Group
from vpbench.errors import NonFiniteError
from vpbench.measure.metrics import LPIPSModel, frame_metrics, psnr_array
from vpbench.picture_labels import frame_label, label_font
from vpbench.interface.predictor import Predictor
from vpbench.config.schema import RunConfig

MIN_SAMPLE_SIDE = 128  # small frames are enlarged (nearest) in sample images


@torch.no_grad()
def evaluate(cfg: RunConfig, model: Predictor, test_set: ClipDataset, run_dir: Path, device: torch.device,
             lpips_model: LPIPSModel | None, progress: bool = True, group: Group = SINGLE) -> dict:
    """Metrics of ``model`` on the test split, in the store's ``metrics`` layout (see :mod:`vpbench.store`).

    ``group``: the processes sharing the clips; each returns the metrics of the whole split.
    """
    model.eval()
    context, horizon = cfg.data.context, cfg.data.horizon
    per_clip: dict[str, list[torch.Tensor]] = {}
    mine = group.shard(len(test_set))
    written = mine.start  # sample files are named by the clip's index in the split
    loader = eval_loader(Subset(test_set, mine) if group.distributed else test_set, cfg.eval.batch_size)
    batches = progress_report.bar(loader, show=progress and group.main, desc=f"test {cfg.model_name}", unit="batch",
                                  leave=False)
    first = 0 if cfg.eval.fvd == "context+prediction" else context  # the first frame of a clip that enters FVD
    real, predicted = [], []  # the first eval.fvd_clips clips as FVD sees them: [B, T - first, C, H, W] in [0, 1]
    for batch, clips in enumerate(batches):
        frames = to_float(clips).to(device)  # [B, T, C, H, W]
        prediction = model(frames[:, :context], horizon).float()  # [B, horizon, C, H, W]
        if not torch.isfinite(prediction).all():
            raise NonFiniteError(f"non-finite predictions in test batch {batch}")
        prediction = prediction.clamp(0, 1)
        if cfg.eval.fvd != "none" and sum(map(len, real)) < cfg.eval.fvd_clips:
            real.append(frames[:, first:].cpu())
            predicted.append(torch.cat([frames[:, first:context], prediction], dim=1).cpu())
        for name, values in frame_metrics(prediction.cpu(), frames[:, context:].cpu(), lpips_model).items():
            per_clip.setdefault(name, []).append(values)  # [B, horizon]
        for i in range(max(0, min(cfg.eval.samples - written, frames.shape[0]))):
            write_sample(frames[i].cpu(), prediction[i].cpu(), run_dir / "samples" / f"test{written:03d}")
            written += 1

    metrics: dict = {"steps": list(range(1, horizon + 1)), "test_clips": len(test_set)}
    blocks = test_set.blocks()
    if blocks is not None:
        metrics["clip_blocks"] = blocks  # which test clips are correlated (one video's segment)
    for name, chunks in per_clip.items():
        values = group.gather(torch.cat(chunks).double())  # [N, horizon], every process's clips in order
        metrics[name] = {
            "per_step": values.mean(0).tolist(),
            "mean": values.mean().item(),
            "per_clip": values.tolist(),
        }
    if cfg.eval.fvd != "none":
        metrics["fvd"] = _fvd(cfg, torch.cat(real)[:cfg.eval.fvd_clips], torch.cat(predicted)[:cfg.eval.fvd_clips],
                              device, group)
    channels, height, width = test_set[0].shape[1:]
    metrics["psnr_array"] = psnr_array(torch.tensor(metrics["mse_sum"]["per_clip"]), channels * height * width)
    if lpips_model is not None:
        key = "lpips_source" if lpips_model.available else "lpips_unavailable"
        metrics[key] = lpips_model.source
    else:
        metrics["lpips_unavailable"] = "disabled by eval.lpips = false"
    return metrics


def _fvd(cfg: RunConfig, real: torch.Tensor, predicted: torch.Tensor, device: torch.device, group: Group) -> dict:
    """``{"value", "protocol", "clips", "real_statistics_cached", "cpu_seconds"}``, or ``{"unavailable": why, ...}``.

    ``real`` and ``predicted``: the same test clips ``[N, T', C, H, W]`` in [0, 1], true and predicted.
    """
    import dataclasses
    import time

    from vpbench.data import fingerprint
    from vpbench.data.storage import data_root
    from vpbench.measure.fvd import Gaussian, Protocol, cache_path, frechet_distance, logits, real_statistics, shared_network

    protocol = Protocol(cfg.eval.fvd, len(real), cfg.eval.fvd_frames)
    record = {"protocol": dataclasses.asdict(protocol), "clips": len(real)}
    if group.distributed:  # each process holds its own shard of the clips
        return {**record, "unavailable": "not computed under torchrun (each process holds a shard of the clips)"}
    network, problem = shared_network(device)
    if network is None:
        return {**record, "unavailable": problem}
    started = time.process_time()
    path = cache_path(data_root(), fingerprint(cfg.data), protocol)
    reference, cached = real_statistics(network, real, protocol, path)
    value = frechet_distance(reference, Gaussian.fit(logits(network, predicted, protocol.length)))
    return {**record, "value": value, "real_statistics_cached": cached, "cpu_seconds": time.process_time() - started}


def _to_image(frame: torch.Tensor, scale: int) -> np.ndarray:
    """``[C, H, W]`` float in [0, 1] -> ``[H·s, W·s, 3]`` uint8."""
    array = (frame.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()  # [H, W, C]
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    return np.kron(array, np.ones((scale, scale, 1), dtype=np.uint8)) if scale > 1 else array


def write_sample(clip: torch.Tensor, prediction: torch.Tensor, stem: Path) -> None:
    """``stem.png``: top row context | truth, bottom row blank | prediction; ``stem.gif``: truth | prediction,
    each frame under a header with its index t (context t = 1..T_in, predictions from T_in + 1, as the
    tables number them) and the column names.

    ``clip`` is ``[T, C, H, W]`` (context then truth), ``prediction`` ``[horizon, C, H, W]``.
    """
    stem.parent.mkdir(parents=True, exist_ok=True)
    horizon = prediction.shape[0]
    context = clip.shape[0] - horizon
    height, width = clip.shape[-2:]
    scale = max(1, MIN_SAMPLE_SIDE // min(height, width))
    truth = [_to_image(f, scale) for f in clip]
    predicted = [_to_image(f, scale) for f in prediction]
    gap = np.full((truth[0].shape[0], 4, 3), 255, np.uint8)
    blank = np.full_like(truth[0], 255)

    def row(images: list[np.ndarray]) -> np.ndarray:
        return np.concatenate([part for image in images for part in (image, gap)][:-1], axis=1)

    top = row(truth)
    bottom = row([blank] * context + predicted)
    separator = np.full((4, top.shape[1], 3), 255, np.uint8)
    Image.fromarray(np.concatenate([top, separator, bottom], axis=0)).save(stem.with_suffix(".png"))

    images = [_gif_frame(truth[t], truth[t] if t < context else predicted[t - context], gap, t + 1, t >= context)
              for t in range(clip.shape[0])]
    images[0].save(stem.with_suffix(".gif"), save_all=True, append_images=images[1:], duration=250, loop=0)


GIF_HEADER = 28  # px above each GIF frame: the frame index, then what each column shows


def _gif_frame(truth: np.ndarray, right: np.ndarray, gap: np.ndarray, t: int, predicted: bool) -> Image.Image:
    """One GIF frame: ground truth | context or prediction ``[h, w, 3]`` each, under a labelled header.

    ``t`` is the frame index of the tables: 1 … T_in for context, T_in + 1 … for predictions
    (:func:`vpbench.picture_labels.frame_label`).
    """
    pair = np.concatenate([truth, gap, right], axis=1)
    frame = Image.new("RGB", (pair.shape[1], pair.shape[0] + GIF_HEADER), "white")
    frame.paste(Image.fromarray(pair), (0, GIF_HEADER))
    draw = ImageDraw.Draw(frame)
    font = label_font(11)
    draw.text((2, 1), frame_label(t) + (" predicted" if predicted else " context"), fill="black", font=font)
    width = truth.shape[1]
    draw.text((width // 2, GIF_HEADER - 2), "truth", fill="black", font=font, anchor="mb")
    draw.text((width + gap.shape[1] + width // 2, GIF_HEADER - 2), "prediction" if predicted else "input",
              fill="black", font=font, anchor="mb")
    return frame
