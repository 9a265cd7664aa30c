"""A suite's definition is stored with its runs: tables render the same after the suite file changes."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
import yaml

from conftest import REPO, cli
from vpbench.report.layouts import row_labels
from vpbench.store import Store
from vpbench.config.suites import load_suite, suite_record
from vpbench.report.suite_record import SuiteRecord


def _table(capsys, *args: str) -> str:
    capsys.readouterr()
    assert cli("table", *args) == 0
    return capsys.readouterr().out


@pytest.mark.slow
def test_a_table_renders_the_same_after_the_suite_yaml_changes(smoke_run, tmp_path, monkeypatch, capsys):
    configs = tmp_path / "configs"
    shutil.copytree(REPO / "configs", configs)
    monkeypatch.setenv("VPBENCH_CONFIGS", str(configs))
    store = str(smoke_run.copy(tmp_path))
    before = {fmt: _table(capsys, "--suite", "smoke", "--format", fmt, "--store", store)
              for fmt in ("markdown", "latex", "csv")}

    suite_file = configs / "suites" / "smoke.yaml"
    body = yaml.safe_load(suite_file.read_text())
    body["models"] = [{"config": "copy_last", "label": "last frame"}, {"config": "convlstm", "label": "ConvLSTM-k5"}]
    body["version"] = 7
    suite_file.write_text(yaml.safe_dump(body))
    (configs / "reference" / "paper_tables.yaml").write_text("{}\n")  # the published numbers are stored too

    for fmt, text in before.items():
        assert _table(capsys, "--suite", "smoke", "--format", fmt, "--store", store) == text
    exported = tmp_path / "export"
    assert cli("export", "--suite", "smoke", "--out", str(exported), "--store", store) == 0
    assert _table(capsys, "--suite", "smoke", "--from", str(exported)) == before["markdown"]
    assert "convlstm" in before["markdown"] and "ConvLSTM-k5" not in before["markdown"]


def test_runs_whose_label_left_the_suite_are_kept_last_and_named(tmp_path):
    suite = SuiteRecord.from_record(suite_record("smoke"))
    runs = pd.DataFrame({"label": ["copy_last", "old name", "convlstm"], "order": [1, 2, 0]})
    assert row_labels(runs, suite) == ["convlstm", "copy_last", "old name"]


def test_the_store_keeps_the_last_definition_of_a_suite(tmp_path):
    store = Store(tmp_path / "results.sqlite")
    assert store.suite_definition("smoke") is None
    suite = load_suite("smoke")
    store.record_suite(suite.record({"table3": {}}))
    stored = store.suite_definition("smoke")
    assert [m["label"] for m in stored["models"]] == [e.label for e in suite.models]
    assert stored["version"] == suite.version and stored["paper"] == {"table3": {}}
