"""Every registered model gets the same smoke tests (STYLE §9): parametrised over the registry."""

import tomllib
from pathlib import Path

import pytest
import torch

from helpers import build_smoke, smoke_clip
from vpbench.interface import registry

CONFIGS = Path(__file__).resolve().parent.parent / "configs" / "models"
MODELS = registry.names()


def test_the_registry_holds_every_model_the_project_declares():
    declared = tomllib.loads((CONFIGS.parent.parent / "pyproject.toml").read_text())["project"]["entry-points"]
    assert MODELS == sorted(declared["vpbench.models"])  # the sweeps below run over all of them, never over none
    assert len(MODELS) == 12


def test_every_registered_model_has_a_config_and_a_description():
    for name in MODELS:
        assert (CONFIGS / f"{name}.yaml").is_file(), f"configs/models/{name}.yaml is missing"
        assert registry.get(name).description


@pytest.mark.parametrize("name", MODELS)
def test_shapes_and_finite_outputs_with_and_without_teacher_forcing(name):
    model, config = build_smoke(name)
    clip = smoke_clip(config, batch=2)
    context, horizon = config.data.context, config.data.horizon
    for forcing in (0.0, 0.5, 1.0):
        rollout = model.rollout(clip[:, :context], horizon, clip[:, context:], teacher_forcing=forcing)
        assert rollout.shape == (2, context - 1 + horizon, *clip.shape[2:])
        assert torch.isfinite(rollout).all()
    with torch.no_grad():
        longer = model(clip[:, :context], horizon + 3)  # autoregressive beyond the training horizon
    assert longer.shape == (2, horizon + 3, *clip.shape[2:]) and torch.isfinite(longer).all()


@pytest.mark.parametrize("name", MODELS)
def test_every_parameter_gets_a_gradient(name):
    model, config = build_smoke(name)
    clip = smoke_clip(config, batch=2)
    context = config.data.context
    if not list(model.parameters()):
        assert name == "copy_last", "only copy-last is allowed to have no parameters"
        return
    loss = model.rollout(clip[:, :context], config.data.horizon, clip[:, context:], teacher_forcing=0.5).square().mean()
    auxiliary = model.auxiliary_loss()  # PredRNN-V2's decoupling loss trains its adapter
    (loss if auxiliary is None else loss + auxiliary).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, f"parameters without a gradient (dead weights inflate counts): {missing}"


@pytest.mark.parametrize("name", MODELS)
def test_deterministic_under_a_fixed_seed(name):
    first, config = build_smoke(name)
    second, _ = build_smoke(name)
    clip = smoke_clip(config)
    with torch.no_grad():
        assert torch.equal(first(clip[:, :config.data.context], 3), second(clip[:, :config.data.context], 3))


def test_wrong_input_shapes_name_what_was_expected():
    model, config = build_smoke("convlstm")
    with pytest.raises(ValueError, match=r"context: expected \[B, T_in, C, H, W\], got \[4, 3, 64, 64\]"):
        model(torch.rand(4, 3, 64, 64), 2)
    with pytest.raises(ValueError, match=r"future: expected \[1, 2, 3, 64, 64\], got \[1, 3, 3, 64, 64\]"):
        model.rollout(torch.rand(1, 4, 3, 64, 64), 2, torch.rand(1, 3, 3, 64, 64), teacher_forcing=1.0)


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_trains_through_the_executor_into_the_store(tmp_path, name):
    from vpbench.config.resolution import RunSpec, resolve
    from vpbench.run.executors import InProcessExecutor
    from vpbench.run.plan import identify
    from vpbench.store import Store

    config = resolve(RunSpec(name), "smoke", {"train": {"steps": 3, "val_every": 3, "checkpoint_every": 3},
                                               "eval": {"lpips": False, "samples": 1},
                                               "profile": {"samples": 1, "warmup": 0, "throughput_batch": 0}})
    store = Store(tmp_path / "results.sqlite")
    (outcome,) = InProcessExecutor(store, progress=False).run(identify([(name, config)]))
    assert outcome.status == "complete", outcome.error
    record = store.get(outcome.run_id)
    assert len(record["metrics"]["psnr"]["per_step"]) == config.data.horizon
    built = registry.build(config.model, config.data.geometry())
    assert record["profile"]["parameters"]["params"] == sum(p.numel() for p in built.parameters())
