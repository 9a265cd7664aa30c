"""Shared fixtures: offline Hugging Face, one data cache for the session, a small run config."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["HF_HUB_OFFLINE"] = "1"
REPO = Path(__file__).resolve().parent.parent
os.environ["VPBENCH_CONFIGS"] = str(REPO / "configs")


@pytest.fixture(scope="session", autouse=True)
def data_cache(tmp_path_factory) -> Path:
    """Every test shares one prepared-data folder, so each data set is generated once."""
    path = tmp_path_factory.mktemp("vpbench-data")
    os.environ["VPBENCH_DATA"] = str(path)
    return path


@pytest.fixture
def cli_env(data_cache) -> dict[str, str]:
    """The environment for ``vpbench`` subprocesses."""
    env = dict(os.environ)
    env["VPBENCH_DATA"] = str(data_cache)
    return env


def vpbench_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "vpbench.cli", *args]


def require_lpips_assets() -> bool:
    """True when the LPIPS weights must be present (CI sets VPBENCH_REQUIRE_LPIPS=1)."""
    return os.environ.get("VPBENCH_REQUIRE_LPIPS") == "1"
