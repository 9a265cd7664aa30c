"""The common interface of every video predictor, and the recurrent rollout they share.

A predictor maps context frames to future frames::

    forward(context [B, T_in, C, H, W], horizon,
            future [B, horizon, C, H, W] | None = None, teacher_forcing=0.0) -> [B, horizon, C, H, W]

Recurrent predictors are a :class:`Codec` (frame -> features -> frame) around a :class:`Memory`
(a stack of cells with its own state). :class:`RecurrentPredictor` owns the loop, so no model writes
its own: it feeds ground truth or its own predictions back (scheduled sampling while training,
autoregressive at test time) and returns the next-frame prediction of every step.

Legend: B batch, T_in context frames, C frame channels, H x W frame size, F hidden channels,
h x w latent grid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from vpbench.interface.batch_slice import batch_slice


@dataclass(frozen=True)
class Geometry:
    """The data geometry a model is built for; builders fill their sizes from it."""

    channels: int  # C, frame channels
    height: int  # H
    width: int  # W
    context: int  # T_in, context frames
    horizon: int  # frames to predict at test time
    patch: int = 1  # p, the data preset's space-to-depth factor for the shared codecs
    stride_ratio: int = 1  # sr, the data preset's conv down-sampling; latent = H/(p·sr) x W/(p·sr)


class Features(NamedTuple):
    """Latent features at one step: the (temporal, spatial, output) streams, each ``[B, F, h, w]``.

    A single-stream codec hands the same tensor to all three (:meth:`single`); STRPM's STED codec
    fills them from three encoders.
    """

    temporal: Tensor
    spatial: Tensor
    output: Tensor

    @classmethod
    def single(cls, x: Tensor) -> Features:
        return cls(x, x, x)


class Codec(nn.Module):
    """Frame <-> features. ``encode``: ``[B, C, H, W]`` -> Features; ``decode``: Features -> ``[B, C, H, W]``.

    Attributes set by subclasses: ``frame_channels`` (C), ``latent_channels`` (channels that
    ``encode`` produces, what the memory's first layer takes), ``hidden_channels`` (channels that
    ``decode`` reads, what the memory emits), ``streams`` (1: the same tensor in all three
    Features fields; 3: three distinct streams, as STED's encoders give).
    """

    frame_channels: int
    latent_channels: int
    hidden_channels: int
    streams: int = 1

    def encode(self, frame: Tensor) -> Features:
        raise NotImplementedError

    def decode(self, features: Features) -> Tensor:
        raise NotImplementedError

    def latent_size(self, height: int, width: int) -> tuple[int, int]:
        """The latent grid ``(h, w)`` for ``H x W`` frames."""
        raise NotImplementedError


class Memory(nn.Module):
    """A stack of recurrent cells: ``step(Features, state) -> (Features, state)``.

    ``init_state`` gives the state at the start of a sequence for a ``[B, ., h, w]`` latent grid. A
    memory with an auxiliary training loss (PredRNN-V2's decoupling term) returns it from
    :meth:`auxiliary_loss` for the state after a step; the rollout averages it over steps.
    ``streams`` is 3 for a memory that reads the temporal, spatial and output streams separately
    (RPM), 1 for one that reads a single tensor (every baseline).
    """

    streams: int = 1

    def init_state(self, batch: int, height: int, width: int) -> Any:
        raise NotImplementedError

    def step(self, features: Features, state: Any) -> tuple[Features, Any]:
        raise NotImplementedError

    def auxiliary_loss(self, state: Any) -> Tensor | None:
        return None

    def _zeros(self, *shape: int) -> Tensor:
        """A zero state tensor on this memory's device and dtype."""
        reference = next(self.parameters())
        return reference.new_zeros(shape)


class SingleStreamAdapter(Memory):
    """Runs a single-stream memory on a three-stream codec (STED).

    The three encoded streams are merged by a 1x1 conv ``[B, 3·C_lat, h, w] -> [B, C_lat, h, w]``
    into the one tensor the memory reads; its output goes to all three decoders.
    """

    def __init__(self, memory: Memory, channels: int):
        super().__init__()
        self.inner = memory
        self.merge = nn.Conv2d(3 * channels, channels, 1)

    def init_state(self, batch: int, height: int, width: int) -> Any:
        return self.inner.init_state(batch, height, width)

    def step(self, features: Features, state: Any) -> tuple[Features, Any]:
        merged = self.merge(torch.cat(list(features), dim=1))  # [B, C_lat, h, w]
        return self.inner.step(Features.single(merged), state)

    def auxiliary_loss(self, state: Any) -> Tensor | None:
        return self.inner.auxiliary_loss(state)


class Predictor(nn.Module):
    """Base of every model: ``forward`` returns the last ``horizon`` frames of :meth:`rollout`.

    ``rollout`` returns the next-frame prediction at every step of the clip, ``[B, T_in - 1 +
    horizon, C, H, W]`` (frames 1 .. T_in + horizon - 1): the training protocol of the PredRNN
    family and STRPM takes its loss over all of them.

    ``teacher_forcing`` is the probability that a horizon step is fed the true frame (per sample,
    Bernoulli) rather than the model's own prediction; ``context_forcing`` is the same for
    context steps (1.0 except under reverse scheduled sampling). At test time both are the defaults
    and ``future`` is None, so the model feeds back its own outputs.
    """

    config: dict | None = None  # the resolved model config, attached by the harness

    def rollout(
        self,
        context: Tensor,
        horizon: int,
        future: Tensor | None = None,
        teacher_forcing: float = 0.0,
        context_forcing: float = 1.0,
    ) -> Tensor:
        raise NotImplementedError

    def forward(
        self,
        context: Tensor,
        horizon: int,
        future: Tensor | None = None,
        teacher_forcing: float = 0.0,
        context_forcing: float = 1.0,
    ) -> Tensor:
        return self.rollout(context, horizon, future, teacher_forcing, context_forcing)[:, -horizon:]

    def auxiliary_loss(self) -> Tensor | None:
        """An extra training loss from the last rollout, or None."""
        return None


def check_rollout_inputs(name: str, context: Tensor, horizon: int, future: Tensor | None) -> None:
    """Raise a ValueError naming the model and the expected and actual shapes."""
    if context.dim() != 5:
        raise ValueError(f"{name}: context: expected [B, T_in, C, H, W], got {list(context.shape)}")
    if horizon < 1:
        raise ValueError(f"{name}: horizon: expected >= 1, got {horizon}")
    if future is not None:
        b, _, c, h, w = context.shape
        expected = [b, horizon, c, h, w]
        if list(future.shape) != expected:
            raise ValueError(f"{name}: future: expected {expected}, got {list(future.shape)}")


def mix_frames(truth: Tensor | None, predicted: Tensor, probability: float) -> Tensor:
    """Scheduled sampling: per sample, the true frame with ``probability``, else the prediction.

    ``truth`` and ``predicted`` are ``[B, C, H, W]``. Random numbers are drawn only when
    0 < probability < 1, so deterministic settings consume no randomness. Under several processes
    the coins of the whole global batch are drawn and this process's slice kept
    (:func:`vpbench.interface.batch_slice.batch_slice`), so every process draws the same numbers.
    """
    if truth is None or probability <= 0.0:
        return predicted
    if probability >= 1.0:
        return truth
    global_batch, mine = batch_slice(truth.shape[0])
    keep = torch.rand(global_batch, device=truth.device)[mine] < probability  # [B]
    return torch.where(keep[:, None, None, None], truth, predicted)


class RecurrentPredictor(Predictor):
    """A codec around a memory, with the rollout every recurrent model shares.

    At step t (0-based) the input is frame t: the true context frame for t < T_in (or, under reverse
    scheduled sampling, a mix with the previous prediction), afterwards a mix of the true future
    frame and the previous prediction. The output of step t predicts frame t + 1.

    Shapes: context ``[B, T_in, C, H, W]`` -> ``[B, T_in - 1 + horizon, C, H, W]``; per step the
    codec gives Features of ``[B, F, h, w]``. A single-stream memory on a three-stream codec is
    wrapped in a :class:`SingleStreamAdapter`.
    """

    def __init__(self, codec: Codec, memory: Memory):
        super().__init__()
        if codec.streams == 3 and memory.streams == 1:
            memory = SingleStreamAdapter(memory, codec.latent_channels)
        self.codec = codec
        self.memory = memory
        self._auxiliary_loss: Tensor | None = None

    def rollout(
        self,
        context: Tensor,
        horizon: int,
        future: Tensor | None = None,
        teacher_forcing: float = 0.0,
        context_forcing: float = 1.0,
    ) -> Tensor:
        check_rollout_inputs(type(self).__name__, context, horizon, future)
        batch, context_length, _, height, width = context.shape
        latent_h, latent_w = self.codec.latent_size(height, width)
        state = self.memory.init_state(batch, latent_h, latent_w)
        predictions: list[Tensor] = []
        auxiliary: list[Tensor] = []
        for t in range(context_length + horizon - 1):
            if t == 0:
                frame = context[:, 0]
            elif t < context_length:
                frame = mix_frames(context[:, t], predictions[-1], context_forcing)
            else:
                truth = None if future is None else future[:, t - context_length]
                frame = mix_frames(truth, predictions[-1], teacher_forcing)
            features, state = self.memory.step(self.codec.encode(frame), state)
            predictions.append(self.codec.decode(features))  # [B, C, H, W]
            extra = self.memory.auxiliary_loss(state)
            if extra is not None:
                auxiliary.append(extra)
        self._auxiliary_loss = torch.stack(auxiliary).mean() if auxiliary else None
        return torch.stack(predictions, dim=1)  # [B, T_in - 1 + horizon, C, H, W]

    def auxiliary_loss(self) -> Tensor | None:
        return self._auxiliary_loss
