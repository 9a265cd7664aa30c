"""What one training step costs at candidate `small` scales: the campaign's budget in numbers.

For each model and each candidate geometry (frame side, context -> horizon, hidden width), times the
training step of :func:`vpbench.run.train.train` (a teacher-forced rollout over the clip, MSE, backward,
Adam) on one torch thread, as a campaign worker runs it, on random clips of the small scale's batch.
Prints the median ms per step and its ratio to the first geometry (the current small scale).

Usage: ``OMP_NUM_THREADS=1 python benchmarks/small_scale_step.py [--models rpm,convlstm] [--steps 20]``
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from vpbench.config.resolution import RunSpec, resolve
from vpbench.interface import registry

CANDIDATES = (  # (label, overrides): the current small scale first
    ("32², 5→5, 16 ch (current)", {}),
    ("32², 4→4, 16 ch", {"data": {"context": 4, "horizon": 4}}),
    ("32², 3→3, 16 ch", {"data": {"context": 3, "horizon": 3}}),
    ("32², 5→5, 8 ch", {"model": {"hidden": 8}}),
    ("32², 5→5, batch 8", {"train": {"batch_size": 8}}),
    ("32², 4→4, 8 ch", {"data": {"context": 4, "horizon": 4}, "model": {"hidden": 8}}),
    ("32², 3→3, 8 ch", {"data": {"context": 3, "horizon": 3}, "model": {"hidden": 8}}),
)


def step_ms(model_name: str, overrides: dict, steps: int) -> float:
    cfg = resolve(RunSpec(model_name, "moving_digits"), "small", overrides)
    data = cfg.data
    torch.manual_seed(0)
    model = registry.build(cfg.model, data.geometry())
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.train.lr)
    clips = torch.rand(cfg.train.batch_size, data.context + data.horizon, data.channels, data.height, data.width)
    times = []
    for index in range(steps + 2):  # two untimed warm-up steps
        start = time.perf_counter()
        prediction = model.rollout(clips[:, :data.context], data.horizon, clips[:, data.context:], 0.0, 1.0)
        loss = F.mse_loss(prediction, clips[:, 1:])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if index >= 2:
            times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="convlstm,rpm,e3dlstm", help="comma-separated model configs")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per cell (default 20)")
    args = parser.parse_args()
    print(f"torch threads: {torch.get_num_threads()}; median ms per training step (ratio to the current small scale)")
    print("| model | " + " | ".join(label for label, _ in CANDIDATES) + " |")
    print("|---|" + "---:|" * len(CANDIDATES))
    for name in args.models.split(","):
        cells = [step_ms(name, overrides, args.steps) for _, overrides in CANDIDATES]
        print(f"| {name} | " + " | ".join(f"{ms:.0f} ({ms / cells[0]:.2f}x)" for ms in cells) + " |")


if __name__ == "__main__":
    main()
