"""GAN + LP training: the discriminator of the released code, the loss settings of Table 4, and that
λ1 = λ2 = 0 leaves the predictor's gradients those of plain MSE."""

import torch
import torch.nn.functional as F

from helpers import build_smoke, smoke_clip
from vpbench.run import checkpoints
from vpbench.run.adversarial import Adversary, Discriminator
from vpbench.config.resolution import RunSpec, resolve
from vpbench.data import load_splits
from vpbench.run.train import seed_everything, train


def test_discriminator_parameters_match_the_released_code():
    # strpm-spec.md §4: 333,185 (Human3.6M, 128² patched, D = 64), 296,129 (UCF, 64²), 370,433 (SJTU4K, 272x480)
    for grid, expected in (((128, 128), 333_185), ((64, 64), 296_129), ((272, 480), 370_433)):
        assert sum(p.numel() for p in Discriminator(192, 64, grid).parameters()) == expected


def test_all_three_table4_losses_are_selectable():
    for loss in ("mse", "mse+gan", "mse+gan+lp"):
        config = resolve(RunSpec("strpm"), "smoke", {"train": {"loss": loss}})
        assert config.train.loss == loss
    assert resolve(RunSpec("strpm"), "smoke").train.loss == "mse+gan+lp"  # STRPM's own setting
    assert resolve(RunSpec("rpm_sted"), "smoke").train.loss == "mse"  # Table 3 rows train with MSE
    sjtu = resolve(RunSpec("strpm", "geometry_sjtu4k"), "smoke").train.adversarial
    assert (sjtu.lambda_lp, sjtu.lambda_gan) == (0.005, 0.0005)  # the paper's SJTU4K weights


def _gradients(loss_kind: str, lambdas: tuple[float, float]) -> dict[str, torch.Tensor]:
    model, config = build_smoke("rpm_sted", train={"loss": loss_kind, "adversarial": {"lambda_lp": lambdas[0],
                                                                                      "lambda_gan": lambdas[1]}})
    clip = smoke_clip(config, batch=2)
    context = config.data.context
    prediction = model.rollout(clip[:, :context], config.data.horizon, clip[:, context:], teacher_forcing=1.0)
    loss = F.mse_loss(prediction, clip[:, 1:])
    if loss_kind != "mse":
        torch.manual_seed(1)
        adversary = Adversary(config.train, config.data.geometry(), torch.device("cpu"))
        adversary.update_discriminator(prediction, clip[:, 1:])
        extra, parts = adversary.generator_loss(prediction, clip[:, 1:])
        assert set(parts) == ({"gan", "lp"} if loss_kind == "mse+gan+lp" else {"gan"})
        loss = loss + extra
    loss.backward()
    return {name: p.grad.clone() for name, p in model.named_parameters()}


def test_zero_lambdas_give_the_gradients_of_plain_mse():
    plain = _gradients("mse", (0.0, 0.0))
    zero = _gradients("mse+gan+lp", (0.0, 0.0))
    assert all(torch.equal(plain[name], zero[name]) for name in plain)
    weighted = _gradients("mse+gan+lp", (0.01, 0.001))
    assert any(not torch.equal(plain[name], weighted[name]) for name in plain)


def test_gan_training_updates_the_discriminator_and_resumes_its_state(tmp_path):
    train_options = {"steps": 4, "checkpoint_every": 2, "val_every": 4, "val_metric": "mse"}  # the GAN, not LPIPS
    config = resolve(RunSpec("strpm"), "smoke", {"train": train_options})
    splits = load_splits(config.data, progress=False)
    seed_everything(0, True)
    model, _ = build_smoke("strpm")
    result = train(config, model, splits, tmp_path, torch.device("cpu"), progress=False)
    assert result.steps == 4
    state = checkpoints.load(checkpoints.resume_path(tmp_path, 4))  # tensors only, as every resume reads it
    assert state["adversary"]["optimizer"]["state"]  # the discriminator's Adam has taken steps
    log = (tmp_path / "train.jsonl").read_text().splitlines()
    assert all('"d_loss"' in line and '"lp"' in line for line in log)
