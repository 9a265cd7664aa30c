"""What FVD costs a run: CPU seconds for N test clips, with the real clips' statistics cached or not.

A run's FVD (:func:`vpbench.run.evaluate._fvd`) passes its N predicted clips through the I3D, and the
N real clips once per data set (then cached). This times exactly those calls, on clips of a suite's
geometry, in one process: ``real + predicted`` (the first run on a data set) and ``predicted`` alone
(every later run), in CPU seconds (``time.process_time``: all threads together) and wall seconds.

Usage: ``python benchmarks/fvd_cost.py [--clips 256] [--frames 3] [--size 32] [--channels 1] [--threads 2]``
(the defaults: the leaderboard's moving digits at the small scale, prediction protocol).
"""

from __future__ import annotations

import argparse
import time

import torch

from vpbench.measure.fvd import Gaussian, frechet_distance, logits, shared_network


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=256, help="test clips entering FVD (default 256)")
    parser.add_argument("--frames", type=int, default=3, help="frames per clip that enter (default 3: the prediction)")
    parser.add_argument("--length", type=int, default=16, help="clips are padded to this many frames (eval.fvd_frames)")
    parser.add_argument("--size", type=int, default=32, help="frame side in pixels (default 32)")
    parser.add_argument("--channels", type=int, default=1, help="1 (grey) or 3 (default 1)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    network, problem = shared_network("cpu")
    if network is None:
        raise SystemExit(f"FVD unavailable: {problem}")
    generator = torch.Generator().manual_seed(0)
    shape = (args.clips, args.frames, args.channels, args.size, args.size)
    real, predicted = torch.rand(shape, generator=generator), torch.rand(shape, generator=generator)
    timings = {}
    for name, clips in (("real", real), ("predicted", predicted)):
        cpu, wall = time.process_time(), time.perf_counter()
        features = Gaussian.fit(logits(network, clips, args.length))
        timings[name] = (time.process_time() - cpu, time.perf_counter() - wall, features)
    cpu, wall = time.process_time(), time.perf_counter()
    value = frechet_distance(timings["real"][2], timings["predicted"][2])
    distance = (time.process_time() - cpu, time.perf_counter() - wall)
    print(f"FVD of {args.clips} clips of {args.frames} frames at {args.size}x{args.size}x{args.channels}, padded to "
          f"{args.length}, {args.threads} thread(s); value on random clips {value:.1f}")
    print("| what | CPU s | wall s |\n|---|---:|---:|")
    print(f"| I3D on the real clips (once per data set, then cached) | {timings['real'][0]:.1f} | {timings['real'][1]:.1f} |")
    print(f"| I3D on the predicted clips (every run) | {timings['predicted'][0]:.1f} | {timings['predicted'][1]:.1f} |")
    print(f"| Fréchet distance | {distance[0]:.2f} | {distance[1]:.2f} |")


if __name__ == "__main__":
    main()
