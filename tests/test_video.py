"""Tests for timelapse_cli.video: reading videos / frame folders and writing videos / PNGs.

All inputs are tiny synthetic files made in tmp_path; the real-data tests skip when
../shared/data is absent.
"""
from __future__ import annotations

import wave
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from timelapse_cli.errors import InputError
from timelapse_cli.video import (
    FrameReader,
    VideoInfo,
    VideoWriter,
    is_frame_folder,
    is_frame_folder_output,
    open_frames,
    rotate_upright,
)

NTSC = Fraction(30000, 1001)
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def make_frames(n: int, height: int = 48, width: int = 64, noise: int = 0) -> list[np.ndarray]:
    """n (height, width, 3) uint8 gradient frames that brighten over time.

    `noise` adds per-frame texture so that every frame costs a similar number of bytes
    (used by the truncation tests).
    """
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:height, 0:width]
    frames = []
    for i in range(n):
        r = x * 200 // max(width - 1, 1) + i
        g = y * 200 // max(height - 1, 1) + i
        b = np.full_like(x, 40 + i * 3)
        frame = np.stack([r, g, b], axis=-1)
        if noise:
            frame = frame + rng.integers(-noise, noise + 1, frame.shape)
        frames.append(np.clip(frame, 0, 255).astype(np.uint8))
    return frames


def write_video(path: Path, frames, fps=NTSC, crf: int = 18) -> VideoWriter:
    with VideoWriter(path, fps, crf=crf) as writer:
        for frame in frames:
            writer.write(frame)
    return writer


