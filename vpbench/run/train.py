"""The training protocol, the same for every model, in one function: :func:`train`.

Per step s: read batch s of the train split (a pure function of s and the seed), feed the clip's
context and, under scheduled sampling, its future (:mod:`vpbench.run.sampling`); take the MSE over all
T - 1 next-frame predictions (``loss_on: clip``, the PredRNN/STRPM code's protocol) or over the
horizon only, plus the model's auxiliary loss and, for ``loss: mse+gan[+lp]``, the adversarial
terms after one discriminator update (:mod:`vpbench.run.adversarial`); clip the gradient norm; step
Adam and the schedule.
Every ``val_every`` steps the model predicts the val split autoregressively and the best validation
(its MSE, or its LPIPS under ``val_metric: lpips``, for runs whose objective is perceptual) chooses
``best.pt`` and drives the plateau rule (the test split is never seen here). Every ``checkpoint_every`` steps
``checkpoint-<step>.pt`` stores model, optimiser, schedule, AMP scaler, discriminator and its
optimiser, step, best-so-far and every RNG state, so a killed run resumes exactly where it was; the
previous checkpoint is kept until the new one is safely on disk (:mod:`vpbench.run.checkpoints`).
A non-finite loss, or non-finite gradients for ``nonfinite_grad_steps`` steps in a row, ends the run
with :class:`NonFiniteError` instead of training on to NaN metrics.

The plateau rule (``patience`` > 0): a validation *improves* when its loss is below ``(1 -
min_delta)`` x the loss of the last improving validation; ``patience`` validations in a row that do
not make a plateau. The first ``lr_drops`` plateaus multiply the learning rate by ``drop_factor``
and training goes on; the next one means the run has converged, and it stops (the step budget
``steps`` is a maximum). The result records whether and where it stopped and how many drops it
took; the checkpoint carries the rule's state, so a resumed run stops where an uninterrupted one
would.

Several processes (``torchrun``, :mod:`vpbench.run.distributed`) train one run with
DistributedDataParallel: each takes its slice of every global batch and of the val split, and only
process 0 writes the log and the checkpoints, which every process resumes from.
"""

from __future__ import annotations

import json
import math
import os
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import Subset
from tqdm import tqdm

from vpbench import progress as progress_report
from vpbench.run import checkpoints
from vpbench.run.adversarial import Adversary
from vpbench.data import ClipDataset, eval_loader, to_float, train_loader
from vpbench.interface.batch_slice import slicing_batches
from vpbench.run.distributed import SINGLE, Group, check_batch
from vpbench.errors import NonFiniteError, VpbenchError
from vpbench.interface.predictor import Predictor
from vpbench.measure.metrics import LPIPSModel, lpips_distance
from vpbench.run.sampling import forcing
from vpbench.config.schema import RunConfig, TrainConfig
from vpbench.run.tensorboard_log import TensorBoardLog

BEST = "best.pt"  # model weights at the best validation step


@dataclass
class TrainResult:
    steps: int  # optimiser steps taken in total (0 when the model has nothing to train)
    best_step: int | None  # the step whose weights best.pt holds
    best_val_loss: float | None  # the val metric (train.val_metric) of the horizon at best_step
    final_loss: float | None  # training loss of the last step
    resumed_from: int | None  # the step a previous, interrupted process had reached
    note: str = ""  # what happened besides plain training: skipped, resumed, fell back to an older checkpoint
    converged_at: int | None = None  # the step the plateau rule ended training at (None: the whole budget ran)
    lr_drops: list[int] | None = None  # the steps whose plateau cut the learning rate
    val_curve: list[tuple[int, float]] | None = None  # (step, val metric) of every validation, resumed ones included
    train_seconds: float | None = None  # training time summed over every process that trained it (resumes
    # included; an interrupted process counts up to its last checkpoint)


