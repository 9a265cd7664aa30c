"""Live training curves for TensorBoard: ``vpbench run ... --log tensorboard`` (``pip install -e '.[tensorboard]'``).

:class:`TensorBoardLog` writes event files under ``<run dir>/tb/``: every training step's loss, its
parts (``d_loss``, ``gan``, ``lp`` for adversarial losses), the learning rate and the gradient norm
before clipping (``train/*``); every validation's MSE (``val/mse``) and one prediction strip of the
first validation clip (``val/prediction``: the true clip on top, the context blank and the
autoregressive prediction below). The log observes a run and changes nothing in it: the run id, the
batches and the metrics are the same with it and without it.

    tensorboard --logdir runs/        # every run's curves side by side, named by run id
"""

from __future__ import annotations

from pathlib import Path

import torch

from vpbench.errors import VpbenchError

LOGS = ("none", "tensorboard")
FOLDER = "tb"  # inside the run folder


def check_available(log: str) -> None:
    """A VpbenchError, before any run starts, when ``log`` is unknown or its package is not installed."""
    if log not in LOGS:
        raise VpbenchError(f"--log {log!r}: expected one of {', '.join(LOGS)}")
    if log == "tensorboard":
        try:
            from torch.utils.tensorboard import SummaryWriter  # noqa: F401
        except ImportError as exc:
            raise VpbenchError(f"--log tensorboard: TensorBoard is not installed ({exc}); "
                               "pip install -e '.[tensorboard]'") from None


def prediction_strip(clip: torch.Tensor, prediction: torch.Tensor) -> torch.Tensor:
    """One image of a clip and its prediction: ``[C, 2H, T*W]`` in [0, 1].

    ``clip``: ``[T, C, H, W]`` (context then truth); ``prediction``: ``[horizon, C, H, W]``, drawn under
    the truth it predicts, with the context columns left blank (white).
    """
    context = clip.shape[0] - prediction.shape[0]
    blank = torch.ones_like(clip[:context])  # [T_in, C, H, W]
    rows = torch.stack([clip, torch.cat([blank, prediction.clamp(0, 1)])])  # [2, T, C, H, W]
    two, frames, channels, height, width = rows.shape
    return rows.permute(2, 0, 3, 1, 4).reshape(channels, two * height, frames * width)  # [C, 2H, T*W]


class TensorBoardLog:
    """Scalars and prediction strips of one run, written to ``<run dir>/tb/`` as they happen.

    A resumed run keeps writing to the same folder: TensorBoard shows the steps after the resume
    point again, as the run takes them again.
    """

    def __init__(self, run_dir: Path):
        check_available("tensorboard")
        self.folder = run_dir / FOLDER
        self._writer = None  # opened on the first write: a run that trains nothing (copy-last) leaves no folder

    @property
    def writer(self):
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self.folder))
        return self._writer

    def step(self, record: dict, grad_norm: float) -> None:
        """One training step's ``train.jsonl`` record (``step``, ``loss``, ``lr``, loss parts) and gradient norm."""
        step = record["step"]
        for key, value in record.items():
            if key not in ("step", "teacher_forcing", "context_forcing", "val_loss", "converged", "grad_norm"):
                self.writer.add_scalar(f"train/{key}", value, step)
        self.writer.add_scalar("train/grad_norm", grad_norm, step)
        self.writer.add_scalar("train/teacher_forcing", record["teacher_forcing"], step)

    def validation(self, step: int, val_loss: float, strip: torch.Tensor) -> None:
        """The validation MSE at ``step`` and a :func:`prediction_strip` ``[C, 2H, T*W]``."""
        self.writer.add_scalar("val/mse", val_loss, step)
        self.writer.add_image("val/prediction", strip.float().clamp(0, 1), step, dataformats="CHW")
        self.writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