def write_faststart_mp4(path: Path, frames, fps=25, rotation: float | None = None) -> None:
    """Plain PyAV mp4 with the index (moov) at the front; optional display rotation."""
    with av.open(str(path), "w", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        if rotation is not None:
            stream.set_display_rotation(rotation)
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# ---------------------------------------------------------------- writing


def test_write_mp4_reads_back_with_pyav(tmp_path):
    frames = make_frames(12)
    out = tmp_path / "out.mp4"
    writer = write_video(out, frames)
    assert writer.frames_written == 12
    assert writer.size == (64, 48)
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.codec_context.pix_fmt == "yuv420p"
        assert stream.average_rate == NTSC
        assert sum(1 for _ in container.decode(stream)) == 12
    assert leftovers(tmp_path) == ["out.mp4"]


def test_write_then_frame_reader_round_trip(tmp_path):
    frames = make_frames(12)
    out = tmp_path / "out.mp4"
    write_video(out, frames)
    reader = open_frames(out)
    assert reader.info == VideoInfo(out, 64, 48, NTSC, 12)
    decoded = list(reader)
    assert len(decoded) == 12
    for original, got in zip(frames, decoded):
        assert got.shape == (48, 64, 3) and got.dtype == np.uint8 and got.flags.c_contiguous
        assert np.abs(got.astype(int) - original.astype(int)).mean() < 3
    assert reader.warnings == []


@pytest.mark.parametrize("suffix", [".mov", ".mkv"])
def test_write_other_containers(tmp_path, suffix):
    out = tmp_path / f"out{suffix}"
    write_video(out, make_frames(5), fps=Fraction(24))
    reader = FrameReader(out)
    assert (reader.info.fps, reader.info.frames) == (Fraction(24), 5)
    assert sum(1 for _ in reader) == 5


def test_webm_is_vp9_and_reads_back(tmp_path):
    frames = make_frames(9)
    frames.append(frames[-1].copy())  # a repeated frame is still a frame
    out = tmp_path / "out.webm"
    writer = write_video(out, frames, fps=NTSC, crf=None)
    assert (writer.fps, writer.crf, writer.frames_written) == (NTSC, 31, 10)
    with av.open(str(out)) as container:
        assert container.streams.video[0].codec_context.name == "vp9"
    reader = FrameReader(out)
    assert (reader.info.fps, reader.info.frames) == (NTSC, 10)
    decoded = list(reader)
    assert len(decoded) == 10
    assert np.mean([np.abs(a.astype(int) - b).mean() for a, b in zip(frames, decoded)]) < 4
    assert leftovers(tmp_path) == ["out.webm"]


@pytest.mark.parametrize("fps,delay_cs", [(Fraction(25), 4), (Fraction(30), 3), (Fraction(15), 7),
                                          (NTSC, 3), (Fraction(120), 2)])
def test_gif_loops_at_the_nearest_centisecond_delay(tmp_path, fps, delay_cs):
    frames = make_frames(7, height=33, width=47)  # odd sizes need no padding in a GIF
    frames.append(frames[-1].copy())
    out = tmp_path / "out.gif"
    writer = write_video(out, frames, fps=fps)
    assert writer.fps == Fraction(100, delay_cs) and writer.size == (47, 33)
    reader = FrameReader(out)
    assert (reader.info.fps, reader.info.frames, reader.info.width, reader.info.height) == \
        (Fraction(100, delay_cs), 8, 47, 33)
    decoded = list(reader)
    assert len(decoded) == 8
    # 256 colours per frame, dithered: close to the original on smooth gradients.
    assert np.mean([np.abs(a.astype(int) - b).mean() for a, b in zip(frames, decoded)]) < 3
    with Image.open(out) as gif:  # Pillow reads the GIF's own fields: loop 0 = forever
        assert gif.info["loop"] == 0 and gif.n_frames == 8
        assert gif.info["duration"] == delay_cs * 10
    assert leftovers(tmp_path) == ["out.gif"]


def test_gif_frames_keep_their_own_colours(tmp_path):
    """Day and night frames in one GIF: each frame gets a palette of its own colours."""
    day = np.zeros((32, 32, 3), np.uint8); day[..., 2] = np.linspace(150, 255, 32, dtype=np.uint8)
    night = np.zeros((32, 32, 3), np.uint8); night[..., 0] = np.linspace(0, 40, 32, dtype=np.uint8)[:, None]
    write_video(tmp_path / "dn.gif", [day, night], fps=Fraction(10))
    got = list(FrameReader(tmp_path / "dn.gif"))
    assert np.abs(got[0].astype(int) - day).max() <= 2
    assert np.abs(got[1].astype(int) - night).max() <= 2


@pytest.mark.parametrize("name", ["out.webm", "out.gif"])
def test_webm_and_gif_leave_nothing_on_error(tmp_path, name):
    with pytest.raises(RuntimeError, match="boom"):
        with VideoWriter(tmp_path / name, NTSC) as writer:
            writer.write(make_frames(1)[0])
            raise RuntimeError("boom")
    assert leftovers(tmp_path) == []


def test_crf_out_of_range_names_the_codec(tmp_path):
    with pytest.raises(InputError, match=r"H264; give 0\.\.51"):
        VideoWriter(tmp_path / "out.mp4", NTSC, crf=52)
    with pytest.raises(InputError, match=r"VP9; give 0\.\.63"):
        VideoWriter(tmp_path / "out.webm", NTSC, crf=64)
    VideoWriter(tmp_path / "out.gif", NTSC, crf=99)  # GIF has no crf: ignored


def test_odd_size_is_padded_to_even(tmp_path):
    frames = make_frames(3, height=33, width=47)
    out = tmp_path / "odd.mp4"
    writer = write_video(out, frames)
    assert writer.size == (48, 34)
    info = FrameReader(out).info
    assert (info.width, info.height) == (48, 34)


def test_png_folder_output_round_trips_exactly(tmp_path):
    frames = make_frames(4, height=33, width=47)  # odd sizes are fine for PNG
    out = tmp_path / "frames"
    assert is_frame_folder_output(out)
    writer = write_video(out, frames)
    assert writer.size == (47, 33)
    # The frames, and the manifest that lets a later run recognise them as its own.
    assert leftovers(out) == [".timeflies-frames.json", "00000.png", "00001.png", "00002.png", "00003.png"]
    reader = FrameReader(out, folder_fps=Fraction(12))
    assert reader.info == VideoInfo(out, 47, 33, Fraction(12), 4)
    for original, got in zip(frames, reader, strict=True):
        np.testing.assert_array_equal(got, original)
    assert leftovers(tmp_path) == ["frames"]


def test_is_frame_folder_output(tmp_path):
    assert is_frame_folder_output("out/")
    assert is_frame_folder_output("out")
    assert is_frame_folder_output(tmp_path)  # existing directory
    assert not is_frame_folder_output("out.mp4")
    assert not is_frame_folder_output(tmp_path / "clip.mkv")


def test_exception_inside_with_leaves_nothing(tmp_path):
    out = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError, match="boom"):
        with VideoWriter(out, NTSC) as writer:
            for frame in make_frames(3):
                writer.write(frame)
            raise RuntimeError("boom")
    assert leftovers(tmp_path) == []


