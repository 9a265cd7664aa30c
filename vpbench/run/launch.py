"""From a command line's choices to executed runs: what ``vpbench run``, ``config`` and ``profile`` do.

:func:`select` resolves a suite, a run file or one model config into ``(label, config)`` pairs (each
distinct config once); :func:`run` checks everything that can be checked before the store is opened
(device, fast paths, logging, data sizes, data sets that must exist), plans the runs once
(:func:`vpbench.run.plan.identify`) and hands them to the executor asked for: in this process
(under ``torchrun``, in each of its processes) or on Ray. The executors differ only in where
:func:`~vpbench.run.execute.execute_run` runs.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vpbench.config.resolution import RunSpec, find_config, load_run_file, parse_overrides, resolve
from vpbench.config.schema import RunConfig
from vpbench.config.suites import Suite, expand, load_suite, paper_tables
from vpbench.errors import VpbenchError
from vpbench.store import Store

GEOMETRIES = {"human36m": "geometry_human36m", "ucf": "geometry_ucf", "sjtu4k": "geometry_sjtu4k"}


@dataclass
class Selection:
    """What to run: a suite, a run file, or one model config (with a dataset and a train config)."""

    suite: str | None = None
    config: Path | None = None
    model: str | None = None
    dataset: str = "moving_objects"
    train: str = "default"
    scale: str = "smoke"
    overrides: list[str] = field(default_factory=list)  # KEY=VALUE
    seeds: int | None = None


def select(selection: Selection) -> tuple[Suite | None, list[tuple[str, RunConfig]]]:
    """The suite (None for a run file or a model) and its ``(label, config)`` runs, validated."""
    overrides = parse_overrides(selection.overrides)
    if selection.suite:
        suite = load_suite(selection.suite)
        return suite, expand(suite, selection.scale, selection.seeds, overrides)
    if selection.config:
        spec = load_run_file(selection.config)
        return None, [(spec.model, resolve(spec, selection.scale, overrides))]
    find_config("models", selection.model)
    return None, [(selection.model, resolve(RunSpec(selection.model, selection.dataset, selection.train),
                                            selection.scale, overrides))]


def fix_profile_device(runs: list[tuple[str, RunConfig]], device_type: str) -> list[tuple[str, RunConfig]]:
    """Profile-only runs name the device they time, so CPU and GPU profiles are different runs."""
    fixed = []
    for label, cfg in runs:
        if cfg.task == "profile" and cfg.profile.device == "auto":
            cfg = dataclasses.replace(cfg, profile=dataclasses.replace(cfg.profile, device=device_type))
        fixed.append((label, cfg))
    return fixed


def relaunch_with_torchrun(argv: list[str], processes: int, restarts: int) -> int:
    """``vpbench run --ddp N ...`` -> ``torchrun --standalone --nproc-per-node N -m vpbench run ...``."""
    kept, skip = [], False
    for token in argv:
        if skip:
            skip = False
        elif token in ("--ddp", "--ddp-restarts"):
            skip = True
        elif not token.startswith(("--ddp=", "--ddp-restarts=")):
            kept.append(token)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
               f"--max-restarts={restarts}", "-m", "vpbench", *kept]
    print("+ " + " ".join(command[1:]), file=sys.stderr, flush=True)
    return subprocess.call(command)


def run_workers(argv: list[str], workers: int, selection: Selection) -> int:
    """``vpbench run --workers N ...``: N processes of ``vpbench run ...`` on one store, one torch thread each.

    Each walks the same runs and takes the next one no other process holds (the run folder's lock,
    :func:`vpbench.run.plan.claim`), so together they run every run once; each prints the runs it ran.
    The selection is checked here first, so a bad config is one error, not N. Exit code: the worst.
    """
    select(selection)
    kept, skip = [], False
    for token in argv:
        if skip:
            skip = False
        elif token == "--workers":
            skip = True
        elif not token.startswith("--workers="):
            kept.append(token)
    if "--no-progress" not in kept:
        kept.append("--no-progress")  # N progress bars cannot share one terminal
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}  # N processes x 2 threads thrash 2 cores
    processes = [subprocess.Popen([sys.executable, "-m", "vpbench", *kept, "--worker", f"{k}/{workers}"], env=env)
                 for k in range(1, workers + 1)]
    return max(process.wait() for process in processes)


def run(selection: Selection, store_path: Path, device: str = "auto", fast: str = "none", progress: bool = True,
        log: str = "none", retry_failed: bool = True, executor: str = "inprocess", ray_options: dict | None = None,
        worker: str | None = None) -> int:
    """Run the selection into the store; exit code 1 when a run failed. ``ray_options``: ``address``,
    ``cpus_per_run``, ``gpus_per_run``, ``max_retries`` (with ``executor="ray"``). ``worker``: ``"K/N"`` in
    one of :func:`run_workers`'s processes, which reports only the runs it ran."""
    import torch

    from vpbench.data import check_fits
    from vpbench.measure.profiling import check_trainable
    from vpbench.run.distributed import SINGLE, join, launched_by_torchrun, leave
    from vpbench.run.execute import resolve_device
    from vpbench.run.fast import FastPaths
    from vpbench.run.plan import identify
    from vpbench.run.tensorboard_log import check_available

    suite, runs = select(selection)  # every config is validated before the store is opened
    ray_options = ray_options or {}
    if executor == "ray" and launched_by_torchrun():
        raise VpbenchError("--executor ray under torchrun (or --ddp): a Ray task is one process; use one or the other")
    if executor == "ray":  # the tasks' devices are on the cluster's nodes, not here
        gpus = ray_options.get("gpus_per_run", 0)
        device_type = "cuda" if gpus > 0 else "cpu"
        if device not in ("auto", device_type):
            raise VpbenchError(f"--device {device} with --gpus-per-run {gpus:g}: Ray tasks train "
                               f"on {device_type} (ask for GPUs with --gpus-per-run)")
    else:
        here = resolve_device(device)
        device_type = here.type
    try:
        paths = FastPaths.parse(fast)
    except ValueError as exc:
        raise VpbenchError(f"--fast: {exc}") from None
    check_available(log)
    check_fits([cfg for _, cfg in runs if cfg.task == "train"])
    on_gpu = executor == "inprocess" and here.type == "cuda"
    check_trainable([cfg for _, cfg in runs if cfg.task == "train"],
                    torch.cuda.get_device_properties(here).total_memory if on_gpu else None)
    planned = identify(fix_profile_device(runs, device_type))  # a missing data set is an error here
    group, here = join(here) if executor == "inprocess" else (SINGLE, None)  # under torchrun: rank, device
    store = Store(store_path)
    if group.main:
        store.check_writable()  # a bad store is one line before any run folder exists
        if suite is not None:  # what the report needs of the suite, as it is run now (the YAML may change later)
            store.record_suite(_definition(suite, runs))
    if executor == "ray":
        try:
            from vpbench.run.ray_executor import RayExecutor
        except ImportError as exc:
            raise VpbenchError(f"--executor ray: Ray is not installed ({exc}); pip install -e '.[ray]'") from None
        runner = RayExecutor(store, device=device_type, progress=progress, retry_failed=retry_failed, fast=paths,
                             log=log, **ray_options)
    else:
        from vpbench.run.executors import InProcessExecutor

        runner = InProcessExecutor(store, device=here, progress=progress, retry_failed=retry_failed, fast=paths,
                                   group=group, log=log, worker=worker)
    outcomes = runner.run(planned, suite=suite.name if suite else None)
    leave(group)
    counts = {status: sum(o.status == status for o in outcomes) for status in ("complete", "skipped", "failed", "busy")}
    if worker is not None:  # the others ran what this one skipped
        counts = {"complete": counts["complete"], "failed": counts["failed"]}
    if group.main:
        who = f"worker {worker} " if worker else ""
        print(f"{who}done: " + (", ".join(f"{n} {status}" for status, n in counts.items() if n) or "nothing to run"),
              flush=True)
    return 1 if counts["failed"] else 0


