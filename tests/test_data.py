"""Tests for timelapse_cli.data: scanning, checking and loading training sequences.

Synthetic sequences are tiny (16x12 frames) and live in tmp_path; the real-data tests
use symlinks to a few sequences of ../shared/data/timelapse and skip when it is absent.
"""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import needs_data
from timelapse_cli.data import (
    LABEL_FILE,
    Sequence,
    clip_start,
    load_frames,
    load_labels,
    parse_size,
    scan_sequences,
)
from timelapse_cli.errors import InputError, TimefliesError
from timelapse_cli.labels import save_label_map
from timelapse_cli.video import VideoWriter

W, H = 16, 12


def level_frame(level: int, width: int = W, height: int = H) -> np.ndarray:
    """A flat grey (height, width, 3) uint8 frame: the brightness identifies the frame."""
    return np.full((height, width, 3), level, dtype=np.uint8)


def make_folder(root: Path, name: str, n: int, width: int = W, height: int = H,
                ext: str = "png") -> Path:
    """Frames 0..n-1 named 0.png, 1.png, ... 10.png (natural order differs from sorted())."""
    folder = root / name
    folder.mkdir(parents=True)
    for i in range(n):
        Image.fromarray(level_frame(10 * i, width, height)).save(folder / f"{i}.{ext}")
    return folder


def make_video(path: Path, n: int) -> Path:
    with VideoWriter(path, Fraction(25), crf=0) as writer:
        for i in range(n):
            writer.write(level_frame(20 + 10 * i))
    return path


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """Two frame folders (one with a label map) and one video; clip 4 needs 6 frames."""
    root = tmp_path / "data"
    make_folder(root, "seq-10", 12)
    make_folder(root, "seq-2", 8)
    save_label_map(np.arange(W * H).reshape(H, W) % 3, root / "seq-2" / LABEL_FILE)
    make_video(root / "clip.mp4", 7)
    (root / "notes.txt").write_text("not a sequence")
    return root


def assert_names(excinfo, *words: str) -> None:
    message = str(excinfo.value)
    assert "\n" not in message
    for word in words:
        assert word in message, message


# ---------------------------------------------------------------- scanning


def test_scan_finds_folders_and_videos_in_natural_order(data_dir):
    seqs = scan_sequences(data_dir, clip=4)
    assert [s.name for s in seqs] == ["clip.mp4", "seq-2", "seq-10"]
    video, two, ten = seqs
    assert (video.frames, video.width, video.height, video.label_path) == (7, W, H, None)
    assert video.path == data_dir / "clip.mp4"
    assert two.frames == 8  # segmentation.png is not a frame
    assert two.label_path == data_dir / "seq-2" / LABEL_FILE
    assert ten.frames == 12 and ten.label_path is None
    assert (ten.width, ten.height) == (W, H)


def test_frames_load_in_natural_order(data_dir):
    ten = scan_sequences(data_dir, clip=4)[2]
    frames = load_frames(ten, 8, 4, (W, H))  # files 8.png .. 11.png
    levels = (frames[:, :, 0, 0] * 255).round().to(torch.int64)[:, 0].tolist()
    assert levels == [80, 90, 100, 110]


def test_missing_data_dir(tmp_path):
    with pytest.raises(InputError) as e:
        scan_sequences(tmp_path / "nope", clip=4)
    assert_names(e, "nope", "not found")


def test_data_dir_without_sequences(tmp_path):
    (tmp_path / "readme.txt").write_text("x")
    with pytest.raises(InputError) as e:
        scan_sequences(tmp_path, clip=4)
    assert_names(e, str(tmp_path), "no sequences")


def test_empty_folder(data_dir):
    (data_dir / "seq-empty").mkdir()
    with pytest.raises(InputError) as e:
        scan_sequences(data_dir, clip=4)
    assert_names(e, "'seq-empty'", "no image frames")


def test_folder_with_only_a_label_map_is_empty(data_dir):
    folder = data_dir / "seq-labels-only"
    folder.mkdir()
    save_label_map(np.zeros((H, W), int), folder / LABEL_FILE)
    with pytest.raises(InputError) as e:
        scan_sequences(data_dir, clip=4)
    assert_names(e, "'seq-labels-only'", "no image frames")