def test_exception_inside_with_leaves_no_folder(tmp_path):
    with pytest.raises(RuntimeError):
        with VideoWriter(tmp_path / "frames/", NTSC) as writer:
            writer.write(make_frames(1)[0])
            raise RuntimeError("boom")
    assert leftovers(tmp_path) == []


def test_writer_rejects_bad_extension_and_mismatched_frames(tmp_path):
    with pytest.raises(InputError, match=r"\.mp4"):
        VideoWriter(tmp_path / "out.avi", NTSC)
    with pytest.raises(ValueError, match="shape"):
        with VideoWriter(tmp_path / "out.mp4", NTSC) as writer:
            writer.write(make_frames(1)[0])
            writer.write(make_frames(1, height=32)[0])
    assert leftovers(tmp_path) == []


def test_output_is_deterministic(tmp_path):
    frames = make_frames(10)
    write_video(tmp_path / "a.mp4", frames)
    write_video(tmp_path / "b.mp4", frames)
    assert (tmp_path / "a.mp4").read_bytes() == (tmp_path / "b.mp4").read_bytes()


# ---------------------------------------------------------------- reading


def test_frame_folder_natural_sort_and_hidden_files(tmp_path):
    folder = tmp_path / "seq"
    folder.mkdir()
    for number, value in [(1, 10), (2, 20), (10, 30)]:
        Image.new("RGB", (8, 6), (value, 0, 0)).save(folder / f"{number}.png")
    Image.new("RGB", (8, 6), (99, 0, 0)).save(folder / ".hidden.png")
    (folder / "notes.txt").write_text("not a frame")
    assert is_frame_folder(folder)
    reader = FrameReader(folder)
    assert reader.info == VideoInfo(folder, 8, 6, Fraction(25), 3)
    assert [int(frame[0, 0, 0]) for frame in reader] == [10, 20, 30]


def test_frame_folder_stray_size_is_resized_with_warning(tmp_path):
    for i, size in enumerate([(8, 6), (16, 12), (8, 6)]):
        Image.new("RGB", size, (i * 50, 0, 0)).save(tmp_path / f"f{i}.jpg")
    reader = FrameReader(tmp_path)
    shapes = [frame.shape for frame in reader]
    assert shapes == [(6, 8, 3)] * 3
    assert len(reader.warnings) == 1 and "f1.jpg" in reader.warnings[0]


def test_frame_folder_unreadable_frame_names_file(tmp_path):
    Image.new("RGB", (8, 6)).save(tmp_path / "0.png")
    (tmp_path / "1.png").write_text("not a png")
    with pytest.raises(InputError, match=r"1\.png"):
        list(FrameReader(tmp_path))


def test_gif_input(tmp_path):
    frames = make_frames(7, height=30, width=40)
    gif = tmp_path / "anim.gif"
    images = [Image.fromarray(frame) for frame in frames]
    images[0].save(gif, save_all=True, append_images=images[1:], duration=100, loop=0)
    reader = FrameReader(gif)
    assert (reader.info.width, reader.info.height, reader.info.frames) == (40, 30, 7)
    assert reader.info.fps == Fraction(10)
    assert sum(1 for _ in reader) == 7


def test_rotation_metadata_makes_portrait(tmp_path):
    # A phone video tagged rotate=90: stored landscape, display matrix angle -90
    # (FFmpeg's counter-clockwise convention), shown turned clockwise = portrait.
    frame = np.zeros((48, 64, 3), np.uint8)
    frame[:16, :16] = 255  # white block at the stored top-left
    path = tmp_path / "phone.mp4"
    write_faststart_mp4(path, [frame] * 3, rotation=-90)
    reader = FrameReader(path)
    assert (reader.info.width, reader.info.height) == (48, 64)
    got = next(iter(reader))
    assert got.shape == (64, 48, 3) and got.flags.c_contiguous
    # Turned clockwise, the stored top-left lands at the top-right.
    assert got[:16, -16:].mean() > 200 and got[:16, :16].mean() < 50


