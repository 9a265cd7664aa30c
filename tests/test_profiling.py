"""The profiler: FLOPs pinned to hand arithmetic, the two counters agreeing on every model, per-step
counts, and the paper geometries counted on the meta device."""

import time

import numpy as np
import pytest
import torch

from vpbench.interface import registry
from vpbench.config.resolution import RunSpec, resolve
from vpbench.interface.predictor import Geometry
from vpbench.measure.profiling import fvcore_flops, measure_latency, profile_model, torch_flops
from vpbench.config.schema import ProfileConfig

MODELS = [name for name in registry.names() if name != "copy_last"]


def _smoke(name: str, **overrides):
    config = resolve(RunSpec(name), "smoke", overrides or None)
    torch.manual_seed(0)
    return registry.build(config.model, config.data.geometry()).eval(), config.data.geometry()


def test_small_convlstm_flops_equal_the_hand_count():
    geometry = Geometry(channels=3, height=16, width=16, context=2, horizon=2, patch=2, stride_ratio=2)
    config = resolve(RunSpec("convlstm"), "smoke", {"model": {"hidden": 8, "layers": 1, "kernel": 3}})
    model = registry.build(config.model, geometry).eval()
    # Per step (MACs): encoder 1x1 conv 12->8 on 8x8 = 12·8·64 = 6,144; 3x3 stride-2 conv 8->8 out 4x4 =
    # 8·8·9·16 = 9,216; ConvLSTM conv_x and conv_h 8->32 3x3 on 4x4 = 2 · 8·32·9·16 = 73,728;
    # decoder 3x3 transposed conv 8->8 counted on its 4x4 input = 9,216; 1x1 conv 8->12 on 8x8 = 6,144.
    per_step = 6_144 + 9_216 + 73_728 + 9_216 + 6_144  # = 104,448
    counts = torch_flops(model, geometry, device="cpu")
    assert counts["steps"] == 3  # context 2 + horizon 2 - 1
    assert counts["macs_per_step"] == [per_step] * 3
    assert counts["macs_per_sample"] == 3 * per_step and counts["flops_per_sample"] == 6 * per_step
    assert fvcore_flops(model, geometry)["conv_macs_per_sample"] == 3 * per_step
    # the split measures the codec apart: 6,144 + 9,216 + 9,216 + 6,144 = 30,720 per step, the memory the rest
    assert counts["macs_by_part"] == {"codec": 3 * 30_720, "memory": 3 * 73_728}
    # the gates' σ, tanh, ⊙ and + run on 4x4x8 maps: counted apart, never zero
    assert counts["elementwise_flops_per_sample"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_fvcore_and_the_torch_counter_agree_on_convolution_macs(name):
    model, geometry = _smoke(name)
    ours = torch_flops(model, geometry, device="cpu")["conv_macs_per_sample"]
    theirs = fvcore_flops(model, geometry)["conv_macs_per_sample"]
    assert ours > 0 and theirs == pytest.approx(ours, rel=0.01)


def test_e3d_steps_grow_with_the_recall_history_then_settle():
    model, geometry = _smoke("e3dlstm", model={"history": 3})
    steps = torch_flops(model, geometry, device="cpu")["macs_per_step"]
    assert steps[0] < steps[1] < steps[2] and steps[2] == steps[3] == steps[-1]


def test_skipped_ops_are_recorded():
    model, geometry = _smoke("strpm")
    counts = torch_flops(model, geometry, device="cpu")
    assert counts["skipped_ops"].get("aten.native_layer_norm", 0) > 0  # STRPM's LayerNorms have no formula


def test_paper_geometries_are_counted_on_meta_without_memory():
    config = resolve(RunSpec("strpm", "geometry_sjtu4k"), "paper")
    geometry = config.data.geometry()
    profile = profile_model(lambda: registry.build(config.model, geometry), geometry,
                            ProfileConfig(fvcore=False, latency=False), torch.device("cpu"))
    counts = profile["flops"]["torch"]
    # strpm-spec.md §6.1 (fvcore, conv only): 124.33 GMAC per step for the official model at SJTU4K
    assert counts["macs_per_step_mean"] / 1e9 == pytest.approx(124.33, rel=0.01)
    assert profile["parameters"]["params_without_norm"] > 100e6
    assert "latency" not in profile


class _Sleeper(torch.nn.Module):
    """A predictor that takes ``seconds`` per forward and counts its calls."""

    def __init__(self, seconds: float):
        super().__init__()
        self.seconds, self.calls = seconds, 0

    def forward(self, context, horizon):
        self.calls += 1
        time.sleep(self.seconds)
        return context[:, -1:].expand(-1, horizon, -1, -1, -1)


def test_latency_times_each_forward_after_the_warmup():
    geometry = resolve(RunSpec("convlstm"), "smoke").data.geometry()
    sleeper = _Sleeper(0.02)
    timing = measure_latency(sleeper, geometry, torch.device("cpu"), batch=1, warmup=2, samples=5)
    assert sleeper.calls == 2 + 5 and len(timing["samples_ms"]) == 5
    assert all(20 <= t < 200 for t in timing["samples_ms"])  # each sample is one 20 ms forward, no more
    assert 20 <= timing["median_ms"] < 200 and timing["iqr_ms"] >= 0
    q1, q3 = np.percentile(timing["samples_ms"], [25, 75])
    assert timing["iqr_ms"] == pytest.approx(q3 - q1)


def test_latency_records_both_batches_and_skips_what_the_cap_excludes():
    config = resolve(RunSpec("convlstm"), "smoke")
    geometry = config.data.geometry()

    def build():
        return registry.build(config.model, geometry)

    profile = profile_model(build, geometry, ProfileConfig(fvcore=False, warmup=1, samples=4, throughput_batch=2),
                            torch.device("cpu"))
    b1, tp = profile["latency"]["batch_1"], profile["latency"]["throughput"]
    assert (b1["batch"], len(b1["samples_ms"]), tp["batch"], len(tp["samples_ms"])) == (1, 4, 2, 4)
    assert profile["conventions"]["batch"] == 1 and profile["device"] == "cpu"
    capped = profile_model(build, geometry, ProfileConfig(fvcore=False, max_latency_gmacs=1e-6), torch.device("cpu"))
    assert capped["latency"]["batch_1"]["error"].startswith("not timed:")


def test_a_profile_is_measured_once_per_model_config_and_reused_across_seeds(tmp_path, monkeypatch):
    from conftest import cli
    from vpbench.run import execute as executors
    from vpbench.store import Store

    measured = []
    real = executors.profile_run

    def counting(cfg, device):
        measured.append(cfg.model_name)
        return real(cfg, device)

    monkeypatch.setattr(executors, "profile_run", counting)
    store = tmp_path / "results.sqlite"
    assert cli("run", "--suite", "smoke", "--seeds", "2", "--store", str(store), "--no-progress",
               "--set", "train.steps=5", "--set", "eval.lpips=false") == 0
    assert sorted(measured) == ["convlstm", "copy_last"]  # not once per seed
    runs = Store(store).runs()
    by_model = {}
    for record in runs:
        by_model.setdefault(record["model"], []).append(record["profile"])
    assert all(len(p) == 2 and p[0] == p[1] and p[0]["profile_key"] for p in by_model.values())
    assert cli("run", "--model", "convlstm", "--set", "model.hidden=8", "--store", str(store), "--no-progress",
               "--set", "train.steps=5", "--set", "eval.lpips=false") == 0
    assert measured[-1] == "convlstm" and len(measured) == 3  # another model config: measured anew


def test_a_suite_override_reaches_the_stored_paper_geometry_counts(tmp_path):
    """The paper-geometry counts are those of the run's own config at paper scale, the suite's ``set:``
    included (they were once re-resolved from the config names alone, dropping it)."""
    from conftest import cli
    from vpbench.store import Store

    suite = tmp_path / "shallow.yaml"
    suite.write_text("name: shallow\nversion: 1\ndescription: ConvLSTM with 3 of its 16 layers\n"
                     "datasets: [moving_objects]\nmodels:\n"
                     "  - {config: convlstm, label: shallow, set: {model: {layers: 3}}}\n  - convlstm\n"
                     "set: {task: profile, profile: {latency: false, fvcore: false}}\n")
    store = tmp_path / "results.sqlite"
    assert cli("run", "--suite", str(suite), "--store", str(store), "--no-progress") == 0
    paper = {r["config"]["model"]["layers"]: r["profile"]["paper_geometry"]["parameters"]["params"]
             for r in Store(store).runs()}  # keyed by the smoke-scale layers: 3 (the override) and 2 (the scale's)
    per_layer = 4 * 128 * (128 + 128) * 5 * 5  # the bias-free gates conv over [x, h]: 2 x 128 -> 4 x 128, 5x5
    assert paper[2] - paper[3] == (16 - 3) * per_layer
