"""The ``vpbench`` command: run | config | table | plot | export | profile | show | models | data.

A user mistake (unknown model, key or scale, missing file, impossible geometry) prints one line,
``vpbench: error: ...``, and exits with code 2 before the store is touched.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from vpbench.errors import VpbenchError
from vpbench.store import DEFAULT_STORE

FORMATS = ("markdown", "latex", "csv", "html")


class _Parser(argparse.ArgumentParser):
    """argparse whose mistakes are one line, ``vpbench: error: ...``, and exit code 2 like every other."""

    def error(self, message: str):
        self.exit(2, f"vpbench: error: {self.prog.removeprefix('vpbench ')}: {message} (see {self.prog} --help)\n")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {value}")
    return value


def _size(text: str) -> tuple[int, int]:
    height, sep, width = text.lower().partition("x")
    if not (sep and height.isdigit() and width.isdigit() and int(height) > 0 and int(width) > 0):
        raise argparse.ArgumentTypeError(f"expected HxW, e.g. 128x128, got {text!r}")
    return int(height), int(width)


def _yes_no(text: str) -> bool:
    if text not in ("yes", "no"):
        raise argparse.ArgumentTypeError(f"expected yes or no, got {text!r}")
    return text == "yes"


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="vpbench", description="A benchmark suite for video predictors.")
    commands = parser.add_subparsers(dest="command", required=True)

    def selection(sub: argparse.ArgumentParser) -> None:
        what = sub.add_mutually_exclusive_group(required=True)
        what.add_argument("--suite", help="a suite under configs/suites")
        what.add_argument("--config", type=Path, help="a run file: 'uses: {model, dataset, train}' + overrides")
        what.add_argument("--model", help="a model config under configs/models (with --dataset, --train)")
        sub.add_argument("--dataset", default="moving_objects", help="with --model: a config under configs/datasets")
        sub.add_argument("--train", default="default", help="with --model: a config under configs/train")
        sub.add_argument("--scale", default="smoke", help="smoke | small | paper (default: smoke)")
        sub.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                         help="override a config value, e.g. --set train.steps=200 (repeatable)")
        sub.add_argument("--seeds", type=_positive, help="with --suite: runs per model and dataset (>= 1)")

    run = commands.add_parser("run", help="run a suite or one config, skipping runs already complete")
    selection(run)
    run.add_argument("--store", type=Path, default=DEFAULT_STORE, help=f"results store (default {DEFAULT_STORE})")
    run.add_argument("--device", default="auto", help="auto | cpu | cuda[:N]")
    run.add_argument("--fast", default="none", metavar="SWITCHES",
                     help="fast paths to train and evaluate with, e.g. fuse,channels_last (or compile, all, none); "
                          "they change no run id, and the run records them (vpbench/run/fast.py)")
    run.add_argument("--no-progress", action="store_true",
                     help="hide progress: the bars on a terminal, the line per validation elsewhere")
    run.add_argument("--log", choices=("none", "tensorboard"), default="none",
                     help="tensorboard: also write each run's losses, learning rate, gradient norm and a prediction "
                          "strip per validation under <runs dir>/<run id>/tb/ (pip install -e '.[tensorboard]'); "
                          "changes no run id (default none)")
    run.add_argument("--retry-failed", type=_yes_no, default=True, metavar="yes|no",
                     help="run again the runs the store holds as failed (default yes)")
    run.add_argument("--executor", choices=("inprocess", "ray"), default="inprocess",
                     help="inprocess: one run after the other in this process (default); ray: each run a Ray task "
                          "on a cluster, the store written here (pip install -e '.[ray]'; vpbench/run/ray_executor.py)")
    run.add_argument("--address", help="with --executor ray: the cluster, auto or HOST:PORT (default: start a local one)")
    run.add_argument("--cpus-per-run", type=float, default=1, metavar="N",
                     help="with --executor ray: CPUs each run asks for, and its torch threads (default 1)")
    run.add_argument("--gpus-per-run", type=float, default=0, metavar="N",
                     help="with --executor ray: GPUs each run asks for (default 0: the run trains on the CPU)")
    run.add_argument("--max-retries", type=int, default=3, metavar="K",
                     help="with --executor ray: times a run whose worker died is started again; it resumes from its "
                          "last checkpoint (default 3)")
    run.add_argument("--ddp", type=_positive, metavar="N",
                     help="train each run with N processes on this machine: shorthand for torchrun --standalone "
                          "--nproc-per-node N -m vpbench run ... (DistributedDataParallel; gloo on CPU, NCCL on GPU)")
    run.add_argument("--ddp-restarts", type=int, default=3, metavar="K",
                     help="with --ddp: times torchrun starts the processes again after one dies; each start resumes "
                          "from the last checkpoint (default 3)")

    config = commands.add_parser("config", help="print the resolved config(s) and run ids; runs nothing")
    selection(config)

    store_help = f"results store (default {DEFAULT_STORE})"
    from_help = "read the runs.csv and clips.csv that `vpbench export` wrote to this folder instead of a store"
    table = commands.add_parser("table", help="render stored results (a suite in its paper layout)")
    table.add_argument("--suite", help="a suite under configs/suites, in its paper layout (default: the suite of the "
                       "most recent run in the store)")
    table.add_argument("--runs", choices=("all",), help="all: every complete run in the store, one row each "
                       "(no suite layout)")
    table.add_argument("--format", choices=FORMATS, default="markdown", help="markdown | latex | csv | html (default markdown)")
    table.add_argument("--paper", action="store_true", help="add the paper's published numbers beside ours")
    table.add_argument("--store", type=Path, default=DEFAULT_STORE, help=store_help)
    table.add_argument("--from", dest="source", type=Path, help=from_help)

    plot = commands.add_parser("plot", help="draw a suite's plots (PNG and PDF)")
    plot.add_argument("--suite", required=True, help="a suite under configs/suites")
    plot.add_argument("--out", type=Path, required=True, help="the folder to write the plots to (created if missing)")
    plot.add_argument("--store", type=Path, default=DEFAULT_STORE, help=store_help)
    plot.add_argument("--from", dest="source", type=Path, help=from_help)

    export = commands.add_parser("export", help="write a suite's results as runs.csv and clips.csv")
    export.add_argument("--suite", required=True, help="a suite under configs/suites")
    export.add_argument("--out", type=Path, required=True, help="the folder to write the CSV files to (created if missing)")
    export.add_argument("--store", type=Path, default=DEFAULT_STORE, help=store_help)
    export.set_defaults(source=None)

    site = commands.add_parser("site", help="a static HTML site of the suites' tables, plots, strips and runs "
                               "(works from file://, no network)")
    site.add_argument("--out", type=Path, required=True, help="the folder to write the site to (created if missing)")
    site.add_argument("--suite", nargs="+", action="extend", metavar="SUITE",
                      help="only these suites (default: every suite in the store or under --from)")
    site.add_argument("--from", dest="source", nargs="+", action="extend", type=Path, metavar="DIR",
                      help="exported folders (`vpbench export`), or a folder of them such as leaderboards/, "
                           "instead of a store; their plots and strips are linked, not copied")
    site.add_argument("--store", type=Path, default=DEFAULT_STORE, help=store_help)

    show = commands.add_parser("show", help="print one stored run")
    show.add_argument("run_id", help="a run id or a unique prefix")
    show.add_argument("--store", type=Path, default=DEFAULT_STORE, help=store_help)

    samples = commands.add_parser("samples", help="several models' predictions of one test clip, side by side")
    samples.add_argument("--suite", required=True, help="a suite under configs/suites; its rows in suite order")
    samples.add_argument("--dataset", help="one of the suite's data sets (default: the first with results)")
    samples.add_argument("--clip", type=int, default=0, help="the test clip's index among those written at evaluation "
                         "(eval.samples of them; default 0)")
    samples.add_argument("--out", type=Path, required=True, help="the PNG to write")
    samples.add_argument("--store", type=Path, default=DEFAULT_STORE, help=f"results store (default {DEFAULT_STORE})")

    commands.add_parser("models", help="list the registered models")

    data = commands.add_parser("data", help="prepare, list, describe and verify data sets of real footage")
    data_commands = data.add_subparsers(dest="data_command", required=True)
    prepare = data_commands.add_parser("prepare", help="decode videos or frame folders into a data set")
    prepare.add_argument("--source", type=Path, required=True, help="a folder of videos or frame folders, or one video")
    prepare.add_argument("--layout", required=True,
                         help="videos | frames | ucf-sports | human36m | sjtu4k (the last three: the paper's protocols)")
    prepare.add_argument("--name", required=True, help="the data set's name (data.source: prepared, data.name: NAME)")
    prepare.add_argument("--size", type=_size, help="stored HxW, e.g. 128x128 (default: the layout's, or the footage's own)")
    prepare.add_argument("--stride", type=_positive, help="keep every K-th frame (default: the layout's)")
    prepare.add_argument("--clip-length", type=_positive, help="frames per clip, context + horizon (default: the layout's)")
    prepare.add_argument("--fit", choices=("resize", "crop", "pad"), help="how frames reach HxW before the Lanczos resize")
    prepare.add_argument("--splits", type=Path, help="a folder with train.txt and test.txt (STRPM's split lists)")
    prepare.add_argument("--divisible-by", type=_positive,
                         help="H and W must be multiples of the codec's patch x stride ratio (default: the layout's)")
    prepare.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    data_commands.add_parser("list", help="the prepared data sets")
    info = data_commands.add_parser("info", help="one prepared data set's manifest: sources, decoder, splits")
    info.add_argument("name", help="a prepared data set (see `vpbench data list`)")
    verify = data_commands.add_parser("verify", help="hash every file of a prepared data set against its manifest")
    verify.add_argument("name", help="a prepared data set (see `vpbench data list`)")

    profile = commands.add_parser("profile", help="parameters, FLOPs and latency of one model (stored as a profile-only run)")
    profile.add_argument("--model", required=True, help="a model config under configs/models")
    profile.add_argument("--geometry", default="human36m",
                         help="human36m | ucf | sjtu4k (the paper's geometries) or HxW (p 8, sr 8)")
    profile.add_argument("--scale", default="paper", help="the scale of the model and geometry (default: paper)")
    profile.add_argument("--device", default="auto", help="auto | cpu | cuda[:N]")
    profile.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                         help="fp32 | bf16 (autocast; CUDA) for the timed forwards (default fp32)")
    profile.add_argument("--samples", type=_positive, default=10, help="timed forwards per batch size (default 10)")
    profile.add_argument("--warmup", type=int, default=2, help="untimed forwards first (default 2)")
    profile.add_argument("--throughput-batch", type=int, default=0, help="a second timed batch size (0: none)")
    profile.add_argument("--fvcore", action="store_true", help="also count with fvcore (traces a real forward)")
    profile.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                         help="override a config value, e.g. --set model.layers=4 (repeatable)")
    profile.add_argument("--store", type=Path, default=DEFAULT_STORE, help=store_help)
    return parser


def _resolve_runs(args: argparse.Namespace):
    from vpbench.config.resolution import RunSpec, find_config, load_run_file, parse_overrides, resolve, run_id_of
    from vpbench.config.suites import expand, load_suite

    overrides = parse_overrides(args.overrides)
    if args.suite:
        suite = load_suite(args.suite)
        return suite.name, expand(suite, args.scale, args.seeds, overrides)
    if args.config:
        spec = load_run_file(args.config)
        return None, [(spec.model, resolve(spec, args.scale, overrides))]
    find_config("models", args.model)
    return None, [(args.model, resolve(RunSpec(args.model, args.dataset, args.train), args.scale, overrides))]


def _fix_profile_device(runs, device_type: str):
    """Profile-only runs name the device they time, so CPU and GPU profiles are different runs."""
    import dataclasses

    fixed = []
    for label, cfg in runs:
        if cfg.task == "profile" and cfg.profile.device == "auto":
            cfg = dataclasses.replace(cfg, profile=dataclasses.replace(cfg.profile, device=device_type))
        fixed.append((label, cfg))
    return fixed


def _launch_ddp(args: argparse.Namespace) -> int:
    """``vpbench run --ddp N ...`` -> ``torchrun --standalone --nproc-per-node N -m vpbench run ...``."""
    import subprocess

    argv, skip = [], False
    for token in args.argv:
        if skip:
            skip = False
        elif token in ("--ddp", "--ddp-restarts"):
            skip = True
        elif not token.startswith(("--ddp=", "--ddp-restarts=")):
            argv.append(token)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={args.ddp}",
               f"--max-restarts={args.ddp_restarts}", "-m", "vpbench", *argv]
    print("+ " + " ".join(command[1:]), file=sys.stderr, flush=True)
    return subprocess.call(command)


def cmd_run(args: argparse.Namespace) -> int:
    if args.ddp:
        return _launch_ddp(args)
    suite, runs = _resolve_runs(args)  # every config is validated before the store is opened
    from vpbench.data import check_fits
    from vpbench.run.distributed import SINGLE, join, launched_by_torchrun, leave
    from vpbench.run.execute import resolve_device
    from vpbench.run.executors import InProcessExecutor
    from vpbench.run.plan import identify
    from vpbench.run.fast import FastPaths
    from vpbench.store import Store

    if args.executor == "ray" and launched_by_torchrun():
        raise VpbenchError("--executor ray under torchrun (or --ddp): a Ray task is one process; use one or the other")
    if args.executor == "ray":  # the tasks' devices are on the cluster's nodes, not here
        device_type = "cuda" if args.gpus_per_run > 0 else "cpu"
        if args.device not in ("auto", device_type):
            raise VpbenchError(f"--device {args.device} with --gpus-per-run {args.gpus_per_run:g}: Ray tasks train "
                               f"on {device_type} (ask for GPUs with --gpus-per-run)")
    else:
        device = resolve_device(args.device)
        device_type = device.type
    try:
        fast = FastPaths.parse(args.fast)
    except ValueError as exc:
        raise VpbenchError(f"--fast: {exc}") from None
    from vpbench.run.tensorboard_log import check_available

    check_available(args.log)
    check_fits([cfg for _, cfg in runs if cfg.task == "train"])
    planned = identify(_fix_profile_device(runs, device_type))  # a missing data set is an error here
    group, device = join(device) if args.executor == "inprocess" else (SINGLE, None)  # under torchrun: rank, device
    store = Store(args.store)
    if group.main:
        store.check_writable()  # a bad store is one line before any run folder exists
    if args.suite and group.main:  # what the report needs of the suite, as it is run now (the YAML may change later)
        from vpbench.config.suites import suite_record

        definition = suite_record(args.suite)
        definition["datasets"] = list(dict.fromkeys(cfg.sources["data"] for _, cfg in runs))  # as the runs name them
        store.record_suite(definition)
    if args.executor == "ray":
        try:
            from vpbench.run.ray_executor import RayExecutor
        except ImportError as exc:
            raise VpbenchError(f"--executor ray: Ray is not installed ({exc}); pip install -e '.[ray]'") from None
        executor = RayExecutor(store, address=args.address, cpus_per_run=args.cpus_per_run,
                               gpus_per_run=args.gpus_per_run, max_retries=args.max_retries, device=device_type,
                               progress=not args.no_progress, retry_failed=args.retry_failed, fast=fast,
                               log=args.log)
    else:
        executor = InProcessExecutor(store, device=device, progress=not args.no_progress,
                                     retry_failed=args.retry_failed, fast=fast, group=group, log=args.log)
    outcomes = executor.run(planned, suite=suite)
    leave(group)
    counts = {status: sum(o.status == status for o in outcomes) for status in ("complete", "skipped", "failed", "busy")}
    if group.main:
        print("done: " + ", ".join(f"{n} {status}" for status, n in counts.items() if n), flush=True)
    return 1 if counts["failed"] else 0


def cmd_config(args: argparse.Namespace) -> int:
    from vpbench.config.resolution import run_id_of

    _, runs = _resolve_runs(args)
    for label, cfg in runs:
        print(f"# {label}: run {run_id_of(cfg)}")
        print(cfg.to_yaml())
    return 0


def _suite_frames(args: argparse.Namespace):
    """``(suite, runs, clips)`` from ``--from DIR`` (exported CSV) or from the store."""
    from vpbench.report import records
    from vpbench.store import Store

    if args.source is not None:
        runs, clips = records.from_csv(args.source)
        return _reported_suite(args.suite, records.suite_definition_in(args.source), str(args.source)), runs, clips
    if not args.store.is_file():
        raise VpbenchError(f"no results store at {args.store} (run `vpbench run` first or pass --store)")
    store = Store(args.store)
    suite = _stored_suite(store, args.suite)
    runs, clips = records.from_store(store, suite)
    return suite, runs, clips


def _stored_suite(store, name: str):
    """The suite ``name`` (a name or a suite file) as the store recorded it when it ran."""
    from vpbench.config.suites import load_suite

    definition = store.suite_definition(name)  # by name: also when its file has since been removed
    if definition is None:
        definition = store.suite_definition(load_suite(name).name)
    return _reported_suite(name, definition, str(store.path))


def _reported_suite(name: str, definition: dict | None, where: str):
    """The suite as it ran (its stored definition), or, for results stored before definitions were, its YAML."""
    from vpbench.config.suites import suite_record
    from vpbench.report.suite_record import SuiteRecord

    if definition is None:
        print(f"vpbench: {where} holds no definition of suite {name} (stored before they were recorded); "
              f"labels, order and reference come from today's suite file", file=sys.stderr)
        definition = suite_record(name)
    return SuiteRecord.from_record(definition)


def cmd_table(args: argparse.Namespace) -> int:
    from vpbench.report.tables import render, runs_table
    from vpbench.store import Store

    if args.suite and args.runs:
        raise VpbenchError("--suite and --runs all: choose one (a suite's layout, or every run one row each)")
    if args.runs or not args.suite:
        if args.source is not None:
            raise VpbenchError("--from needs --suite (exported CSV holds one suite)")
        if not args.store.is_file():
            raise VpbenchError(f"no results store at {args.store} (run `vpbench run` first or pass --store)")
    latest = None
    if not args.suite and not args.runs:
        latest = Store(args.store).latest_suite()
        if latest is None:
            print(f"vpbench: no run in {args.store} belongs to a suite: every complete run, one row each "
                  "(--suite NAME for a suite's layout)", file=sys.stderr)
        else:
            print(f"vpbench: suite {latest} (that of the most recent run in {args.store}); "
                  "--suite picks another, --runs all lists every run", file=sys.stderr)
    if args.runs or (not args.suite and latest is None):
        import pandas as pd

        from vpbench.report.records import flatten

        records = Store(args.store).runs(status="complete")
        runs = pd.DataFrame([flatten(r, "", 0, 0) for r in records])
        tables = [runs_table(runs, f"Runs in {args.store}")]
    else:
        from vpbench.report.layouts import suite_tables

        if latest is not None:
            args.suite = latest
            try:
                suite, runs, clips = _suite_frames(args)
            except VpbenchError as exc:
                raise VpbenchError(f"{exc} (the latest run's suite; pass --suite NAME_OR_FILE, or --runs all)") from None
        else:
            suite, runs, clips = _suite_frames(args)
        tables = suite_tables(runs, clips, suite, paper=args.paper)
    sys.stdout.write(render(tables, args.format))
    return 0


def _check_out_folder(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise VpbenchError(f"--out {out}: is a file; expected a folder (it is created if missing)")


def cmd_export(args: argparse.Namespace) -> int:
    from vpbench.report.records import details, export
    from vpbench.store import Store

    _check_out_folder(args.out)
    suite, runs, clips = _suite_frames(args)
    for path in export(runs, clips, args.out, suite.record(), details(Store(args.store), suite)):
        print(path)
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from vpbench.report.plots import suite_plots

    _check_out_folder(args.out)
    suite, runs, clips = _suite_frames(args)
    for path in suite_plots(runs, suite, args.out):
        print(path)
    return 0


def cmd_site(args: argparse.Namespace) -> int:
    from vpbench.report import site
    from vpbench.store import Store

    _check_out_folder(args.out)
    loose = None
    if args.source:
        results = site.from_exports(args.source, args.suite)
    else:
        if not args.store.is_file():
            raise VpbenchError(f"no results store at {args.store} (run `vpbench run` first, pass --store or --from)")
        results, loose = site.from_store(Store(args.store), args.suite)
    if not results and (loose is None or loose.empty):
        raise VpbenchError(f"no suite {', '.join(args.suite or [])} and no complete run to show")
    pages = site.build(results, args.out, loose)
    print(f"{args.out / 'index.html'}: {len(pages)} pages, {len(results)} suite(s)")
    return 0


def cmd_samples(args: argparse.Namespace) -> int:
    from vpbench.report.samples import suite_strip
    from vpbench.store import Store

    if not args.store.is_file():
        raise VpbenchError(f"no results store at {args.store} (run `vpbench run` first or pass --store)")
    if args.out.is_dir():
        raise VpbenchError(f"--out {args.out}: is a folder; expected the PNG file to write")
    store = Store(args.store)
    suite = _stored_suite(store, args.suite)
    strip = suite_strip(store.runs(suite=suite.name, status="complete"), suite, args.dataset, args.clip)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    strip.save(args.out)
    print(args.out)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from vpbench.store import Store

    try:
        record = Store(args.store).get(args.run_id)
    except KeyError as exc:
        raise VpbenchError(str(exc.args[0])) from None
    if record is None:
        raise VpbenchError(f"no run {args.run_id!r} in {args.store}")
    metrics = record.pop("metrics") or {}
    config = record.pop("config")
    for key in ("run_id", "status", "error", "model", "dataset", "scale", "seed", "run_dir", "wall_s",
                "created_at", "updated_at"):
        print(f"{key:>10}: {record.get(key)}")
    from vpbench.report.tables import FORMATS

    for name in ("psnr", "ssim", "lpips"):
        if name in metrics:  # in the tables' units: PSNR in dB, LPIPS x 10^-2
            fmt = FORMATS[name]
            steps = " ".join(f"{v * fmt.scale:.{fmt.digits}f}" for v in metrics[name]["per_step"])
            unit = f" ({fmt.unit})" if fmt.unit else ""
            print(f"{name:>10}: mean {metrics[name]['mean'] * fmt.scale:.{fmt.digits}f}; per step {steps}{unit}")
    for key in ("lpips_source", "lpips_unavailable", "training"):
        if key in metrics:
            print(f"{key:>10}: {json.dumps(metrics[key])}")
    print(f"{'profile':>10}: {json.dumps(record.get('profile'))}")
    print(f"{'manifest':>10}: {json.dumps(record.get('manifest'))}")
    print("    config:")
    import yaml

    print("      " + yaml.safe_dump(config, sort_keys=False).replace("\n", "\n      ").rstrip())
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    """Each registered model: its description and, where ``configs/models/<name>.yaml`` exists, its
    parameters at the paper geometry (built on the meta device, so nothing is allocated)."""
    import torch

    from vpbench.interface import registry
    from vpbench.config.resolution import RunSpec, find_config, resolve
    from vpbench.measure.profiling import parameter_counts

    names = registry.names()
    width = max(map(len, names), default=0)
    geometry = None
    for name in names:
        entry = registry.get(name)
        try:
            find_config("models", name)
            config = resolve(RunSpec(name), "paper")
            with torch.device("meta"):
                counts = parameter_counts(registry.build(config.model, config.data.geometry()))
            data = config.data
            geometry = f"{data.height}x{data.width}, p {data.patch}, sr {data.stride_ratio}"
            size = f"{counts['params'] / 1e6:8.2f} M ({counts['params_without_norm'] / 2**20:7.2f} Mi w/o norm)"
        except VpbenchError as exc:
            size = f"no paper-scale count: {exc}"
        print(f"{name:<{width}}  {size}  {entry.description}")
    if geometry:
        print(f"\nParameters at the paper geometry of configs/datasets/moving_objects.yaml ({geometry}); "
              "M = 10^6, Mi = 2^20 without norm-layer affine parameters.")
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    import json as json_module

    from vpbench.data.storage import MANIFEST, data_root, prepared_path, verify

    if args.data_command == "prepare":
        from vpbench.data.footage import prepare_folder

        path = prepare_folder(args.source, args.layout, args.name, args.size, args.stride, args.clip_length,
                              args.splits, args.fit, args.divisible_by, progress=not args.no_progress)
        clips = json_module.loads((path / MANIFEST).read_text())["clips"]
        print(f"{args.name}: {path} ({', '.join(f'{n} {split}' for split, n in clips.items())} clips)")
        return 0
    if args.data_command == "list":
        folder = data_root() / "prepared"
        for path in sorted(folder.iterdir()) if folder.is_dir() else []:
            if (path / MANIFEST).is_file():
                manifest = json_module.loads((path / MANIFEST).read_text())
                clips = ", ".join(f"{n} {split}" for split, n in manifest.get("clips", {}).items())
                size = "x".join(map(str, manifest.get("size", [])))
                print(f"{path.name}: {manifest.get('layout')} {size}, {manifest.get('clip_length')} frames, {clips}")
        return 0
    path = prepared_path(args.name)
    if not (path / MANIFEST).is_file():
        raise VpbenchError(f"no prepared data set {args.name!r} at {path} (`vpbench data list` shows them)")
    if args.data_command == "info":
        manifest = json_module.loads((path / MANIFEST).read_text())
        manifest["sources"] = f"{len(manifest.get('sources', {}))} files (sizes and sha256 in {path / MANIFEST})"
        manifest["files"] = f"{len(manifest.get('files', {}))} files (sizes and sha256 in {path / MANIFEST})"
        manifest["sequences"] = {k: len(v) for k, v in manifest.get("sequences", {}).items()}
        for key, value in manifest.items():
            print(f"{key:>28}: {value}")
        return 0
    problem = verify(path, full=True)
    if problem is not None:
        raise VpbenchError(f"data set {args.name!r}: {problem}")
    print(f"{args.name}: every file matches its sha256 in {path / MANIFEST}")
    return 0


GEOMETRIES = {"human36m": "geometry_human36m", "ucf": "geometry_ucf", "sjtu4k": "geometry_sjtu4k"}


def cmd_profile(args: argparse.Namespace) -> int:
    from vpbench.config.resolution import RunSpec, find_config, parse_overrides, resolve
    from vpbench.run.executors import InProcessExecutor
    from vpbench.run.plan import identify
    from vpbench.report.profiles import format_profile
    from vpbench.store import Store

    find_config("models", args.model)
    overrides = parse_overrides(args.overrides)
    if args.geometry in GEOMETRIES:
        dataset = GEOMETRIES[args.geometry]
    else:
        height, sep, width = args.geometry.lower().partition("x")
        if not (sep and height.isdigit() and width.isdigit()):
            raise VpbenchError(f"--geometry {args.geometry!r}: expected human36m, ucf, sjtu4k or HxW (e.g. 512x768)")
        dataset = "moving_objects"
        overrides.setdefault("data", {}).update(height=int(height), width=int(width))
    overrides["task"] = "profile"
    overrides.setdefault("profile", {}).update(
        samples=args.samples, warmup=args.warmup, throughput_batch=args.throughput_batch,
        precision=args.precision, fvcore=args.fvcore)
    config = resolve(RunSpec(args.model, dataset), args.scale, overrides)
    ((label, config),) = _fix_profile_device([(args.model, config)], args.device)
    store = Store(args.store)
    store.check_writable()
    outcome, = InProcessExecutor(store, device=config.profile.device, progress=False).run(identify([(label, config)]))
    record = store.get(outcome.run_id)
    if record["status"] != "complete":
        raise VpbenchError(f"profiling {args.model} failed: {record['error']}")
    print(format_profile(label, record["profile"]))
    return 0


COMMANDS = {"data": cmd_data, "run": cmd_run, "profile": cmd_profile, "plot": cmd_plot, "export": cmd_export, "config": cmd_config, "table": cmd_table, "show": cmd_show, "samples": cmd_samples, "site": cmd_site,
            "models": cmd_models}


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = _parser().parse_args(argv)
    args.argv = argv
    try:
        return COMMANDS[args.command](args)
    except VpbenchError as exc:
        print(f"vpbench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("vpbench: interrupted (a killed run resumes from its last checkpoint)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
