"""Outputs never destroy a user's files (timelapse_cli/outputs.py), through the real entry point.

Every refusal is checked the same way: exit 2, one stderr line naming the paths, and the
whole scene folder (inputs, earlier outputs, the user's other files) byte-identical
afterwards, with no temporary file left. Inputs are tiny and synthetic; animate runs with
`--method still --segmenter none`, so no model and no real data are needed.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import registry
from test_cli import assert_one_line_error, gradient, probe
from timelapse_cli.labels import load_label_map, save_label_map
from timelapse_cli.outputs import MANIFEST
from timelapse_cli.video import VideoWriter

FAST = ["--method", "still", "--segmenter", "none", "--size", "32", "-q"]
TRAIN = ["--size", "32", "--clip", "3", "--width", "0.125", "--segmenter", "none", "-q"]


# ---------------------------------------------------------------- helpers


def timeflies(cwd: Path, *args) -> subprocess.CompletedProcess:
    """`python -m timelapse_cli ARGS` run in `cwd` (so paths can be given as a user types them)."""
    env = {**os.environ, "COLUMNS": "60", "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "timelapse_cli", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=300, env=env)


def tree(root: Path) -> dict[str, str]:
    """Every path under `root` -> sha256 of a file's bytes, 'folder', or where a link points.
    Equal trees before and after a run: inputs byte-identical, nothing written, no temp file."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            key = str(path.relative_to(root))
            if path.is_symlink():
                found[key] = f"link to {os.readlink(path)}"
            elif path.is_dir():
                found[key] = "folder"
            else:
                found[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def scene(root: Path) -> Path:
    """A photo, a reference as a folder of JPEG frames and as a video, label maps, training data."""
    root.mkdir(parents=True, exist_ok=True)
    Image.fromarray(gradient(64, 48)).save(root / "photo.png")
    (root / "frames").mkdir()
    for i in range(3):
        Image.fromarray(gradient(40, 30, shift=20 * i)).save(root / "frames" / f"{i}.jpg")
    with VideoWriter(root / "ref.mp4", Fraction(25)) as writer:
        for i in range(3):
            writer.write(gradient(40, 30, shift=20 * i))
    save_label_map(np.zeros((48, 64), np.int64), root / "pseg.png")
    save_label_map(np.zeros((30, 40), np.int64), root / "rseg.png")
    (root / "data" / "seq").mkdir(parents=True)
    for i in range(5):
        Image.fromarray(gradient(32, 32, shift=10 * i)).save(root / "data" / "seq" / f"{i}.png")
    return root


def _earlier_run(folder: Path) -> Path:
    (folder / "checkpoint").mkdir(parents=True)
    (folder / "checkpoint" / "state.pt").write_bytes(b"hours of training")
    (folder / "run.json").write_text('{"old": true}\n')
    (folder / "notes.txt").write_text("mine\n")
    return folder


# ---------------------------------------------------------------- refusals: exit 2, one line, nothing touched
#
# Each case adds what it needs to a fresh scene and returns (arguments, words the message
# must hold). The cases' subprocesses run side by side, once per module.

REFUSED, refused = registry()


@refused("animate-onto-reference-folder")
def _(d):
    return ["animate", "photo.png", "frames/", "-o", "frames/", *FAST], ("'frames/'", "reference", "'frames")


@refused("animate-onto-reference-folder-overwrite")
def _(d):
    return ["animate", "photo.png", "frames/", "-o", "frames/", "--overwrite", *FAST], ("frames", "reference")


@refused("animate-dotdot-onto-reference-folder")
def _(d):
    return ["animate", "photo.png", "frames", "-o", "./frames/../frames/", "-y", *FAST], \
        ("./frames/../frames/", "reference")


@refused("animate-reference-folder-via-link")
def _(d):
    (d / "linked").symlink_to("frames", target_is_directory=True)
    return ["animate", "photo.png", "linked/", "-o", "frames/", "-y", *FAST], ("frames", "reference", "linked")


@refused("animate-into-reference-folder")
def _(d):
    return ["animate", "photo.png", "frames/", "-o", "frames/out.mp4", *FAST], ("frames/out.mp4", "lies inside")


@refused("animate-folder-holding-the-photo")
def _(d):
    return ["animate", "photo.png", "ref.mp4", "-o", "./", "-y", *FAST], ("contains", "photo")


@refused("animate-onto-reference-video")
def _(d):
    return ["animate", "photo.png", "ref.mp4", "-o", "ref.mp4", "-y", *FAST], ("'ref.mp4'", "reference")


@refused("animate-output-is-a-link-to-the-reference")
def _(d):
    (d / "link.mp4").symlink_to("ref.mp4")
    return ["animate", "photo.png", "ref.mp4", "-o", "link.mp4", "-y", *FAST], ("link.mp4", "reference")


@refused("animate-reference-video-via-link")
def _(d):
    (d / "ref-link.mp4").symlink_to("ref.mp4")
    return ["animate", "photo.png", "ref-link.mp4", "-o", "ref.mp4", "-y", *FAST], ("ref.mp4", "ref-link.mp4")


@refused("animate-into-a-folder-of-other-files")
def _(d):
    (d / "mypics").mkdir()
    (d / "mypics" / "notes.txt").write_text("mine\n")
    Image.fromarray(gradient(20, 10)).save(d / "mypics" / "holiday.jpg")
    return ["animate", "photo.png", "ref.mp4", "-o", "mypics/", *FAST], ("mypics", "not empty", "--overwrite")


@refused("animate-frame-name-of-the-users")
def _(d):
    # 00001.png looks like a frame of ours, but no manifest lists it: even --overwrite keeps it.
    (d / "mine").mkdir()
    Image.fromarray(gradient(20, 10)).save(d / "mine" / "00001.png")
    return ["animate", "photo.png", "ref.mp4", "-o", "mine/", "-y", *FAST], ("00001.png", "not written by timeflies")


@refused("animate-existing-video")
def _(d):
    (d / "old.mp4").write_bytes((d / "ref.mp4").read_bytes())
    return ["animate", "photo.png", "ref.mp4", "-o", "old.mp4", *FAST], ("old.mp4", "already exists", "--overwrite")


@refused("animate-preview-under-a-jpg-name")
def _(d):
    Image.fromarray(gradient(20, 10)).save(d / "keep.jpg")
    return ["animate", "photo.png", "ref.mp4", "-o", "o.mp4", "--preview", "keep.jpg", "-y", *FAST], \
        ("keep.jpg", ".png")


@refused("animate-existing-preview")
def _(d):
    Image.fromarray(gradient(20, 10)).save(d / "sheet.png")
    return ["animate", "photo.png", "ref.mp4", "-o", "o.mp4", "--preview", "sheet.png", *FAST], \
        ("sheet.png", "already exists")


@refused("animate-preview-onto-image-seg")
def _(d):
    return ["animate", "photo.png", "ref.mp4", "-o", "o.mp4", "--image-seg", "pseg.png", "--video-seg", "rseg.png",
            "--preview", "pseg.png", "-y", *FAST], ("pseg.png", "--image-seg")


@refused("animate-preview-inside-the-frame-folder")
def _(d):
    return ["animate", "photo.png", "ref.mp4", "-o", "out/", "--preview", "out/sheet.png", *FAST], \
        ("out/sheet.png", "contains", "-o")


@refused("animate-into-the-weights")
def _(d):
    (d / "w").mkdir()
    (d / "w" / "config.json").write_text("{}\n")
    return ["animate", "photo.png", "ref.mp4", "-o", "w/o.mp4", "--weights", "w", *FAST], ("w/o.mp4", "--weights")


@refused("segment-onto-the-photo")
def _(d):
    return ["segment", "photo.png", "-o", "photo.png", "-y", "--segmenter", "builtin", "-q"], ("photo.png", "input")


@refused("segment-into-the-video-folder")
def _(d):
    return ["segment", "frames", "-o", "frames/map.png", "--segmenter", "builtin", "-q"], ("frames", "lies inside")


@refused("segment-map-is-the-preview")
def _(d):
    return ["segment", "photo.png", "-o", "m.png", "--preview", "m.png", "--segmenter", "builtin", "-q"], \
        ("m.png", "same path", "--preview")


@refused("segment-existing-map")
def _(d):
    Image.fromarray(gradient(20, 10)).save(d / "m.png")
    return ["segment", "photo.png", "-o", "m.png", "--segmenter", "builtin", "-q"], ("m.png", "already exists")


@refused("segment-preview-under-a-jpg-name")
def _(d):
    Image.fromarray(gradient(20, 10)).save(d / "keep.jpg")
    return ["segment", "photo.png", "-o", "m.png", "--preview", "keep.jpg", "-y", "--segmenter", "builtin", "-q"], \
        ("keep.jpg", ".png")


@refused("benchmark-plot-onto-the-image")
def _(d):
    return ["benchmark", "--image", "photo.png", "--reference", "ref.mp4", "--plot", "photo.png", "-y"], \
        ("photo.png", "--image")


@refused("benchmark-json-into-the-reference")
def _(d):
    return ["benchmark", "--image", "photo.png", "--reference", "frames", "--json", "frames/b.json"], \
        ("frames/b.json", "lies inside", "--reference")


@refused("benchmark-json-into-the-eval-folder")
def _(d):
    return ["benchmark", "--eval", "data", "--json", "data/seq/b.json"], ("data/seq/b.json", "--eval")


@refused("benchmark-existing-json")
def _(d):
    (d / "old.json").write_text('{"mine": 1}\n')
    return ["benchmark", "--res", "16", "--json", "old.json"], ("old.json", "already exists", "--overwrite")


@refused("benchmark-json-suffix")
def _(d):
    return ["benchmark", "--res", "16", "--json", "b.txt"], ("b.txt", ".json")


@refused("train-out-inside-the-data")
def _(d):
    return ["train", "--data", "data", "--out", "data/run", *TRAIN], ("data/run", "lies inside", "--data")


@refused("train-out-holding-the-data")
def _(d):
    return ["train", "--data", "data/seq", "--out", "data", "-y", *TRAIN], ("contains", "--data")


@refused("train-out-on-an-earlier-run")
def _(d):
    _earlier_run(d / "run")
    return ["train", "--data", "data", "--out", "run", *TRAIN], ("run", "earlier run", "--resume", "--overwrite")


@refused("train-resume-and-overwrite")
def _(d):
    _earlier_run(d / "run")
    return ["train", "--data", "data", "--out", "run", "--resume", "-y", *TRAIN], ("--resume", "--overwrite")


@pytest.fixture(scope="module")
def refusals(tmp_path_factory) -> dict:
    """name -> (CompletedProcess, words, tree before, tree after)."""
    cases = {}
    for name, build in REFUSED.items():
        d = scene(tmp_path_factory.mktemp(name))
        args, words = build(d)
        cases[name] = (d, args, words, tree(d))
    with ThreadPoolExecutor(2) as pool:  # each run spends seconds importing torch
        futures = {name: pool.submit(timeflies, d, *args) for name, (d, args, _, _) in cases.items()}
    return {name: (futures[name].result(), words, before, tree(d))
            for name, (d, _, words, before) in cases.items()}


@pytest.mark.parametrize("case", list(REFUSED))
def test_refused_with_one_line_and_nothing_touched(case, refusals):
    result, words, before, after = refusals[case]
    assert_one_line_error(result, *words)
    assert after == before  # every input byte-identical, nothing written, no temporary file


# ---------------------------------------------------------------- --overwrite: the intended replacement


def test_overwrite_replaces_a_video_and_a_preview(tmp_path):
    d = scene(tmp_path / "s")
    (d / "out.mp4").write_bytes(b"an old video")
    Image.fromarray(gradient(20, 10)).save(d / "sheet.png")
    inputs = tree(d)
    r = timeflies(d, "animate", "photo.png", "ref.mp4", "-o", "out.mp4", "--preview", "sheet.png", "-y", *FAST)
    assert r.returncode == 0, r.stderr
    assert probe(d / "out.mp4")["frames"] == 3
    with Image.open(d / "sheet.png") as im:
        assert im.format == "PNG" and im.width > 20
    after = tree(d)
    assert {k: v for k, v in after.items() if k not in ("out.mp4", "sheet.png")} == \
        {k: v for k, v in inputs.items() if k not in ("out.mp4", "sheet.png")}  # nothing else, no temp file


def test_overwrite_into_a_frame_folder_replaces_only_its_own_frames(tmp_path):
    d = scene(tmp_path / "s")
    pics = d / "mypics"
    pics.mkdir()
    (pics / "notes.txt").write_text("mine\n")
    Image.fromarray(gradient(20, 10)).save(pics / "holiday.jpg")
    Image.fromarray(gradient(20, 10)).save(pics / "00009.png")  # looks like a frame; it is the user's
    users = tree(pics)

    def frames() -> list[str]:
        return sorted(p.name for p in pics.iterdir() if p.name not in users)

    r = timeflies(d, "animate", "photo.png", "ref.mp4", "-o", "mypics/", "-y", "--frames", "5", *FAST)
    assert r.returncode == 0, r.stderr
    assert frames() == [MANIFEST, "00000.png", "00001.png", "00002.png", "00003.png", "00004.png"]
    assert {k: v for k, v in tree(pics).items() if k in users} == users
    with Image.open(pics / "00000.png") as im:
        assert im.size == (32, 24)

    # A shorter run at another size: its own frames replaced, the earlier run's stale ones gone.
    r = timeflies(d, "animate", "photo.png", "ref.mp4", "-o", "mypics/", "-y", "--frames", "2", "--size", "16",
                  "--method", "still", "--segmenter", "none", "-q")
    assert r.returncode == 0, r.stderr
    assert frames() == [MANIFEST, "00000.png", "00001.png"]
    assert {k: v for k, v in tree(pics).items() if k in users} == users
    with Image.open(pics / "00000.png") as im:
        assert im.size == (16, 12)
    assert json.loads((pics / MANIFEST).read_text())["frames"] == ["00000.png", "00001.png"]
    assert not [p for p in d.iterdir() if ".part" in p.name]


def test_overwrite_replaces_a_label_map(tmp_path):
    d = scene(tmp_path / "s")
    Image.fromarray(gradient(20, 10)).save(d / "m.png")
    r = timeflies(d, "segment", "photo.png", "-o", "m.png", "-y", "--segmenter", "builtin", "-q")
    assert r.returncode == 0, r.stderr
    assert load_label_map(d / "m.png").ids.shape == (48, 64)
    assert not [p for p in d.iterdir() if ".part" in p.name]


def test_overwrite_replaces_benchmark_json(tmp_path, tiny_weights):
    d = scene(tmp_path / "s")
    (d / "b.json").write_text('{"old": true}\n')
    r = timeflies(d, "benchmark", "--image", "photo.png", "--reference", "ref.mp4", "--methods", "still",
                  "--size", "32", "--stage-size", "32", "--segmenter", "none", "--weights", tiny_weights,
                  "--json", "b.json", "-y")
    assert r.returncode == 0, r.stderr
    assert "quality" in json.loads((d / "b.json").read_text())


def test_train_overwrite_replaces_the_run_and_resume_continues_it(tmp_path):
    d = scene(tmp_path / "s")
    run = _earlier_run(d / "run")
    r = timeflies(d, "train", "--data", "data", "--out", "run", "--max-steps", "1", "-y", *TRAIN)
    assert r.returncode == 0, r.stderr
    assert "old" not in json.loads((run / "run.json").read_text())
    assert torch.load(run / "checkpoint" / "state.pt", weights_only=True)["step"] == 1
    assert (run / "notes.txt").read_text() == "mine\n"  # not the run's: kept
    # What `make weights` does once a checkpoint exists.
    r = timeflies(d, "train", "--data", "data", "--out", "run", "--max-steps", "2", "--resume", *TRAIN)
    assert r.returncode == 0, r.stderr
    assert torch.load(run / "checkpoint" / "state.pt", weights_only=True)["step"] == 2
