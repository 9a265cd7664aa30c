"""The speed benchmark and the GPU script run on the CPU at smoke size (``--device cpu --quick``)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import pytest
import torch

from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import speed  # noqa: E402
import step_ceiling  # noqa: E402


def test_speed_quick_times_every_variant_and_checks_agreement(tmp_path, capsys):
    code = speed.main(["--device", "cpu", "--quick", "--models", "convlstm,e3dlstm,strpm", "--out", str(tmp_path)])
    assert code == 0
    result = json.loads((tmp_path / "speed.json").read_text())
    rows = result["rows"]
    cells = {(r["model"], r["kind"], r["batch"]) for r in rows}
    assert cells == {(m, k, b) for m in ("convlstm", "e3dlstm", "strpm") for k, b in (("train", 4), ("infer", 1), ("infer", 8))}
    assert {r["variant"] for r in rows} == {"plain", "fuse", "channels_last", "fuse+channels_last"}
    assert all(r["agrees"] and r["ms"] > 0 and r["flops"] > 0 for r in rows)
    assert all(r["speedup"] == 1.0 for r in rows if r["variant"] == "plain")
    table = (tmp_path / "speed.md").read_text()
    assert "| e3dlstm | train | 4 | fuse |" in table and "× plain" in table


def test_speed_reports_a_failing_model_and_exits_nonzero(tmp_path):
    code = speed.main(["--device", "cpu", "--quick", "--models", "convlstm,no_such_model", "--out", str(tmp_path)])
    assert code == 1
    rows = json.loads((tmp_path / "speed.json").read_text())["rows"]
    assert any(r["model"] == "no_such_model" and "no_such_model" in r["error"] for r in rows)
    assert any(r["model"] == "convlstm" and r["agrees"] for r in rows)  # the others still measured


def test_step_ceiling_records_each_heavy_call_with_a_replayable_signature():
    conv, linear = torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.Linear(8, 5)
    recorder = step_ceiling.HeavyCalls()
    with recorder:
        out = linear(conv(torch.randn(2, 3, 6, 6)).mean((2, 3)))
        out.sum().backward()
    ops = Counter()
    for (func, _, _), count in recorder.calls.items():
        ops[func.__name__] += count
    assert ops["convolution.default"] == 1 and ops["convolution_backward.default"] == 1
    assert ops["addmm.default"] == 1 and ops["mm.default"] == 2  # linear forward; its input and weight gradients
    for (func, args, kwargs) in recorder.calls:
        assert step_ceiling.seconds_of(step_ceiling.replayable(func, args, kwargs)) > 0


def test_step_ceiling_quick_bounds_every_model_it_is_given(tmp_path):
    assert step_ceiling.main(["--quick", "--models", "convlstm,e3dlstm", "--out", str(tmp_path)]) == 0
    rows = json.loads((tmp_path / "step_ceiling.json").read_text())["rows"]
    assert [r["model"] for r in rows] == ["convlstm", "e3dlstm"]
    for r in rows:
        assert r["heavy_calls"] >= r["distinct_calls"] > 0
        assert len(r["step_ms_all"]) == len(r["heavy_ms_all"]) == 1 and r["step_ms"] > 0 and r["heavy_ms"] > 0
        model, geometry = speed.build(r["model"], "moving_digits", "smoke", None, torch.device("cpu"))
        plain = speed.Case("train", model, speed.FastPaths(), geometry, speed.TRAIN_BATCH, torch.device("cpu"))
        assert r["flops"] == speed.count_flops(plain)  # recording the calls neither hides nor repeats any
    assert "| e3dlstm |" in (tmp_path / "step_ceiling.md").read_text()


@pytest.mark.slow
def test_gpu_script_runs_on_the_cpu_quick(tmp_path, cli_env):
    # speed.py itself is tested above; here one model shows the script's wiring (SPEED_MODELS)
    done = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu.sh"), str(tmp_path), "--device", "cpu", "--quick"],
                          capture_output=True, text=True, env={**cli_env, "PYTHON": sys.executable,
                                                               "SPEED_MODELS": "convlstm"}, cwd=REPO,
                          timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert json.loads((tmp_path / "speed.json").read_text())["rows"]
    table = (tmp_path / "smoke.md").read_text()  # --quick trains the smoke suite: the wiring of step 2
    assert "convlstm" in table and "copy_last" in table
