"""Can the small-scale ConvLSTM draw sharp digits at all? It memorises a few moving-digits clips.

The leaderboard's ConvLSTM predicts blurred digits. This separates the two explanations: a pipeline
that cannot output sharp frames (codec, clamping, decoding), or a model that hedges under the MSE
loss because it is unsure where the strokes go. The same config (``--scale small``) trains on
``--clips`` test clips only, autoregressively (no teacher forcing), and the first predicted frame's
PSNR on those clips and a sample strip of the first are written. Sharp strips here and blurred ones
in the leaderboard mean the blur is the generalisation regime, not a bug.

    OMP_NUM_THREADS=1 .venv/bin/python leaderboards/memorise_digits.py --out leaderboards/leaderboard/memorised_moving_digits.png
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from vpbench.interface import registry
from vpbench.config.resolution import RunSpec, resolve
from vpbench.data.moving_digits import generate_clip
from vpbench.report.samples import compose
from vpbench.run.evaluate import write_sample


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="convlstm", help="a model config under configs/models")
    parser.add_argument("--clips", type=int, default=4, help="test clips to memorise")
    parser.add_argument("--steps", type=int, default=5000, help="Adam steps on those clips")
    parser.add_argument("--out", type=Path, required=True, help="the sample strip (PNG) of the first clip")
    args = parser.parse_args()

    torch.manual_seed(0)
    cfg = resolve(RunSpec(args.model, "moving_digits"), "small")
    data = cfg.data
    model = registry.build(cfg.model, data.geometry())
    clips = torch.stack([torch.from_numpy(generate_clip(data, "test", i)) for i in range(args.clips)]).float() / 255
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.train.lr)
    for _ in tqdm(range(args.steps), desc=f"memorise {args.model}"):
        prediction = model.rollout(clips[:, :data.context], data.horizon, clips[:, data.context:], 0.0, 0.0)
        loss = F.mse_loss(prediction, clips[:, 1:])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        predicted = model(clips[:, :data.context], data.horizon).clamp(0, 1)  # [N, horizon, C, H, W]
    mse = ((predicted[:, 0] - clips[:, data.context]) ** 2).flatten(1).mean(1)  # [N], per clip
    psnr = (-10 * torch.log10(mse)).mean().item()
    print(f"{args.model} after {args.steps} steps on {args.clips} clips: first predicted frame "
          f"PSNR {psnr:.2f} dB on the memorised clips (final training MSE {loss.item():.5f})")
    with tempfile.TemporaryDirectory() as folder:  # the run's own strip, then labelled as the suites' strips are
        write_sample(clips[0], predicted[0], Path(folder) / "test000")
        label = f"{args.model}, memorised ({args.steps} steps on {args.clips} clips)"
        title = f"memorised test clip 0 (small scale); t={data.context + 1}: {psnr:.2f} dB over {args.clips} clips"
        compose([(label, Path(folder) / "test000.png")], data.context, data.horizon, title).save(args.out)
    print(args.out)


if __name__ == "__main__":
    main()