def seed_everything(seed: int, deterministic: bool) -> None:
    """Seed Python, NumPy and torch; really switch on PyTorch's deterministic mode if asked."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(deterministic)
    torch.backends.cudnn.deterministic = deterministic
    torch.backends.cudnn.benchmark = not deterministic


def _rng_state() -> dict:
    """Every RNG state as tensors and plain values, which ``torch.load(weights_only=True)`` accepts."""
    numpy_state = np.random.get_state(legacy=False)
    state = {
        "python": random.getstate(),
        "numpy": {"key": torch.from_numpy(numpy_state["state"]["key"].astype(np.int64)),
                  "pos": numpy_state["state"]["pos"], "has_gauss": numpy_state["has_gauss"],
                  "gauss": numpy_state["gauss"]},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    numpy_state = state["numpy"]
    np.random.set_state({"bit_generator": "MT19937", "has_gauss": numpy_state["has_gauss"],
                         "gauss": numpy_state["gauss"],
                         "state": {"key": numpy_state["key"].numpy().astype(np.uint32), "pos": numpy_state["pos"]}})
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def lr_factor(cfg: TrainConfig, step: int) -> float:
    """The learning-rate multiplier after ``step`` scheduler steps."""
    if cfg.schedule == "exponential":
        return cfg.gamma ** (max(0, step - cfg.decay_start) // cfg.decay_every)
    if cfg.schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * min(step, cfg.steps) / cfg.steps))
    return 1.0


def _autocast(cfg: TrainConfig, device: torch.device):
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg.amp)
    return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)


def _truncate_log(path: Path, step: int) -> None:
    """Drop log lines of steps after ``step`` (a resumed run writes them again) and lines cut short by a kill."""
    if not path.is_file():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if record["step"] <= step:
            kept.append(line + "\n")
    path.write_text("".join(kept))


class _Rollout(nn.Module):
    """``model.rollout`` as a module's forward, which DistributedDataParallel needs to synchronise gradients."""

    def __init__(self, model: Predictor):
        super().__init__()
        self.model = model

    def forward(self, *args):
        return self.model.rollout(*args)


@torch.no_grad()
def validate(model: Predictor, dataset: ClipDataset, cfg: RunConfig, device: torch.device,
             group: Group = SINGLE, lpips_model: LPIPSModel | None = None) -> float:
    """The val metric of the autoregressive horizon over the val split (no randomness is drawn): the mean
    MSE per pixel, or under ``train.val_metric: lpips`` the mean LPIPS per frame (``lpips_model``).

    Each of several processes predicts its shard of the split and the sums are added up.
    """
    model.eval()
    total, count = 0.0, 0
    context = cfg.data.context
    shard = Subset(dataset, group.shard(len(dataset))) if group.distributed else dataset
    for clips in eval_loader(shard, cfg.eval.batch_size):
        frames = to_float(clips).to(device)  # [B, T, C, H, W]
        with _autocast(cfg.train, device):
            prediction = model(frames[:, :context], cfg.data.horizon).float().clamp(0, 1)  # [B, horizon, C, H, W]
        target = frames[:, context:]
        if cfg.train.val_metric == "lpips":
            total += lpips_distance(lpips_model, prediction.flatten(0, 1), target.flatten(0, 1)).sum().item()
            count += target.shape[0] * target.shape[1]
        else:
            total += F.mse_loss(prediction, target, reduction="sum").item()
            count += target.numel()
    model.train()
    if group.distributed:
        total, count = group.sum(torch.tensor([total, count], dtype=torch.float64)).tolist()
    return total / count


@torch.no_grad()
def validation_strip(model: Predictor, dataset: ClipDataset, cfg: RunConfig, device: torch.device) -> torch.Tensor:
    """The first val clip and the model's autoregressive prediction of it as one image ``[C, 2H, T*W]``."""
    from vpbench.run.tensorboard_log import prediction_strip

    model.eval()
    clip = to_float(dataset[0][None]).to(device)  # [1, T, C, H, W]
    with _autocast(cfg.train, device):
        prediction = model(clip[:, :cfg.data.context], cfg.data.horizon)  # [1, horizon, C, H, W]
    model.train()
    return prediction_strip(clip[0].cpu(), prediction[0].float().cpu())


