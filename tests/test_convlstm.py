"""ConvLSTM: the parameter formula and that it learns (overfits one clip on the shared codec)."""

import torch

from baselines.convlstm import ConvLSTMCell
from baselines.copy_last import CopyLast
from helpers import build_smoke, overfit, smoke_clip


def test_one_layer_has_8_c2_k2_parameters():
    # bias-free x->4C and h->4C convs: 4C·C·k² + 4C·C·k² = 8·128²·25 = 3,276,800
    cell = ConvLSTMCell(128, 128, 5)
    assert sum(p.numel() for p in cell.parameters()) == 8 * 128**2 * 5**2 == 3_276_800


def test_convlstm_on_the_shared_codec_overfits_one_clip():
    torch.manual_seed(0)
    model, config = build_smoke("convlstm")
    clip = smoke_clip(config)
    first, last = overfit(model, clip, config.data.context, steps=300)
    assert last < first / 10, f"loss only fell from {first:.4g} to {last:.4g}"


def test_copy_last_repeats_the_last_context_frame():
    context = torch.rand(2, 4, 3, 8, 8)
    prediction = CopyLast()(context, 3)
    assert torch.equal(prediction, context[:, -1:].expand(-1, 3, -1, -1, -1))