def test_rotate_upright_convention():
    stored = np.arange(6).reshape(2, 3)[..., None]  # [[0 1 2], [3 4 5]]
    np.testing.assert_array_equal(rotate_upright(stored, 0), stored)
    np.testing.assert_array_equal(rotate_upright(stored, -90)[..., 0], [[3, 0], [4, 1], [5, 2]])
    np.testing.assert_array_equal(rotate_upright(stored, 90)[..., 0], [[2, 5], [1, 4], [0, 3]])
    np.testing.assert_array_equal(rotate_upright(stored, 180)[..., 0], [[5, 4, 3], [2, 1, 0]])


def test_missing_path(tmp_path):
    with pytest.raises(InputError, match="not found"):
        FrameReader(tmp_path / "x.mp4")


def test_text_file_named_mp4(tmp_path):
    fake = tmp_path / "x.mp4"
    fake.write_text("this is not a video\n")
    with pytest.raises(InputError, match="not a readable video") as caught:
        FrameReader(fake)
    assert "\n" not in str(caught.value)


def test_file_without_video_stream(tmp_path):
    sound = tmp_path / "sound.wav"
    with wave.open(str(sound), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x00\x00" * 800)
    with pytest.raises(InputError, match="no video stream"):
        FrameReader(sound)


def test_empty_folder(tmp_path):
    (tmp_path / "readme.txt").write_text("no frames here")
    with pytest.raises(InputError, match="no image frames"):
        FrameReader(tmp_path)


def test_truncated_mp4_with_index_at_end_is_input_error(tmp_path):
    # Our writer uses faststart, so build a plain FFmpeg-default mp4 directly.
    with av.open(str(tmp_path / "plain.mp4"), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for frame in make_frames(30, noise=3):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))
    data = (tmp_path / "plain.mp4").read_bytes()
    assert data.find(b"moov") > data.find(b"mdat")  # index really at the end
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 6 // 10])
    with pytest.raises(InputError, match="not a readable video"):
        FrameReader(cut)


def test_truncated_faststart_mp4_yields_readable_frames(tmp_path):
    full = tmp_path / "full.mp4"
    write_faststart_mp4(full, make_frames(60, noise=3))
    data = full.read_bytes()
    assert data.find(b"moov") < data.find(b"mdat")
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 6 // 10])
    reader = FrameReader(cut)
    assert reader.info.frames == 60  # what the index promises
    count = sum(1 for _ in reader)
    assert 0 < count < 60
    assert len(reader.warnings) == 1
    assert f"{count} of" in reader.warnings[0] and "60" in reader.warnings[0]
    assert "truncated" in reader.warnings[0]
    assert sum(1 for _ in reader) == count and len(reader.warnings) == 1  # no duplicates


def test_decode_error_mid_stream_keeps_earlier_frames(tmp_path, monkeypatch):
    # Which byte offset makes FFmpeg raise (rather than just hit EOF) depends on the
    # content, so feed the reader a fake stream whose third packet fails to decode.
    path = tmp_path / "clip.mp4"
    write_video(path, make_frames(5))
    reader = FrameReader(path)
    picture = av.VideoFrame.from_ndarray(make_frames(1)[0], format="rgb24")

    class FakeStream:
        thread_type = None

        def decode(self, packet):
            if packet == "bad":
                raise av.error.InvalidDataError(1094995529, "Invalid data")
            return [picture]  # one frame per packet; also what the drain returns

    class FakeContainer:
        streams = type("Streams", (), {"video": [FakeStream()]})()

        def demux(self, stream):
            return iter(["ok", "ok", "bad", "ok"])

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(reader, "_open", lambda path: FakeContainer())
    assert sum(1 for _ in reader) == 3  # two decoded + one drained after the error
    assert reader.warnings == ["clip.mp4: decoding stopped at frame 3 of 5 (file truncated "
                               "or corrupt); used the 3 readable frames"]


