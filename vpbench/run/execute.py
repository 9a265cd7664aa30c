"""What one run does, as a pure function: :func:`execute_run` (config, run folder, device) -> :class:`RunResult`.

data -> predictor from the registry -> profile -> train (selecting on val) -> evaluate on test.
It writes only inside its run folder (checkpoints, the log, samples) and never touches the store:
planning (:mod:`vpbench.run.plan`) decided that it runs and recording (:mod:`vpbench.run.record`)
stores what it returns, so the in-process, Ray and torchrun executors differ only in where this
function runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from vpbench.config.schema import RunConfig
from vpbench.data import load_splits
from vpbench.errors import VpbenchError
from vpbench.interface import registry
from vpbench.measure.metrics import LPIPSModel
from vpbench.measure.profiling import profile_run
from vpbench.run.distributed import SINGLE, Group
from vpbench.run.evaluate import evaluate
from vpbench.run.fast import FastPaths, accelerate
from vpbench.run.tensorboard_log import TensorBoardLog
from vpbench.run.train import seed_everything, train


@dataclass
class RunResult:
    """What a run produced. ``profile``: :func:`vpbench.measure.profiling.profile_run` (None in
    processes other than torchrun's first); ``metrics`` and ``training``: None for a profile-only run."""

    profile: dict[str, Any] | None
    metrics: dict[str, Any] | None = None
    training: dict[str, Any] | None = None

    def stored_metrics(self) -> dict[str, Any] | None:
        """The record's ``metrics`` field: the test metrics with the training summary under ``training``."""
        return None if self.metrics is None else {**self.metrics, "training": self.training}


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda when available, else cpu; ``cpu``, ``cuda`` or ``cuda:N`` where that device exists."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise VpbenchError(f"--device {name!r}: expected auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise VpbenchError(f"--device {name!r}: no CUDA device is available here (use cpu or auto)")
        if device.index is not None and device.index >= count:
            raise VpbenchError(f"--device {name!r}: only {count} CUDA device(s) here (cuda:0 .. cuda:{count - 1})")
    elif device.type != "cpu":
        raise VpbenchError(f"--device {name!r}: expected auto, cpu, cuda or cuda:N")
    return device


def needs_lpips(cfg: RunConfig) -> bool:
    """Whether a run uses the LPIPS network: its test metrics, or its validations (``train.val_metric``)."""
    return cfg.task == "train" and (cfg.eval.lpips or cfg.train.val_metric == "lpips")


def execute_run(cfg: RunConfig, run_dir: Path, device: torch.device, profile: dict | None = None,
                lpips_model: LPIPSModel | None = None, progress: bool = True, fast: FastPaths = FastPaths(),
                group: Group = SINGLE, log: str = "none") -> RunResult:
    """Run ``cfg`` end to end in ``run_dir``.

    ``profile``: the profile a run of the same model config and geometry measured before
    (:func:`~vpbench.measure.profiling.profile_key`), reused as it is; None measures it here.
    ``lpips_model``: the LPIPS network of :func:`needs_lpips` (None where the run needs none).
    ``fast``: the model-level fast paths to train and evaluate with (fuse, channels_last, compile;
    :func:`vpbench.run.fast.accelerate`); they change no parameter and no run id. ``group``: the
    processes training this run together; process 0 profiles and prepares the data first. ``log``:
    ``tensorboard`` also writes the training curves under ``run_dir/tb`` (:mod:`vpbench.run.tensorboard_log`).
    """
    seed_everything(cfg.seed, cfg.deterministic)
    if group.main and profile is None:
        profile = profile_run(cfg, device)
    if cfg.task == "profile":
        return RunResult(profile)
    if not group.main:
        group.barrier()  # process 0 prepares the data set if it is missing; the others then read it
    splits = load_splits(cfg.data, progress=progress and group.main)
    if group.main:
        group.barrier()
    seed_everything(cfg.seed, cfg.deterministic)
    model = accelerate(registry.build(cfg.model, cfg.data.geometry()).to(device), fast.for_training())
    board = TensorBoardLog(run_dir) if log == "tensorboard" and group.main else None
    try:
        result = train(cfg, model, splits, run_dir, device, progress=progress, group=group, board=board,
                       lpips_model=lpips_model)
    finally:
        if board is not None:
            board.close()
    metrics = evaluate(cfg, model, splits["test"], run_dir, device, lpips_model if cfg.eval.lpips else None,
                       progress=progress, group=group)
    training = {
        "steps": result.steps, "selected_step": result.best_step, "best_val_loss": result.best_val_loss,
        "final_loss": result.final_loss, "resumed_from": result.resumed_from, "note": result.note,
        "selected_on": "val", "val_metric": cfg.train.val_metric, "converged_at": result.converged_at, "max_steps": cfg.train.steps,
        "lr_drops": result.lr_drops, "val_curve": result.val_curve, "train_seconds": result.train_seconds,
    }
    return RunResult(profile, metrics, training)
