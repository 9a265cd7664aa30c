import pytest
import torch

from vpbench.interface.codecs import CodecConfig, ConvCodec, PatchCodec, build_codec, patch_reshape, patch_unreshape
from vpbench.errors import GeometryError
from vpbench.interface.predictor import Geometry


@pytest.mark.parametrize("patch", [1, 2, 4, 8])
def test_patch_reshape_round_trips_exactly(patch):
    frame = torch.rand(2, 3, 32, 48)
    patched = patch_reshape(frame, patch)
    assert patched.shape == (2, 3 * patch * patch, 32 // patch, 48 // patch)
    assert torch.equal(patch_unreshape(patched, patch), frame)


def test_patch_channel_order_is_row_col_colour():
    frame = torch.arange(2 * 2 * 3, dtype=torch.float32).reshape(1, 3, 2, 2)  # one 2x2 patch, 3 colours
    patched = patch_reshape(frame, 2)[0, :, 0, 0]
    # channel (r * 2 + c) * 3 + colour holds frame[colour, r, c]
    expected = torch.stack([frame[0, k, r, c] for r in range(2) for c in range(2) for k in range(3)])
    assert torch.equal(patched, expected)


@pytest.mark.parametrize("kind,patch,stride", [("conv", 4, 2), ("conv", 2, 4), ("conv", 4, 1), ("patch", 4, 1)])
def test_decode_encode_keeps_the_input_shape(kind, patch, stride):
    geometry = Geometry(3, 32, 64, 4, 4, patch, stride)
    codec = build_codec(CodecConfig(kind=kind), geometry, hidden=8)
    frame = torch.rand(2, 3, 32, 64)
    features = codec.encode(frame)
    h, w = codec.latent_size(32, 64)
    assert features.temporal.shape == (2, codec.latent_channels, h, w)
    hidden = torch.rand(2, codec.hidden_channels, h, w)
    assert codec.decode(type(features).single(hidden)).shape == frame.shape


def test_conv_codec_latent_grid_matches_the_paper_geometry():
    codec = ConvCodec(3, 8, patch=8, stride_ratio=8)
    assert codec.latent_size(1024, 1024) == (16, 16)  # Human3.6M: p 8, sr 8
    assert ConvCodec(3, 8, patch=8, stride_ratio=16).latent_size(2176, 3840) == (17, 30)  # SJTU4K: sr 16
    assert isinstance(PatchCodec(3, 8, 4).readout, torch.nn.Conv2d)


def test_geometry_error_names_the_sizes_and_keys():
    geometry = Geometry(3, 60, 64, 4, 4, patch=4, stride_ratio=4)
    with pytest.raises(GeometryError, match=r"60x64 is not divisible by .* = 16 \(codec.patch, codec.stride_ratio\)"):
        CodecConfig().check_geometry(geometry)
    with pytest.raises(GeometryError, match="power of two"):
        CodecConfig(stride_ratio=3).check_geometry(Geometry(3, 96, 96, 4, 4, 4, 4))
