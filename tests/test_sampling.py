import pytest

from vpbench.config.schema import SamplingConfig
from vpbench.run.sampling import forcing


def test_thuml_schedule_falls_linearly_then_stops():
    cfg = SamplingConfig(kind="thuml", start=1.0, rate=2e-5, stop=50_000)
    assert forcing(cfg, 0) == (1.0, pytest.approx(1 - 2e-5))
    assert forcing(cfg, 24_999)[1] == pytest.approx(0.5)
    assert forcing(cfg, 49_999)[1] == pytest.approx(0.0)
    assert forcing(cfg, 60_000) == (1.0, 0.0)


def test_reverse_schedule_of_predrnn_v2():
    cfg = SamplingConfig(kind="reverse", reverse_start=100, reverse_stop=200, alpha=50.0)
    assert forcing(cfg, 0) == (0.5, 0.5)
    context, teacher = forcing(cfg, 150)
    assert context == pytest.approx(1 - 0.5 * 2.718281828**-1, rel=1e-6) and teacher == pytest.approx(0.25)
    assert forcing(cfg, 200) == (1.0, 0.0)


def test_fixed_schedules():
    assert forcing(SamplingConfig(kind="none"), 10) == (1.0, 0.0)
    assert forcing(SamplingConfig(kind="teacher"), 10) == (1.0, 1.0)
