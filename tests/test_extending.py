"""The docs' worked examples, installed from outside the package: a model and a data source, each one
file registered by entry points (docs/adding-a-model.md, docs/adding-a-data-source.md)."""

from __future__ import annotations

import re
import shutil
import tomllib

import pytest
from conftest import REPO, cli

DOCS = REPO / "docs"


def _block(doc: str, language: str) -> str:
    """The first fenced ``language`` block of ``docs/<doc>``."""
    match = re.search(rf"```{language}\n(.*?)```", (DOCS / doc).read_text(), re.S)
    assert match, f"docs/{doc} has no {language} block"
    return match.group(1)


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """A distribution outside vpbench holding the docs' two files, found through its entry points."""
    from vpbench.data import sources
    from vpbench.interface import registry

    site = tmp_path / "site"
    package = site / "vpbench_example_plugin"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "extrapolate.py").write_text(_block("adding-a-model.md", "python"))
    (package / "sliding_squares.py").write_text(_block("adding-a-data-source.md", "python"))
    dist = site / "vpbench_example_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: vpbench-example-plugin\nVersion: 0.1\n")
    lines = []  # the docs' pyproject tables, as the entry_points.txt that pip would write from them
    for doc, module in (("adding-a-model.md", "my_models."), ("adding-a-data-source.md", "my_data.")):
        for group, points in tomllib.loads(_block(doc, "toml"))["project"]["entry-points"].items():
            lines += [f"[{group}]", *(f"{name} = {target.replace(module, 'vpbench_example_plugin.')}"
                                      for name, target in points.items()), ""]
    (dist / "entry_points.txt").write_text("\n".join(lines))
    configs = tmp_path / "configs"
    shutil.copytree(REPO / "configs", configs)
    (configs / "models" / "extrapolate.yaml").write_text(_block("adding-a-model.md", "yaml"))
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("VPBENCH_CONFIGS", str(configs))
    registry._entry_points.cache_clear()
    sources.sources.cache_clear()
    yield tmp_path
    registry._entry_points.cache_clear()
    sources.sources.cache_clear()


def test_a_model_from_outside_the_package_is_listed_trained_and_stored(plugin, capsys):
    from vpbench.store import Store

    assert cli("models") == 0
    assert "extrapolate" in capsys.readouterr().out
    store = plugin / "results.sqlite"
    assert cli("run", "--model", "extrapolate", "--store", str(store), "--no-progress", "--set", "train.steps=4",
               "--set", "eval.lpips=false") == 0
    (record,) = Store(store).runs()
    assert record["status"] == "complete" and record["model"] == "extrapolate"
    assert record["profile"]["parameters"]["params"] == 3  # one gain per RGB channel
    assert record["metrics"]["training"]["steps"] == 4 and record["metrics"]["psnr"]["mean"] > 0


def test_a_data_source_from_outside_the_package_builds_its_clips_and_runs(plugin):
    import numpy as np

    from vpbench.config.resolution import RunSpec, resolve
    from vpbench.data import dataset_path, load_splits
    from vpbench.store import Store

    config = resolve(RunSpec("copy_last"), "smoke", {"data": {"source": "sliding_squares"}})
    clip = load_splits(config.data, progress=False)["test"][0].numpy()  # [T, C, H, W]
    moved = [np.argmax(clip[t, 0].max(0)) for t in range(2)]  # the square's left edge in frames 0 and 1
    assert clip.max() == 255 and moved[1] - moved[0] == 1
    assert dataset_path(config.data).name.startswith("sliding_squares-")
    store = plugin / "results.sqlite"
    assert cli("run", "--model", "copy_last", "--set", "data.source=sliding_squares", "--store", str(store),
               "--no-progress", "--set", "eval.lpips=false") == 0
    (record,) = Store(store).runs()
    assert record["status"] == "complete" and record["config"]["data"]["source"] == "sliding_squares"
