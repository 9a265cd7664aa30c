"""The baselines: per-layer parameter formulas (baselines-spec.md §10), training on both codecs,
the E3D-LSTM memory fix, and CrevNet's exact inverse."""

import pytest
import torch

from baselines.convlstm import ConvLSTMCell
from baselines.copy_last import CopyLast
from baselines.crevnet import InvertibleCodec, ReversibleLayer
from baselines.e3dlstm import E3DLSTMCell, E3DLSTMMemory
from baselines.motionrnn import MotionGRU
from baselines.predrnn import STLSTMCell
from baselines.predrnnpp import CausalLSTMCell, GradientHighwayUnit
from helpers import build_smoke, overfit, smoke_clip
from vpbench.interface.predictor import Features, SingleStreamAdapter

C, K = 128, 5
BASELINES = ["convlstm", "predrnn", "predrnn_v2", "predrnnpp", "e3dlstm", "reversible_pm", "crevnet", "motionrnn"]


def count(module: torch.nn.Module, exclude_norm: bool = True) -> int:
    return sum(p.numel() for name, p in module.named_parameters() if not (exclude_norm and "norm" in name))


def test_per_layer_parameters_equal_the_formulas():
    # ConvLSTM 8C²k² (bias-free): 3,276,800
    assert count(ConvLSTMCell(C, C, K)) == 8 * C**2 * K**2
    # ST-LSTM 16C²k² + 2C² (bias-free, 1x1 W_1x1 = 2C²): 6,586,368
    assert count(STLSTMCell(C, C, K)) == 16 * C**2 * K**2 + 2 * C**2
    # Causal LSTM 22C²k² + 2C² = 9,043,968; GHU 4C²k² = 1,638,400 (bias-free)
    assert count(CausalLSTMCell(C, C, K)) == 22 * C**2 * K**2 + 2 * C**2
    assert count(GradientHighwayUnit(C, K)) == 4 * C**2 * K**2
    # E3D-LSTM with (2, 5, 5) kernels: 17C²·2·k² + 2C² = 13,959,168 (GroupNorm's 2C affine excluded)
    assert count(E3DLSTMCell(C, C, (2, K, K), 1.0, False)) == 17 * C**2 * 2 * K**2 + 2 * C**2
    # CrevNet reversible layer: 22C²k² + 3C² plus biases: 7 k x k convs, W_1x1 and W_a carry C each = 9C
    assert count(ReversibleLayer(C, K)) == 22 * C**2 * K**2 + 3 * C**2 + 9 * C
    # MotionGRU (q = C/4 = 32, 18 offsets, 3x3 neighbourhood), each conv with its bias:
    q = C // 4
    expected = (C * q * K**2 + q)  # Enc: k x k, stride 2, C -> C/4
    expected += 3 * ((q + 18) * 18 * 9 + 18)  # u, r, z: 3x3 over [e, F] -> 18
    expected += q * 9 * 9 + 9  # warp mask: 3x3, C/4 -> 9
    expected += q * q * 9 + q  # the deformable 3x3 conv's weights
    expected += q * C * 16 + C  # Dec: 4x4 transposed, C/4 -> C  (= 4C² + C)
    expected += 2 * C * C * K**2 + C  # fusion gate: k x k, 2C -> C
    assert count(MotionGRU(C, K)) == expected


@pytest.mark.slow
@pytest.mark.parametrize("name", BASELINES)
def test_each_baseline_overfits_one_clip_on_the_shared_codec(name):
    model, config = build_smoke(name)
    clip = smoke_clip(config)
    first, last = overfit(model, clip, config.data.context, steps=120 if name == "crevnet" else 250)
    assert last < first / 10, f"{name}: loss only fell from {first:.4g} to {last:.4g}"


@pytest.mark.parametrize("name", [n for n in BASELINES if n != "crevnet"])
def test_each_memory_runs_on_the_sted_codec_through_the_single_stream_adapter(name):
    model, config = build_smoke(name, model={"codec": {"kind": "sted"}})
    assert isinstance(model.memory, SingleStreamAdapter) and model.codec.streams == 3
    clip = smoke_clip(config, batch=2)
    context = config.data.context
    out = model.rollout(clip[:, :context], config.data.horizon, clip[:, context:], teacher_forcing=0.5)
    loss = out.square().mean()
    auxiliary = model.auxiliary_loss()
    (loss if auxiliary is None else loss + auxiliary).backward()
    assert all(p.grad is not None for p in model.parameters())
    with torch.no_grad():
        assert model(clip[:, :context], config.data.horizon + 3).shape[1] == config.data.horizon + 3


def _zigzag_memories(published: bool) -> list[torch.Tensor]:
    torch.manual_seed(0)
    memory = E3DLSTMMemory(8, 8, layers=3, kernel=3, published=published)
    seen = []
    for cell in memory.cells:
        cell.register_forward_hook(lambda module, args, out: seen.append(out[2].detach()))
    state = memory.init_state(1, 6, 6)
    for _ in range(2):
        _, state = memory.step(Features.single(torch.rand(1, 8, 6, 6)), state)
    assert len(seen) == 2 * len(memory.cells)  # every cell's hook fired at both steps
    return seen


def test_e3d_zigzag_memory_changes_across_layers_once_fixed():
    memories = _zigzag_memories(published=False)
    assert all(m.abs().sum() > 0 for m in memories)
    assert not torch.equal(memories[0], memories[1]) and not torch.equal(memories[1], memories[2])


def test_e3d_published_memory_stays_zero():
    assert all(torch.count_nonzero(m) == 0 for m in _zigzag_memories(published=True))


def test_e3d_published_flag_changes_outputs():
    outputs = []
    for published in (False, True):
        model, config = build_smoke("e3dlstm", model={"published": published})
        clip = smoke_clip(config)
        with torch.no_grad():
            outputs.append(model(clip[:, :config.data.context], 2))
    assert not torch.allclose(*outputs)


def test_crevnet_autoencoder_is_exactly_invertible():
    torch.manual_seed(0)
    codec = InvertibleCodec(3, factor=8, blocks_per_stage=2, width_divisor=2)
    frames = torch.rand(2, 3, 64, 96)
    latent = codec.encode(frames)
    assert latent.output.shape == (2, 3 * 64, 8, 12)  # as many numbers as the frame: lossless
    assert (codec.decode(latent) - frames).abs().max() < 1e-5


def test_predrnn_v2_adds_the_decoupling_loss():
    model, config = build_smoke("predrnn_v2")
    clip = smoke_clip(config)
    model.rollout(clip[:, :config.data.context], config.data.horizon)
    loss = model.auxiliary_loss()
    assert loss is not None and 0 < loss.item() <= 0.1  # β · mean |cos| with β = 0.1
    assert config.train.sampling.kind == "reverse"
    plain, _ = build_smoke("predrnn")
    plain.rollout(clip[:, :config.data.context], config.data.horizon)
    assert plain.auxiliary_loss() is None
    with torch.no_grad():  # inference does not compute it
        model.rollout(clip[:, :config.data.context], config.data.horizon)
    assert model.auxiliary_loss() is None


def test_copy_last_repeats_the_last_context_frame():
    context = torch.rand(2, 4, 3, 8, 8)
    prediction = CopyLast()(context, 3)
    assert torch.equal(prediction, context[:, -1:].expand(-1, 3, -1, -1, -1))
