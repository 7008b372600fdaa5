"""`timeflies segment` end to end: outputs, formats, and bad input (exit 2, one line)."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import needs_data
from timelapse_cli.labels import GROUP_NAMES, load_label_map


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "timelapse_cli", "segment", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, env={**os.environ, "COLUMNS": "60"})


def leftovers(directory):
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


def test_segment_real_photo_builtin_ids_and_rgb(tmp_path):
    photo = needs_data("stills", "dpst", "in1.jpg")
    r = run(photo, "-o", tmp_path / "ids.png", "--segmenter", "builtin", "--preview", tmp_path / "p.png")
    assert r.returncode == 0, r.stderr
    ids = load_label_map(tmp_path / "ids.png")
    assert ids.format == "ids" and ids.ids.shape == (437, 700)
    assert set(np.unique(ids.ids)) <= {0, GROUP_NAMES.index("sky")}
    # The label preview, and beside it the soft sky matte: sky white, ground black, grey between.
    with Image.open(tmp_path / "p.png") as im:
        assert im.size == (1400, 437)
        matte = np.asarray(im.convert("L"))[:, 700:]
    sky = ids.ids == GROUP_NAMES.index("sky")
    assert matte[sky].mean() > 240 and matte[~sky].mean() < 15
    assert ((matte > 10) & (matte < 245)).any()
    r = run(photo, "-o", tmp_path / "rgb.png", "--segmenter", "builtin", "--format", "rgb")
    assert r.returncode == 0, r.stderr
    rgb = load_label_map(tmp_path / "rgb.png")
    assert rgb.format == "groups" and np.array_equal(rgb.ids, ids.ids)


def test_segment_real_video_gives_one_map_of_its_size(tmp_path):
    gif = needs_data("videos", "cypress-webcam.gif")
    r = run(gif, "-o", tmp_path / "v.png", "--segmenter", "builtin", "--preview", tmp_path / "vp.png")
    assert r.returncode == 0, r.stderr
    assert load_label_map(tmp_path / "v.png").ids.shape == (240, 320)
    assert "video" in r.stdout


def _bad_cases(tmp):
    (tmp / "text.jpg").write_text("not an image")
    (tmp / "text.mp4").write_text("not a video")
    (tmp / "empty").mkdir()
    (tmp / "ckpt.pth").write_text("not a checkpoint")
    Image.new("RGB", (32, 24), (90, 140, 200)).save(tmp / "ok.png")
    return {
        "missing": (["nothing.jpg"], "not found"),
        "text-image": (["text.jpg"], "text.jpg"),
        "text-video": (["text.mp4"], "text.mp4"),
        "zero-frames": (["empty"], "empty"),
        "bad-checkpoint": (["ok.png", "--segmenter", "mmseg", "--checkpoint", "ckpt.pth"], "ckpt.pth"),
        "ade20k-from-builtin": (["ok.png", "--segmenter", "builtin", "--classes", "ade20k"], "groups"),
        "bad-output": (["ok.png", "--segmenter", "builtin", "-o", "out.jpg"], "png"),
    }


@pytest.mark.parametrize("case", ["missing", "text-image", "text-video", "zero-frames", "bad-checkpoint",
                                  "ade20k-from-builtin", "bad-output"])
def test_bad_input_is_one_line_exit_2_and_leaves_nothing(tmp_path, case):
    args, words = _bad_cases(tmp_path)[case]
    if "-o" not in args:
        args = args + ["-o", "out.png"]
    r = run(*args, cwd=tmp_path)
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    if case == "bad-checkpoint" and "not installed" in lines[0]:
        words = "mmsegmentation"  # without mmseg the CLI says what to install instead
    assert words.lower() in lines[0].lower()
    assert not (tmp_path / "out.png").exists() and not (tmp_path / "out.jpg").exists()
    assert leftovers(tmp_path) == []
