"""Peak memory of `vpbench data prepare` on a large video: the build streams its clips to disk in chunks.

Writes a 14-frame 3840x2160 video (a random texture sliding 8 px per frame, mpeg4) to a scratch folder,
prepares it at its native size with clips of 2 frames (20 stored frames, about 475 MiB), and prints the
prepare's peak resident memory (``ru_maxrss`` of the child process) beside the stored size.

Usage: ``python benchmarks/prepare_memory.py [--frames 14] [--width 3840] [--height 2160]``
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import av
import numpy as np


def write_video(path: Path, frames: int, width: int, height: int) -> None:
    texture = np.random.default_rng(0).integers(0, 255, (height, width, 3), dtype=np.uint8)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for t in range(frames):
            frame = av.VideoFrame.from_ndarray(np.roll(texture, 8 * t, axis=1), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=14)
    parser.add_argument("--width", type=int, default=3840)
    parser.add_argument("--height", type=int, default=2160)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        video = Path(scratch) / "large.mp4"
        write_video(video, args.frames, args.width, args.height)
        env = {**os.environ, "VPBENCH_DATA": str(Path(scratch) / "data"), "OMP_NUM_THREADS": "1"}
        subprocess.run([sys.executable, "-m", "vpbench", "data", "prepare", "--source", str(video), "--layout",
                        "videos", "--name", "large", "--clip-length", "2", "--no-progress"], env=env, check=True)
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # kB on Linux
        stored = sum(f.stat().st_size for f in (Path(scratch) / "data").rglob("*") if f.is_file())
    print(f"{args.frames} frames of {args.width}x{args.height}: stored {stored / 2**20:.0f} MiB, "
          f"peak memory of the prepare {peak / 2**20:.0f} MiB ({peak / stored:.1f}x the stored size)")


if __name__ == "__main__":
    main()
