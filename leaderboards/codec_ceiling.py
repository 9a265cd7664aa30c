"""How well can a model's shared codec reproduce a frame at all? The codec alone, trained as an autoencoder.

Every recurrent model decodes its prediction through the codec of its config; a frame the codec
cannot carry is lost however good the memory is. This trains the encoder and decoder of ``--model``
at ``--scale`` on the train split's frames (encode -> decode, MSE, Adam) and prints the PSNR of
reconstructing the test split's first predicted frames, beside copy-last's PSNR at that frame: a
codec ceiling below copy-last means no model on this codec can beat copy-last at t = 1.

    OMP_NUM_THREADS=1 .venv/bin/python leaderboards/codec_ceiling.py --dataset vtest [--set model.hidden=48]
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from tqdm import tqdm

from vpbench.interface import registry
from vpbench.config.resolution import RunSpec, parse_overrides, resolve
from vpbench.data import load_splits, to_float


def psnr_per_frame(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``[N, C, H, W]`` pairs in [0, 1] -> ``[N]`` PSNR in dB (the metric convention: per frame, then averaged)."""
    mse = ((prediction.clamp(0, 1) - target) ** 2).flatten(1).mean(1)
    return -10 * torch.log10(mse)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="convlstm", help="a model config under configs/models (its codec is used)")
    parser.add_argument("--dataset", default="vtest", help="a config under configs/datasets")
    parser.add_argument("--scale", default="small")
    parser.add_argument("--steps", type=int, default=1000, help="Adam steps of --batch frames")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set model.hidden=48 (the codec's width; repeatable)")
    args = parser.parse_args()

    torch.manual_seed(0)
    cfg = resolve(RunSpec(args.model, args.dataset), args.scale, parse_overrides(args.overrides) or None)
    codec = registry.build(cfg.model, cfg.data.geometry()).codec
    splits = load_splits(cfg.data, progress=False)
    train = to_float(torch.stack([splits["train"][i] for i in range(len(splits["train"]))]))
    frames = train.flatten(0, 1)  # [N·T, C, H, W]
    optimizer = torch.optim.Adam(codec.parameters(), lr=cfg.train.lr)
    for _ in tqdm(range(args.steps), desc=f"autoencode with the {args.model} codec"):
        batch = frames[torch.randint(len(frames), (args.batch,))]
        loss = F.mse_loss(codec.decode(codec.encode(batch)), batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    test = to_float(torch.stack([splits["test"][i] for i in range(len(splits["test"]))]))
    context = cfg.data.context
    with torch.no_grad():
        ceiling = psnr_per_frame(codec.decode(codec.encode(test[:, context])), test[:, context]).mean().item()
    copy_last = psnr_per_frame(test[:, context - 1], test[:, context]).mean().item()
    width = f" at {cfg.model['hidden']} channels" if "hidden" in cfg.model else ""
    print(f"{args.dataset} ({args.scale}), the {args.model} codec{width} after {args.steps} steps: reconstruction of the "
          f"first predicted frame {ceiling:.2f} dB; copy-last at that frame {copy_last:.2f} dB "
          f"({len(test)} test clips)")


if __name__ == "__main__":
    main()
