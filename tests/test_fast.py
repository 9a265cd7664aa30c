"""Fast paths (``vpbench.run.fast``): each switch alone and all together give the plain path's outputs and gradients."""

from __future__ import annotations

import copy

import pytest
import torch

from helpers import build_smoke, smoke_clip
from vpbench.interface import registry
from vpbench.run.fast import FastPaths, accelerate
from vpbench.interface.fusion import set_fused

# every registered model, plus the STRPM variants whose fused paths differ (single-stream codec; τ ≠ θ;
# the released code's switches)
CONFIGS = [name for name in registry.names() if name not in ("copy_last", "simvp", "tau")] + [  # the recurrent ones
    "rpm", "rpm_theta5_tau1", "strpm_official"]
CPU_SWITCHES = ["fuse", "channels_last", "fuse,channels_last"]
TOLERANCE = dict(rtol=1e-5, atol=1e-5)


def _outputs_and_gradients(model, config, clip):
    """The training rollout (half teacher forcing, fixed mask) and the gradient of a loss on it."""
    context, horizon = config.data.context, config.data.horizon
    model.zero_grad()
    torch.manual_seed(1)
    rollout = model.rollout(clip[:, :context], horizon, clip[:, context:], teacher_forcing=0.5)
    loss = (rollout - clip[:, 1:]).square().mean()
    auxiliary = model.auxiliary_loss()
    (loss if auxiliary is None else loss + auxiliary).backward()
    gradients = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    with torch.no_grad():
        inference = model(clip[:, :context], horizon)
    return rollout.detach(), inference, gradients


@pytest.mark.parametrize("switches", CPU_SWITCHES)
@pytest.mark.parametrize("name", CONFIGS)
def test_fast_paths_give_the_plain_outputs_and_gradients(name, switches):
    model, config = build_smoke(name)
    clip = smoke_clip(config, batch=2)
    plain = _outputs_and_gradients(model, config, clip)
    fast = accelerate(copy.deepcopy(model), FastPaths.parse(switches))
    rollout, inference, gradients = _outputs_and_gradients(fast, config, clip)
    torch.testing.assert_close(rollout, plain[0], **TOLERANCE)
    torch.testing.assert_close(inference, plain[1], **TOLERANCE)
    assert gradients.keys() == plain[2].keys()
    for key, gradient in gradients.items():
        torch.testing.assert_close(gradient, plain[2][key], **TOLERANCE, msg=lambda m: f"{key}: {m}")


@pytest.mark.slow
def test_compiled_steps_give_the_plain_outputs_and_gradients():
    """torch.compile (inductor, about a minute on two cores) with fusion on, on ConvLSTM."""
    model, config = build_smoke("convlstm")
    clip = smoke_clip(config, batch=2)
    plain = _outputs_and_gradients(model, config, clip)
    rollout, inference, gradients = _outputs_and_gradients(accelerate(copy.deepcopy(model), FastPaths(fuse=True, compile=True)),
                                                           config, clip)
    torch.testing.assert_close(rollout, plain[0], **TOLERANCE)
    torch.testing.assert_close(inference, plain[1], **TOLERANCE)
    for key, gradient in gradients.items():
        torch.testing.assert_close(gradient, plain[2][key], **TOLERANCE)


def _convolutions(model, config, clip) -> int:
    """aten.convolution calls in one inference rollout."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Count(TorchDispatchMode):
        calls = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            Count.calls += func._overloadpacket is torch.ops.aten.convolution
            return func(*args, **(kwargs or {}))

    with torch.no_grad(), Count():
        model(clip[:, :config.data.context], config.data.horizon)
    return Count.calls


@pytest.mark.parametrize("name", CONFIGS)
def test_every_recurrent_model_has_a_fused_path_that_runs_fewer_convolutions(name):
    model, config = build_smoke(name)
    clip = smoke_clip(config)
    assert set_fused(model, False) >= 1, f"{name}: no module declares a fused path"
    plain = _convolutions(model, config, clip)
    set_fused(model, True)
    assert _convolutions(model, config, clip) < plain, f"{name}: the fused path is not taken"


def test_state_dict_does_not_depend_on_the_switches():
    model, _ = build_smoke("strpm")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    accelerate(model, FastPaths(fuse=True, channels_last=True))
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_parse_names_the_unknown_switch():
    assert FastPaths.parse("fuse, compile") == FastPaths(fuse=True, compile=True)
    assert FastPaths.parse("all").for_device(torch.device("cpu")) == FastPaths(fuse=True, channels_last=True,
                                                                               compile=True)
    with pytest.raises(ValueError, match="'fusion'"):
        FastPaths.parse("fusion")


@pytest.mark.slow
def test_a_smoke_run_with_fast_paths_has_the_plain_run_id_and_metrics(smoke_run, tmp_path, cli_env):
    import subprocess

    from conftest import REPO, vpbench_command
    from vpbench.store import Store

    store = tmp_path / "results.sqlite"
    done = subprocess.run(vpbench_command("run", "--suite", "smoke", "--fast", "fuse,channels_last", "--no-progress",
                                          "--store", str(store)),
                          capture_output=True, text=True, env=cli_env, cwd=REPO, timeout=600)
    assert done.returncode == 0, done.stderr
    plain = {r["model"]: r for r in Store(smoke_run.store).runs()}["convlstm"]  # the session's plain run
    fast = {r["model"]: r for r in Store(store).runs()}["convlstm"]
    assert plain["run_id"] == fast["run_id"]
    assert (plain["manifest"]["fast_paths"], fast["manifest"]["fast_paths"]) == ("plain", "fuse+channels_last")
    for metric in ("psnr", "ssim"):
        reference = torch.tensor(plain["metrics"][metric]["per_clip"])  # [clips, horizon]
        torch.testing.assert_close(torch.tensor(fast["metrics"][metric]["per_clip"]), reference, rtol=1e-4, atol=0)