def train(cfg: RunConfig, model: Predictor, splits: dict[str, ClipDataset], run_dir: Path,
          device: torch.device, progress: bool = True, group: Group = SINGLE,
          board: TensorBoardLog | None = None, lpips_model: LPIPSModel | None = None) -> TrainResult:
    """Train ``model`` on ``splits["train"]``, selecting on ``splits["val"]``; resumes from ``run_dir``.

    ``group``: the processes training this run together (one by default). ``board``: where process 0
    also writes the curves and a prediction strip per validation for TensorBoard (None: nowhere).
    ``lpips_model``: the LPIPS network ``train.val_metric: lpips`` validates with.
    """
    tc = cfg.train
    parameters = [p for p in model.parameters() if p.requires_grad]
    if not parameters:
        return TrainResult(0, None, None, None, None, note="no trainable parameters: training skipped")
    if tc.val_metric == "lpips" and (lpips_model is None or not lpips_model.available):
        reason = lpips_model.source if lpips_model is not None else "no LPIPS network was given"
        raise VpbenchError(f"train.val_metric = lpips: LPIPS is unavailable ({reason}); install its weights "
                           "(README) or validate on the MSE with --set train.val_metric=mse")

    optimizer = torch.optim.Adam(parameters, lr=tc.lr, weight_decay=tc.weight_decay)
    plateau = {"reference": math.inf, "stale": 0, "converged_at": None, "lr_scale": 1.0, "drops": []}  # the rule's state
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(tc, s) * plateau["lr_scale"])
    scaler = torch.amp.GradScaler(device.type, enabled=tc.amp == "fp16" and device.type == "cuda")
    adversary = Adversary(tc, cfg.data.geometry(), device) if tc.loss != "mse" else None
    if group.distributed and adversary is not None:
        raise VpbenchError(f"train.loss = {tc.loss}: the discriminator is not distributed; train adversarial "
                           "losses in one process")
    local_batch = check_batch(tc.batch_size, group, "train.batch_size")
    val_set = splits["val"]
    if tc.val_clips:
        val_set = ClipDataset(val_set.split, limit=min(tc.val_clips, len(val_set)), frames=val_set.frames)

    start, best_val, best_step, resumed_from, loss_value = 0, math.inf, None, None, None
    seconds_before, started = 0.0, time.perf_counter()  # training time of earlier processes; this one's start
    log_path = run_dir / "train.jsonl"
    state, note = checkpoints.load_latest(run_dir, device, run_id=run_dir.name)  # the folder is named by the run id
    if note and group.main:
        tqdm.write(f"{run_dir.name}: {note}", file=sys.stderr)
    if state is None:
        if group.main:
            _truncate_log(log_path, 0)
    else:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        if adversary is not None:
            adversary.load_state_dict(state["adversary"])
        start, best_val, best_step = state["step"], state["best_val_loss"], state["best_step"]
        plateau.update(state["plateau"])  # in place: the schedule reads its lr_scale
        loss_value = state["loss"]
        resumed_from = start
        seconds_before = state.get("train_seconds", 0.0)  # absent in checkpoints written before it was kept
        _set_rng_state(state["rng"])
        if group.main:
            _truncate_log(log_path, start)
    group.barrier()  # every process has read the checkpoint before process 0 writes the next one

    model.train()
    stepper = _Rollout(model)
    if group.distributed:
        stepper = DistributedDataParallel(stepper, device_ids=[device] if device.type == "cuda" else None)
    context, horizon = cfg.data.context, cfg.data.horizon
    bad_gradients = 0
    stop = start if plateau["converged_at"] is not None else tc.steps  # a converged run trains no further
    batches = train_loader(splits["train"], tc.batch_size, cfg.seed, start, stop, group.part(local_batch))
    bar = progress_report.bar(batches, show=progress and group.main, total=stop, initial=start,
                              desc=f"train {cfg.model_name}", unit="step", leave=False)
    with (log_path.open("a") if group.main else open(os.devnull, "w")) as log, \
            slicing_batches(group.rank, group.world):
        for step, clips in enumerate(bar, start=start):
            frames = to_float(clips).to(device)  # [B, T, C, H, W]
            context_forcing, teacher_forcing = forcing(tc.sampling, step)
            with _autocast(tc, device):
                predictions = stepper(frames[:, :context], horizon, frames[:, context:],
                                      teacher_forcing, context_forcing)  # [B, T - 1, C, H, W]
                if tc.loss_on == "horizon":
                    predictions, target = predictions[:, -horizon:], frames[:, context:]
                else:
                    target = frames[:, 1:]
                loss = F.mse_loss(predictions.float(), target)
                auxiliary = model.auxiliary_loss()
                if auxiliary is not None:
                    loss = loss + auxiliary
            extra = {}
            if adversary is not None:
                extra["d_loss"] = adversary.update_discriminator(predictions, target)
                adversarial_loss, parts = adversary.generator_loss(predictions, target)
                loss = loss + adversarial_loss
                extra.update(parts)
            loss_value = loss.item() if not group.distributed else group.sum(loss).item() / group.world
            done = step + 1
            if not math.isfinite(loss_value):
                raise NonFiniteError(f"non-finite loss ({loss_value}) at step {done}")
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            norm = torch.nn.utils.clip_grad_norm_(parameters, tc.grad_clip if tc.grad_clip > 0 else math.inf).item()
            if scaler.is_enabled() or math.isfinite(norm):
                bad_gradients = 0
                scaler.step(optimizer)
            else:  # skip the update; a GradScaler does the same for fp16 on its own
                bad_gradients += 1
                if bad_gradients >= tc.nonfinite_grad_steps:
                    raise NonFiniteError(f"non-finite gradients for {bad_gradients} steps in a row at step {done}")
            scaler.update()
            scheduler.step()
            record = {"step": done, "loss": loss_value, "lr": scheduler.get_last_lr()[0],
                      "teacher_forcing": teacher_forcing, "context_forcing": context_forcing, **extra}

            if done % tc.val_every == 0 or done == tc.steps:
                val_loss = validate(model, val_set, cfg, device, group, lpips_model)
                record["val_loss"] = val_loss
                if val_loss < best_val:
                    best_val, best_step = val_loss, done
                    if group.main:
                        checkpoints.save({"model": model.state_dict(), "step": done, "val_loss": val_loss},
                                         run_dir / BEST)
                if val_loss < (1 - tc.min_delta) * plateau["reference"]:
                    plateau["reference"], plateau["stale"] = val_loss, 0
                else:
                    plateau["stale"] += 1
                    if tc.patience and plateau["stale"] >= tc.patience:
                        if len(plateau["drops"]) < tc.lr_drops:
                            _drop_learning_rate(optimizer, scheduler, tc, done, plateau)
                            record["lr_drop"] = plateau["lr_scale"]
                        else:
                            plateau["converged_at"] = done
                            record["converged"] = True
                if board is not None and group.main:
                    board.validation(done, val_loss, validation_strip(model, val_set, cfg, device))
                stopping = ("; converged" if plateau["converged_at"] == done else
                            f"; plateau: lr x{plateau['lr_scale']:.3g}" if "lr_drop" in record else "")
                progress_report.line(f"{run_dir.name} {cfg.model_name}: step {done}/{tc.steps}, loss {loss_value:.4g}, "
                                     f"val {tc.val_metric.upper()} {val_loss:.4g} (best {best_val:.4g} at step {best_step}){stopping}",
                                     show=progress and group.main)
            checkpoint_due = done % tc.checkpoint_every == 0 or done == tc.steps or plateau["converged_at"] == done
            if checkpoint_due and group.main:
                checkpoints.save_resume({
                    "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(),
                    "adversary": adversary.state_dict() if adversary is not None else None,
                    "step": done, "best_val_loss": best_val, "best_step": best_step, "plateau": dict(plateau), "loss": loss_value,
                    "sampling": {"teacher_forcing": teacher_forcing, "context_forcing": context_forcing},
                    "rng": _rng_state(), "run_id": run_dir.name,
                    "train_seconds": seconds_before + time.perf_counter() - started,
                }, run_dir, done)
            log.write(json.dumps(record) + "\n")
            log.flush()
            if board is not None and group.main:
                board.step(record, norm)
            bar.set_postfix(loss=f"{loss_value:.4g}")
            if plateau["converged_at"] == done:
                break
    bar.close()
    group.barrier()  # process 0 has written best.pt

    if best_step is not None:
        try:
            model.load_state_dict(checkpoints.load(run_dir / BEST, device)["model"])
        except checkpoints.Unreadable as exc:
            raise checkpoints.Unreadable(f"{run_dir / BEST}: the weights of the best validation step "
                                         f"({best_step}) cannot be read: {exc}") from None
    steps = plateau["converged_at"] or tc.steps
    return TrainResult(steps, best_step, best_val if best_step else None, loss_value, resumed_from, note,
                       plateau["converged_at"], list(plateau["drops"]), _val_curve(log_path),
                       seconds_before + time.perf_counter() - started)


def _drop_learning_rate(optimizer, scheduler, tc: TrainConfig, step: int, plateau: dict) -> None:
    """A plateau with drops left: the learning rate x ``drop_factor`` from the next step on; the rule starts
    counting stale validations again (against the same last improving loss)."""
    plateau["lr_scale"] *= tc.drop_factor
    plateau["stale"] = 0
    plateau["drops"].append(step)
    for group, base in zip(optimizer.param_groups, scheduler.base_lrs):
        group["lr"] = base * lr_factor(tc, step) * plateau["lr_scale"]


def _val_curve(log_path: Path) -> list[tuple[int, float]]:
    """``(step, val loss)`` of every validation in ``train.jsonl``, one per step in step order (the log is cut
    back to the step a resume starts from; a step logged twice keeps its last value)."""
    records = (json.loads(line) for line in log_path.read_text().splitlines() if line.strip())
    return sorted({r["step"]: r["val_loss"] for r in records if "val_loss" in r}.items())
