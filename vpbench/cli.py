"""The ``vpbench`` command: run | config | table | plot | export | profile | show | models | data.

A user mistake (unknown model, key or scale, missing file, impossible geometry) prints one line,
``vpbench: error: ...``, and exits with code 2 before the store is touched.
"""

from __future__ import annotations

import argparse
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


MAX_SEEDS = 1000  # --seeds beyond this is a typo, not a campaign


def _seeds(text: str) -> int:
    value = _positive(text)
    if value > MAX_SEEDS:
        raise argparse.ArgumentTypeError(f"at most {MAX_SEEDS} seeds per run of a suite, got {value}")
    return value


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
        sub.add_argument("--seeds", type=_seeds, help=f"with --suite: runs per model and dataset (1 to {MAX_SEEDS})")

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
    run.add_argument("--workers", type=_positive, default=1, metavar="N",
                     help="N processes of this command on one store, one torch thread each, each taking the next "
                          "run no other holds (in-process executor; default 1: this process alone)")
    run.add_argument("--worker", metavar="K/N", help=argparse.SUPPRESS)  # set by --workers for its processes
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

    take = commands.add_parser("import", help="take the complete runs of suite exports back into a store (a fresh "
                                              "store then skips them instead of training them again)")
    take.add_argument("folders", nargs="+", type=Path, metavar="DIR", help="export folders (vpbench export --out DIR)")
    take.add_argument("--store", type=Path, default=DEFAULT_STORE, help=f"results store (default {DEFAULT_STORE})")
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


def _selection(args: argparse.Namespace):
    from vpbench.run.launch import Selection

    return Selection(args.suite, args.config, args.model, args.dataset, args.train, args.scale, args.overrides,
                     args.seeds)


def _today_suite(name: str) -> dict:
    """A suite's definition from its file today: for results stored before definitions were."""
    from vpbench.config.suites import suite_record

    return suite_record(name)


def cmd_run(args: argparse.Namespace) -> int:
    from vpbench.run import launch

    if args.ddp:
        return launch.relaunch_with_torchrun(args.argv, args.ddp, args.ddp_restarts)
    if args.workers > 1:
        if args.executor != "inprocess":
            raise VpbenchError(f"--workers {args.workers} with --executor {args.executor}: Ray places its own workers")
        return launch.run_workers(args.argv, args.workers, _selection(args))
    ray_options = {"address": args.address, "cpus_per_run": args.cpus_per_run, "gpus_per_run": args.gpus_per_run,
                   "max_retries": args.max_retries} if args.executor == "ray" else None
    return launch.run(_selection(args), args.store, args.device, args.fast, not args.no_progress, args.log,
                      args.retry_failed, args.executor, ray_options, worker=args.worker)


def cmd_config(args: argparse.Namespace) -> int:
    from vpbench.run import launch

    return launch.print_configs(_selection(args))


def cmd_profile(args: argparse.Namespace) -> int:
    from vpbench.run import launch

    return launch.profile(args.model, args.geometry, args.scale, args.device, args.overrides, args.store,
                          samples=args.samples, warmup=args.warmup, throughput_batch=args.throughput_batch,
                          precision=args.precision, fvcore=args.fvcore)


def cmd_table(args: argparse.Namespace) -> int:
    from vpbench.report import inputs

    sys.stdout.write(inputs.table(args.suite, bool(args.runs), args.format, args.paper, args.store, args.source,
                                  _today_suite))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from vpbench.report import inputs

    print("\n".join(map(str, inputs.export(args.suite, args.out, args.store, _today_suite))))
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from vpbench.report import inputs

    print("\n".join(map(str, inputs.plot(args.suite, args.out, args.store, args.source, _today_suite))))
    return 0


def cmd_site(args: argparse.Namespace) -> int:
    from vpbench.report import inputs

    print(inputs.site(args.out, args.suite, args.source, args.store))
    return 0


def cmd_samples(args: argparse.Namespace) -> int:
    from vpbench.report import inputs

    print(inputs.samples(args.suite, args.dataset, args.clip, args.out, args.store, _today_suite))
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from vpbench.run.record import import_export
    from vpbench.store import Store

    store = Store(args.store)
    store.check_writable()
    for folder in args.folders:
        imported, present = import_export(store, folder)
        print(f"{folder}: {imported} run(s) imported into {args.store}, {present} already there")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from vpbench.report.show import format_record
    from vpbench.store import Store

    try:
        record = Store(args.store).get(args.run_id)
    except KeyError as exc:
        raise VpbenchError(str(exc.args[0])) from None
    if record is None:
        raise VpbenchError(f"no run {args.run_id!r} in {args.store}")
    print(format_record(record))
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from vpbench.measure.profiling import model_listing

    print("\n".join(model_listing()))
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    from vpbench.data import catalog

    if args.data_command == "prepare":
        print(catalog.prepare(args.source, args.layout, args.name, not args.no_progress, size=args.size,
                              stride=args.stride, clip_length=args.clip_length, splits=args.splits, fit=args.fit,
                              divisible_by=args.divisible_by))
    elif args.data_command == "list":
        for line in catalog.listing():
            print(line)
    elif args.data_command == "info":
        print("\n".join(catalog.info(args.name)))
    else:
        print(catalog.check(args.name))
    return 0


COMMANDS = {"run": cmd_run, "config": cmd_config, "profile": cmd_profile, "table": cmd_table, "export": cmd_export,
            "plot": cmd_plot, "site": cmd_site, "samples": cmd_samples, "import": cmd_import, "show": cmd_show, "models": cmd_models,
            "data": cmd_data}


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
    except BrokenPipeError:  # `vpbench show ... | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit's flush cannot fail again
        return 0


if __name__ == "__main__":
    sys.exit(main())