def test_truncated_faststart_mp4_without_frames_is_input_error(tmp_path):
    full = tmp_path / "full.mp4"
    write_faststart_mp4(full, make_frames(20))
    data = full.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: data.find(b"mdat") + 64])  # index intact, almost no picture data
    with pytest.raises(InputError, match="has no frames"):
        FrameReader(cut)


# ---------------------------------------------------------------- real data

needs_data = pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data not present")


@needs_data
def test_real_mpeg4_part2_video():
    path = DATA / "videos" / "sky-timelapse-grid.mp4"
    reader = FrameReader(path)
    assert reader.info == VideoInfo(path, 1042, 782, Fraction(25), 32)
    assert sum(1 for _ in reader) == 32
    assert reader.warnings == []


@needs_data
def test_real_gif():
    reader = FrameReader(DATA / "videos" / "cypress-webcam.gif")
    assert (reader.info.width, reader.info.height, reader.info.frames) == (320, 240, 53)
    assert sum(1 for _ in reader) == 53


@needs_data
def test_real_frame_folder():
    reader = FrameReader(DATA / "timelapse" / "pyramid-webcam")
    assert (reader.info.width, reader.info.height, reader.info.frames) == (320, 240, 51)
    assert sum(1 for _ in reader) == 51


@pytest.mark.parametrize("suffix,codec,pix_fmt", [
    (".webm", "libvpx", "yuv420p"),        # VP8 in WebM
    (".webm", "libvpx-vp9", "yuv420p"),    # VP9 in WebM
    (".avi", "mpeg4", "yuv420p"),          # MPEG-4 part 2 in AVI
    (".mov", "mjpeg", "yuvj420p"),         # Motion JPEG in QuickTime
])
def test_reads_other_codecs_and_containers(tmp_path, suffix, codec, pix_fmt):
    frames = make_frames(7)
    path = tmp_path / f"clip{suffix}"
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=25)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = pix_fmt
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))
    reader = FrameReader(path)
    got = list(reader)
    assert reader.info.fps == 25 and (reader.info.width, reader.info.height) == (64, 48)
    assert len(got) == 7
    assert np.abs(got[-1].astype(int) - frames[-1]).mean() < 8


def test_frame_folder_skips_label_maps_kept_beside_frames(tmp_path):
    for i in range(3):
        Image.fromarray(make_frames(1)[0]).save(tmp_path / f"{i:04d}.png")
    for name in ("segmentation.png", "sky_mask.png", "frame_seg.png"):
        Image.new("L", (64, 48)).save(tmp_path / name)
    reader = FrameReader(tmp_path)
    assert reader.info.frames == 3 and len(list(reader)) == 3 and not reader.warnings


@pytest.mark.parametrize("size,warned", [((3840, 2160), False), ((4096, 2304), False), ((4096, 2320), True),
                                         ((64, 48), False)])
def test_a_frame_past_h264_level_5_2_is_named(tmp_path, size, warned):
    w, h = size
    with VideoWriter(tmp_path / "out.mp4", NTSC) as writer:
        writer.write(np.zeros((h, w, 3), np.uint8))
    assert (writer.warning is not None) == warned
    if warned:
        assert "level 6" in writer.warning and f"{w}x{h}" in writer.warning
    with VideoWriter(tmp_path / "out.webm", NTSC) as writer:   # VP9 has no such limit here
        writer.write(np.zeros((48, 64, 3), np.uint8))
    assert writer.warning is None


def test_h264_settings_are_the_deterministic_ones(tmp_path):
    # Macroblock-tree rate control made the same frames encode differently under load
    # (test_output_is_deterministic); with it off x264 keeps no rate-control lookahead.
    with VideoWriter(tmp_path / "out.mp4", NTSC) as writer:
        writer.write(np.zeros((48, 64, 3), np.uint8))
    settings = (tmp_path / "out.mp4").read_bytes()  # x264 writes its settings into the stream
    assert b" mbtree=0 " in settings and b"rc_lookahead=" not in settings
    assert b" crf=18.0 " in settings