def test_unreadable_frame(tmp_path):
    folder = make_folder(tmp_path, "broken", 8, ext="jpg")
    (folder / "0003.jpg").write_text("this is not a jpeg")
    with pytest.raises(InputError) as e:
        scan_sequences(tmp_path, clip=4)
    assert_names(e, "'broken'", "0003.jpg", "replace or remove")


def test_truncated_frame(tmp_path):
    folder = make_folder(tmp_path, "cut", 8, width=64, height=48, ext="jpg")
    data = (folder / "5.jpg").read_bytes()
    (folder / "5.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError) as e:
        scan_sequences(tmp_path, clip=4)
    assert_names(e, "'cut'", "5.jpg")


def test_sequence_too_short_for_clip(data_dir):
    with pytest.raises(InputError) as e:
        scan_sequences(data_dir, clip=6)  # clip.mp4 has 7 frames, needs 8
    assert str(e.value) == ("sequence 'clip.mp4' has 7 frames; --clip 6 needs at least 8: "
                            "lower --clip or drop it")
    with pytest.raises(InputError) as e:
        scan_sequences(data_dir, clip=7)  # seq-2 has 8 frames, needs 9 (the video fails first)
    assert_names(e, "'clip.mp4'")
    (data_dir / "clip.mp4").unlink()
    with pytest.raises(InputError) as e:
        scan_sequences(data_dir, clip=7)
    assert_names(e, "'seq-2'", "8 frames", "at least 9")


def test_label_map_of_another_aspect_ratio(data_dir):
    save_label_map(np.zeros((H, 2 * W), int), data_dir / "seq-10" / LABEL_FILE)  # twice as wide
    with pytest.raises(InputError) as e:
        scan_sequences(data_dir, clip=4)
    assert_names(e, "'seq-10'", LABEL_FILE, "aspect")


def test_label_map_of_same_aspect_other_size_is_fine(data_dir):
    save_label_map(np.zeros((2 * H, 2 * W), int), data_dir / "seq-10" / LABEL_FILE)
    seq = scan_sequences(data_dir, clip=4)[2]
    assert seq.label_path == data_dir / "seq-10" / LABEL_FILE


def test_unreadable_label_map(data_dir):
    (data_dir / "seq-10" / LABEL_FILE).write_text("garbage")
    with pytest.raises(InputError) as e:
        scan_sequences(data_dir, clip=4)
    assert_names(e, "'seq-10'", LABEL_FILE)


def test_unreadable_video(data_dir):
    (data_dir / "bad.mov").write_bytes(b"not a movie at all")
    with pytest.raises(InputError) as e:
        scan_sequences(data_dir, clip=4)
    assert_names(e, "'bad.mov'")


def test_bad_clip_option(data_dir):
    with pytest.raises(TimefliesError):
        scan_sequences(data_dir, clip=0)


# ---------------------------------------------------------------- sampling and loading


def fake_sequence(frames: int) -> Sequence:
    return Sequence("fake", Path("/nonexistent"), frames, W, H, None)


def test_clip_start_within_bounds_and_reproducible():
    seq, clip = fake_sequence(20), 8
    first = clip_start(seq, clip, np.random.default_rng(1))
    rng = np.random.default_rng(1)
    draws = [clip_start(seq, clip, rng) for _ in range(2000)]
    assert min(draws) == 0 and max(draws) == 20 - clip - 2  # both ends reached, none beyond
    assert first == draws[0]
    again = np.random.default_rng(1)
    assert [clip_start(seq, clip, again) for _ in range(2000)] == draws
    assert all(isinstance(s, int) for s in draws[:10])


def test_clip_start_exact_fit_and_too_short():
    assert clip_start(fake_sequence(10), 8, np.random.default_rng(0)) == 0
    with pytest.raises(ValueError):
        clip_start(fake_sequence(9), 8, np.random.default_rng(0))


def test_load_frames_folder_shape_range_and_content(data_dir):
    ten = scan_sequences(data_dir, clip=4)[2]
    frames = load_frames(ten, 3, 5, (8, 6))
    assert frames.shape == (5, 3, 6, 8) and frames.dtype == torch.float32
    assert frames.min() >= 0 and frames.max() <= 1
    expected = torch.tensor([30, 40, 50, 60, 70], dtype=torch.float32) / 255
    torch.testing.assert_close(frames.mean(dim=(1, 2, 3)), expected, atol=1e-3, rtol=0)


def test_load_frames_video_returns_the_right_frames(data_dir):
    video = scan_sequences(data_dir, clip=4)[0]
    frames = load_frames(video, 2, 3, (W, H))
    assert frames.shape == (3, 3, H, W)
    levels = frames.mean(dim=(1, 2, 3)) * 255
    # Lossless H.264 still rounds through yuv420p; frames 2..4 are 40, 50, 60.
    torch.testing.assert_close(levels, torch.tensor([40.0, 50.0, 60.0]), atol=2.0, rtol=0)
    last = load_frames(video, 6, 1, (W, H))
    assert abs(last.mean().item() * 255 - 80) < 2


def test_load_frames_hand_built_sequence_and_bounds(tmp_path):
    folder = make_folder(tmp_path, "s", 6)
    seq = Sequence("s", folder, 6, W, H, None)  # no cached file list: lists the folder
    frames = load_frames(seq, 4, 2, (W * 2, H * 2))
    assert frames.shape == (2, 3, 2 * H, 2 * W)
    torch.testing.assert_close(frames.mean(dim=(1, 2, 3)) * 255, torch.tensor([40.0, 50.0]),
                               atol=0.5, rtol=0)
    with pytest.raises(ValueError):
        load_frames(seq, 5, 2, (W, H))


def test_load_labels_zeros_without_map(data_dir):
    ten = scan_sequences(data_dir, clip=4)[2]
    labels = load_labels(ten, (10, 7))
    assert labels.shape == (7, 10) and labels.dtype == np.int64
    assert not labels.any()


def test_load_labels_nearest_resized(tmp_path):
    folder = make_folder(tmp_path, "s", 6)
    ids = np.zeros((H, W), dtype=np.int64)
    ids[:, W // 2:] = 5
    ids[: H // 2, : W // 2] = 2
    save_label_map(ids, folder / LABEL_FILE)
    seq = scan_sequences(tmp_path, clip=4)[0]
    small = load_labels(seq, (4, 3))
    assert small.shape == (3, 4) and small.dtype == np.int64
    assert set(np.unique(small)) <= {0, 2, 5}  # nearest: no blended ids
    np.testing.assert_array_equal(small, [[2, 2, 5, 5], [0, 0, 5, 5], [0, 0, 5, 5]])
    big = load_labels(seq, (2 * W, 2 * H))
    np.testing.assert_array_equal(big, np.kron(ids, np.ones((2, 2), dtype=np.int64)))


# ---------------------------------------------------------------- options


def test_parse_size():
    assert parse_size(256) == 256
    assert parse_size("256") == 256
    assert parse_size("320x192") == (320, 192)
    assert parse_size((64, 32)) == (64, 32)
    for bad in ("0", "320x", "x192", "-5", "abc", 0, True, "320x0"):
        with pytest.raises(TimefliesError):
            parse_size(bad)


# ---------------------------------------------------------------- real data


def real_data_dir(tmp_path: Path, *names: str) -> Path:
    root = tmp_path / "real"
    root.mkdir()
    for name in names:
        (root / name).symlink_to(needs_data("timelapse", name), target_is_directory=True)
    return root


def test_real_sequences_scan_and_load(tmp_path):
    root = real_data_dir(tmp_path, "pyramid-webcam", "arizona-rooftop")
    rooftop, pyramid = scan_sequences(root, clip=32)
    assert rooftop.name == "arizona-rooftop" and rooftop.label_path is None
    source = needs_data("timelapse", "arizona-rooftop")
    jpgs = sorted(source.glob("*.jpg"))
    assert rooftop.frames == len(jpgs)  # sky_mask.png is not a frame
    assert (rooftop.width, rooftop.height) == Image.open(jpgs[0]).size
    assert pyramid.frames >= 34
    start = clip_start(pyramid, 32, np.random.default_rng(0))
    frames = load_frames(pyramid, start, 3, (64, 48))
    assert frames.shape == (3, 3, 48, 64) and 0 <= frames.min() and frames.max() <= 1
    assert not load_labels(pyramid, (64, 48)).any()


def test_real_sequence_too_short_is_named(tmp_path):
    root = real_data_dir(tmp_path, "pyramid-webcam", "suburb-sunset-night")
    with pytest.raises(InputError) as e:
        scan_sequences(root, clip=32)
    assert_names(e, "sequence 'suburb-sunset-night' has 8 frames", "--clip 32", "at least 34")
