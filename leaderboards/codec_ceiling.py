"""How well can a model's shared codec reproduce a frame at all? The codec alone, trained to convergence,
beside the linear bound of its width.

Every shared-codec model decodes its prediction through the codec of its config; a frame the codec
cannot carry is lost however good the memory is. This trains the encoder and decoder of ``--model``
at ``--scale`` on the train split's frames (encode -> decode, MSE, Adam) under the training protocol's
plateau rule (a validation on the val clips' first predicted frames every ``--val-every`` steps;
``--patience`` validations without a ``--min-delta`` relative gain make a plateau; the first
``--lr-drops`` plateaus cut the learning rate by ``--drop-factor``, the next stops), and prints the PSNR
of reconstructing the test clips' first predicted frames beside:

* the linear bound: the best rank-F affine reconstruction of each p x p patch (PCA of the train
  frames' patches, F = the codec's features per latent cell). At ``stride_ratio`` 1 the decoder is one
  1x1 convolution of F features, so every frame it can emit lies in such a subspace: a model on this
  codec cannot predict the frame better than this, whatever its memory;
* copy-last at that frame: a bound below copy-last means no model on this codec can beat it at t = 1.

    OMP_NUM_THREADS=1 .venv/bin/python leaderboards/codec_ceiling.py --dataset opencv_videos [--set model.hidden=16]
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from tqdm import tqdm

from vpbench.config.resolution import RunSpec, parse_overrides, resolve
from vpbench.data import load_splits, to_float
from vpbench.interface import registry
from vpbench.interface.codecs import patch_reshape, patch_unreshape


def psnr_per_frame(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``[N, C, H, W]`` pairs in [0, 1] -> ``[N]`` PSNR in dB (the metric convention: per frame, then averaged)."""
    mse = ((prediction.clamp(0, 1) - target) ** 2).flatten(1).mean(1)
    return -10 * torch.log10(mse.clamp_min(1e-10))


def linear_bound(train: torch.Tensor, test: torch.Tensor, patch: int, rank: int) -> torch.Tensor:
    """Per-frame PSNR of ``test`` ``[N, C, H, W]`` projected, patch by patch, on the rank-``rank`` affine
    subspace that fits the patches of ``train`` ``[M, C, H, W]`` best (PCA)."""
    def patches(frames: torch.Tensor) -> torch.Tensor:  # [N, C, H, W] -> [N·h·w, p²C]
        x = patch_reshape(frames, patch).double()
        return x.permute(0, 2, 3, 1).reshape(-1, x.shape[1])

    fitted = patches(train)
    mean = fitted.mean(0)
    _, _, basis = torch.linalg.svd(fitted - mean, full_matrices=False)  # rows: principal directions
    basis = basis[:rank]
    grid = patch_reshape(test, patch).shape
    projected = (patches(test) - mean) @ basis.T @ basis + mean
    frames = patch_unreshape(projected.reshape(grid[0], grid[2], grid[3], grid[1]).permute(0, 3, 1, 2), patch)
    return psnr_per_frame(frames.float(), test)


def train_codec(codec: torch.nn.Module, frames: torch.Tensor, val: torch.Tensor, lr: float,
                args: argparse.Namespace) -> tuple[int, str]:
    """Autoencode ``frames`` ``[N, C, H, W]`` under the plateau rule, keeping the best val state; returns
    ``(steps, why it stopped)``."""
    optimizer = torch.optim.Adam(codec.parameters(), lr=lr)
    best, best_state, since, drops = float("inf"), None, 0, 0
    bar = tqdm(range(1, args.max_steps + 1), desc="autoencode", leave=False)
    for step in bar:
        batch = frames[torch.randint(len(frames), (args.batch,))]
        loss = F.mse_loss(codec.decode(codec.encode(batch)), batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % args.val_every:
            continue
        with torch.no_grad():
            val_loss = F.mse_loss(codec.decode(codec.encode(val)).clamp(0, 1), val).item()
        bar.set_postfix(val=f"{val_loss:.2e}", lr=optimizer.param_groups[0]["lr"])
        if val_loss < best * (1 - args.min_delta):
            best, since = val_loss, 0
            best_state = {k: v.clone() for k, v in codec.state_dict().items()}
            continue
        since += 1
        if since < args.patience:
            continue
        if drops == args.lr_drops:
            codec.load_state_dict(best_state)
            return step, f"plateau after {drops} learning-rate drops"
        drops, since = drops + 1, 0
        for group in optimizer.param_groups:
            group["lr"] *= args.drop_factor
    codec.load_state_dict(best_state)
    return args.max_steps, "the step budget (not converged)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="convlstm", help="a model config under configs/models (its codec is used)")
    parser.add_argument("--dataset", default="opencv_videos", help="a config under configs/datasets")
    parser.add_argument("--scale", default="small")
    parser.add_argument("--max-steps", type=int, default=40000, help="the budget of Adam steps of --batch frames")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--val-every", type=int, default=200)
    parser.add_argument("--patience", type=int, default=3)
    parser.add_argument("--min-delta", type=float, default=0.01)
    parser.add_argument("--lr-drops", type=int, default=2)
    parser.add_argument("--drop-factor", type=float, default=0.3)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set model.hidden=16 (the codec's width; repeatable)")
    args = parser.parse_args()

    torch.manual_seed(0)
    cfg = resolve(RunSpec(args.model, args.dataset), args.scale, parse_overrides(args.overrides) or None)
    codec = registry.build(cfg.model, cfg.data.geometry()).codec
    splits = load_splits(cfg.data, progress=False)
    clips = {name: to_float(torch.stack([split[i] for i in range(len(split))])) for name, split in splits.items()}
    context = cfg.data.context
    frames = clips["train"].flatten(0, 1)  # [N·T, C, H, W]
    steps, stopped = train_codec(codec, frames, clips["val"][:, context], cfg.train.lr, args)
    test = clips["test"][:, context]  # the first predicted frame of every test clip
    with torch.no_grad():
        ceiling = psnr_per_frame(codec.decode(codec.encode(test)), test).mean().item()
    patch = cfg.data.patch
    rank = codec.latent_channels
    bound = linear_bound(frames[torch.randperm(len(frames))[:20000]], test, patch, rank).mean().item()
    copy_last = psnr_per_frame(clips["test"][:, context - 1], test).mean().item()
    print(f"| {args.dataset} ({args.scale}) | {args.model} codec, {rank} features per {patch}x{patch} patch "
          f"({patch * patch * cfg.data.channels} values) | {ceiling:.2f} ({steps} steps; {stopped}) | {bound:.2f} | "
          f"{copy_last:.2f} | {len(test)} |")


if __name__ == "__main__":
    main()
