"""Config resolution: precedence, strict validation with the file and key in the error, stable hashes."""

from pathlib import Path

import pytest

from vpbench.config.resolution import Layer, RunSpec, load_run_file, parse_overrides, resolve, run_id_of
from vpbench.errors import ConfigError
from vpbench.config.suites import expand, load_suite

FIXTURES = Path(__file__).parent / "data" / "configs"


def test_layers_apply_in_order_defaults_file_scale_overrides_cli():
    config = resolve(RunSpec("convlstm", overrides=[Layer({"model": {"layers": 3}}, "suite")]), "smoke",
                     parse_overrides(["model.kernel=5", "train.lr=0.01"]))
    assert config.model["hidden"] == 16  # configs/models/convlstm.yaml scales.smoke
    assert config.model["layers"] == 3  # the run's own override beats the file
    assert config.model["kernel"] == 5 and config.train.lr == 0.01  # --set beats everything
    assert config.model["forget_bias"] == 1.0  # the file body
    assert config.train.weight_decay == 0.0  # the dataclass default
    paper = resolve(RunSpec("convlstm"), "paper")
    assert (paper.model["hidden"], paper.model["layers"], paper.data.height) == (128, 16, 1024)


def test_unknown_key_names_the_file_the_key_and_the_nearest_key():
    with pytest.raises(ConfigError) as error:
        resolve(RunSpec("convlstm"), "smoke", parse_overrides(["model.hiden=3"]))
    assert str(error.value) == "--set: model.hiden: unknown key (did you mean 'hidden'?)"
    spec = load_run_file(FIXTURES / "typo.yaml")
    with pytest.raises(ConfigError, match=r"typo\.yaml: train\.bach_size: unknown key \(did you mean 'batch_size'\?\)"):
        resolve(spec, "smoke")


def test_wrong_type_and_bad_literal_are_errors():
    with pytest.raises(ConfigError, match=r"--set: train.steps: expected int, got 'many' \(str\)"):
        resolve(RunSpec("convlstm"), "smoke", parse_overrides(["train.steps=many"]))
    with pytest.raises(ConfigError, match=r"train.amp: expected 'off' \| 'bf16' \| 'fp16', got 'fp8'"):
        resolve(RunSpec("convlstm"), "smoke", parse_overrides(["train.amp=fp8"]))
    with pytest.raises(ConfigError, match=r"model.kernel: expected an odd size, got 4"):
        resolve(RunSpec("convlstm"), "smoke", parse_overrides(["model.kernel=4"]))


def test_impossible_geometry_names_the_sizes():
    with pytest.raises(ConfigError, match=r"--set: data.height x data.width = 60x64 is not divisible by .* = 8"):
        resolve(RunSpec("convlstm"), "smoke", parse_overrides(["data.height=60"]))
    with pytest.raises(ConfigError, match=r"codec.patch, codec.stride_ratio"):
        resolve(RunSpec("convlstm"), "smoke", parse_overrides(["model.codec.stride_ratio=32"]))


def test_missing_files_and_unknown_names_are_errors():
    with pytest.raises(ConfigError, match=r"models config not found: .*convlstn.yaml \(did you mean 'convlstm'\?\)"):
        resolve(RunSpec("convlstn"), "smoke")
    with pytest.raises(ConfigError, match="config file not found: .*nowhere.yaml"):
        load_run_file(FIXTURES / "nowhere.yaml")
    with pytest.raises(ConfigError, match=r"unknown model 'convlstn' \(did you mean 'convlstm'\?\)"):
        resolve(RunSpec("convlstm"), "smoke", parse_overrides(["model.name=convlstn"]))
    with pytest.raises(ConfigError, match="unknown scale"):
        resolve(RunSpec("convlstm"), "huge")


def test_base_inheritance(tmp_path):
    (tmp_path / "base.yaml").write_text("uses: {model: convlstm}\nmodel: {hidden: 24, layers: 3}\n")
    (tmp_path / "child.yaml").write_text("_base_: base.yaml\nmodel: {layers: 5}\n")
    config = resolve(load_run_file(tmp_path / "child.yaml"), "smoke")
    assert (config.model["hidden"], config.model["layers"]) == (24, 5)


def test_run_id_is_stable_and_tracks_every_value():
    a = resolve(RunSpec("convlstm"), "smoke")
    b = resolve(RunSpec("convlstm"), "smoke")
    assert run_id_of(a) == run_id_of(b) and len(run_id_of(a)) == 16
    assert run_id_of(resolve(RunSpec("convlstm"), "smoke", {"seed": 1})) != run_id_of(a)
    assert run_id_of(resolve(RunSpec("convlstm"), "smoke", {"data": {"seed": 1}})) != run_id_of(a)
    assert run_id_of(resolve(RunSpec("convlstm"), "smoke", {"train": {"lr": 1e-4}})) != run_id_of(a)


def test_overrides_parse_yaml_scalars_and_reject_malformed_items():
    assert parse_overrides(["a.b=1", "a.c=0.5", "d=true", "e=[1, 2]", "f=text"]) == {
        "a": {"b": 1, "c": 0.5}, "d": True, "e": [1, 2], "f": "text"}
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        parse_overrides(["novalue"])


def test_smoke_suite_expands_to_two_runs_and_seeds_multiply():
    suite = load_suite("smoke")
    runs = expand(suite, "smoke")
    assert [label for label, _ in runs] == ["convlstm", "copy_last"]
    seeded = expand(suite, "smoke", seeds=3)
    assert len(seeded) == 6 and len({run_id_of(cfg) for _, cfg in seeded}) == 6