def _definition(suite: Suite, runs: list[tuple[str, RunConfig]]) -> dict[str, Any]:
    definition = suite.record(paper_tables())
    definition["datasets"] = list(dict.fromkeys(cfg.sources["data"] for _, cfg in runs))  # as the runs name them
    return definition


def print_configs(selection: Selection) -> int:
    """``vpbench config``: each resolved config and its run id; runs nothing."""
    from vpbench.run.plan import identify

    for run in identify(select(selection)[1]):
        print(f"# {run.label}: run {run.run_id}")
        print(run.cfg.to_yaml())
    return 0


def profile(model: str, geometry: str, scale: str, device: str, overrides: list[str], store_path: Path,
            **measure: Any) -> int:
    """``vpbench profile``: one model's profile-only run at a paper geometry (or HxW), stored and printed.

    ``measure``: ``samples``, ``warmup``, ``throughput_batch``, ``precision``, ``fvcore`` (the profile section).
    """
    from vpbench.report.profiles import format_profile
    from vpbench.run.executors import InProcessExecutor
    from vpbench.run.plan import identify

    find_config("models", model)
    layers = parse_overrides(overrides)
    if geometry in GEOMETRIES:
        dataset = GEOMETRIES[geometry]
    else:
        height, sep, width = geometry.lower().partition("x")
        if not (sep and height.isdigit() and width.isdigit()):
            raise VpbenchError(f"--geometry {geometry!r}: expected human36m, ucf, sjtu4k or HxW (e.g. 512x768)")
        dataset = "moving_objects"
        layers.setdefault("data", {}).update(height=int(height), width=int(width))
    layers["task"] = "profile"
    layers.setdefault("profile", {}).update(measure)
    config = resolve(RunSpec(model, dataset), scale, layers)
    ((label, config),) = fix_profile_device([(model, config)], device)
    store = Store(store_path)
    store.check_writable()
    outcome, = InProcessExecutor(store, device=config.profile.device, progress=False).run(identify([(label, config)]))
    record = store.get(outcome.run_id)
    if record["status"] != "complete":
        raise VpbenchError(f"profiling {model} failed: {record['error']}")
    print(format_profile(label, record["profile"]))
    return 0
