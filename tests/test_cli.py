"""End-to-end tests of the `timeflies` command line.

Runs that must succeed go through typer's CliRunner (in process, fast). Runs that must fail
go through the real entry point in a subprocess (`python -m timelapse_cli`), because the
one-line message and exit code 2 come from `cli.main`, which wraps `app`. Every run uses a
tiny width-0.125 generator and small sizes so that it takes about a second; the real-data
tests skip when ../shared/data is absent.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from timelapse_cli.cli import app
from timelapse_cli.model import Generator, GeneratorConfig
from timelapse_cli.video import FrameReader, VideoWriter

from conftest import needs_data, registry

PHOTO = ("stills", "dpst", "in1.jpg")  # 700x437: --size 101 gives 101x63, odd both ways


# ---------------------------------------------------------------- helpers


def gradient(width: int, height: int, shift: int = 0) -> np.ndarray:
    """(height, width, 3) uint8 frame with some structure, brighter with `shift`."""
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack([x * 255 // max(width - 1, 1), y * 255 // max(height - 1, 1),
                    np.full_like(x, 60)], axis=-1) + shift
    return np.clip(rgb, 0, 255).astype(np.uint8)


def frame_folder(path: Path, n: int, size: tuple[int, int] = (40, 30)) -> Path:
    """A folder of n PNG frames 0.png .. (n-1).png, each brighter than the last."""
    path.mkdir(parents=True)
    for i in range(n):
        Image.fromarray(gradient(*size, shift=12 * i)).save(path / f"{i}.png")
    return path


def photo_png(path: Path, size: tuple[int, int] = (64, 48)) -> Path:
    Image.fromarray(gradient(*size)).save(path)
    return path


def probe(path: Path) -> dict:
    """What a player sees in an output video: codec, pixel format, decoded frame count, rate, size."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        ctx = stream.codec_context
        return {"codec": ctx.name, "pix_fmt": ctx.pix_fmt, "frames": frames,
                "rate": Fraction(stream.average_rate), "size": (ctx.width, ctx.height)}


def temp_leftovers(directory: Path) -> list[str]:
    return [p.name for p in directory.iterdir() if p.name.startswith(".") and ".part" in p.name]


def animate_ok(*args):
    """`timeflies animate ARGS` in process; must exit 0."""
    result = CliRunner().invoke(app, ["animate", *map(str, args)])
    assert result.exit_code == 0, f"{result.output}\n{result.stderr}\n{result.exception!r}"
    return result


def summary(stdout: str) -> str:
    """The one 'Wrote OUTPUT: N frames, WxH, R fps, K class(es), on DEVICE' line (never wrapped)."""
    lines = [line for line in stdout.splitlines() if line.startswith("Wrote ")]
    assert len(lines) == 1, stdout
    return lines[0]


def run_cli(*args) -> subprocess.CompletedProcess:
    """The real entry point (cli.main) in a subprocess, in a narrow console so that any
    wrapped message shows up as several lines."""
    env = {**os.environ, "COLUMNS": "60", "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "timelapse_cli", *map(str, args)], capture_output=True,
                          text=True, timeout=120, env=env)


def assert_one_line_error(result: subprocess.CompletedProcess, *needles: str) -> str:
    """Exit 2 and exactly one stderr line, no traceback, naming every needle."""
    assert result.returncode == 2, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    text = result.stderr.strip()
    assert "Traceback" not in text, text
    assert len(text.splitlines()) == 1, text
    assert text.startswith("error:"), text
    for needle in needles:
        assert needle.lower() in text.lower(), f"{needle!r} not in {text!r}"
    return text


@pytest.fixture
def outdir(tmp_path) -> Path:
    """An empty directory for the output alone, so leftovers are easy to see."""
    d = tmp_path / "out"
    d.mkdir()
    return d


# ---------------------------------------------------------------- A. real data


@pytest.mark.slow
@pytest.mark.parametrize("reference, frames, fps", [
    (("videos", "sky-timelapse-grid.mp4"), 32, Fraction(25)),   # MPEG-4 part 2
    (("videos", "cypress-webcam.gif"), 53, None),                # rate: whatever the reader says
    (("timelapse", "pyramid-webcam"), 51, Fraction(25)),         # folder: --folder-fps default
], ids=["mp4", "gif", "folder"])
def test_animate_real_reference(reference, frames, fps, tiny_weights, outdir):
    photo, ref = needs_data(*PHOTO), needs_data(*reference)
    fps = fps or FrameReader(ref).info.fps
    out = outdir / "result.mp4"
    result = animate_ok(photo, ref, "-o", out, "--weights", tiny_weights, "--size", "101", "--ref-size", "64")
    got = probe(out)
    assert got["codec"] == "h264" and got["pix_fmt"] == "yuv420p"
    assert got["frames"] == frames
    assert got["rate"] == fps
    assert got["size"] == (102, 64)  # 101x63 padded to even for yuv420p
    assert f"{frames} frames, 101x63" in summary(result.stdout)
    assert os.listdir(outdir) == ["result.mp4"]


@pytest.mark.slow
def test_frames_and_fps_options(tiny_weights, outdir):
    photo, ref = needs_data(*PHOTO), needs_data("videos", "sky-timelapse-grid.mp4")
    out = outdir / "ntsc.mp4"
    animate_ok(photo, ref, "-o", out, "--weights", tiny_weights, "--size", "101", "--ref-size", "64",
               "--frames", "10", "--fps", "30000/1001")
    got = probe(out)
    assert got["frames"] == 10
    assert got["rate"] == Fraction(30000, 1001)
    assert got["codec"] == "h264" and got["pix_fmt"] == "yuv420p"


@pytest.mark.slow
def test_png_folder_output_and_preview(tiny_weights, tmp_path):
    photo, ref = needs_data(*PHOTO), needs_data("timelapse", "pyramid-webcam")
    frames_dir, sheet = tmp_path / "frames", tmp_path / "sheet.png"
    result = animate_ok(photo, ref, "-o", f"{frames_dir}/", "--weights", tiny_weights, "--size", "101",
                        "--ref-size", "64", "--preview", sheet)
    pngs = sorted(frames_dir.glob("*.png"))
    assert len(pngs) == 51  # and beside them only the manifest naming them as timeflies' own
    assert sorted(p.name for p in frames_dir.iterdir()) == [".timeflies-frames.json"] + [p.name for p in pngs]
    with Image.open(pngs[0]) as im:
        assert im.size == (101, 63)  # PNGs keep the odd size
    with Image.open(sheet) as im:
        assert im.format == "PNG"
        im.load()
        assert im.width > 0 and im.height > 0
    assert "Preview:" in result.stdout
    assert temp_leftovers(tmp_path) == []


@pytest.mark.parametrize("name,codec,rate", [("o.gif", "gif", Fraction(100, 3)), ("o.webm", "vp9", Fraction(30))])
def test_gif_and_webm_outputs(name, codec, rate, tiny_weights, tmp_path):
    """N frames at the reference's rate (a GIF: its nearest whole-centisecond delay, 3 cs for 30 fps)."""
    ref, photo = frame_folder(tmp_path / "ref", 5), photo_png(tmp_path / "photo.png", (65, 47))
    out = tmp_path / "out" / name
    out.parent.mkdir()
    result = animate_ok(photo, ref, "-o", out, "--weights", tiny_weights, "--folder-fps", "30")
    got = probe(out)
    assert (got["codec"], got["frames"], got["rate"]) == (codec, 5, rate)
    line = summary(result.stdout)
    assert f"5 frames, 65x47" in line and f", {float(rate):g} fps" in line
    # VP9 needs even sides: the summary gives the size in the file and why; a GIF keeps 65x47.
    assert ("stored as 66x48" in line) == (codec == "vp9") and got["size"] == ((66, 48) if codec == "vp9" else (65, 47))
    assert os.listdir(out.parent) == [name]


def test_png_folder_output_with_dotted_name(tiny_weights, tmp_path):
    ref, photo = frame_folder(tmp_path / "ref", 2), photo_png(tmp_path / "photo.png")
    animate_ok(photo, ref, "-o", f"{tmp_path / 'run.v1'}/", "--weights", tiny_weights, "--size", "64")
    assert len(list((tmp_path / "run.v1").glob("*.png"))) == 2


# ---------------------------------------------------------------- B. bad input: exit 2, one line, nothing left
#
# Each case builds its inputs and returns (arguments after `animate`, words the message must hold).
# The cases' subprocesses run side by side (each spends ~2 s importing torch), once per module.

BAD_CASES, bad_case = registry()


@bad_case("missing-photo")
def _(tmp: Path, out: Path, weights: Path):
    # Brackets in a path are shown as they are, not read as Rich markup.
    ref = frame_folder(tmp / "ref", 2)
    return [tmp / "[draft] photo.jpg", ref, "-o", out / "o.mp4", "--weights", weights], \
        ("[draft] photo.jpg", "not found")


@bad_case("missing-photo-markup-like-path")
def _(tmp, out, weights):
    # '[/photo]' reads as a closing markup tag: it must neither crash Rich nor vanish.
    ref = frame_folder(tmp / "ref", 2)
    return [tmp / "x[" / "photo].jpg", ref, "-o", out / "o.mp4", "--weights", weights], \
        ("x[/photo].jpg", "not found")


@bad_case("missing-reference")
def _(tmp, out, weights):
    photo = photo_png(tmp / "photo.png")
    return [photo, tmp / "ref.mp4", "-o", out / "o.mp4", "--weights", weights], \
        ("reference", "ref.mp4", "not found")


@bad_case("text-file-as-reference")
def _(tmp, out, weights):
    photo, ref = photo_png(tmp / "photo.png"), tmp / "ref.mp4"
    ref.write_text("this is not a video\n" * 20)
    return [photo, ref, "-o", out / "o.mp4", "--weights", weights], ("ref.mp4", "not a readable video")


def _noisy_frames(n: int) -> list[np.ndarray]:
    """Frames with texture, so that every frame costs about the same number of bytes."""
    rng = np.random.default_rng(0)
    return [np.clip(gradient(64, 48, 4 * i).astype(int) + rng.integers(-30, 31, (48, 64, 3)), 0, 255)
            .astype(np.uint8) for i in range(n)]


def _truncate(path: Path, fraction: float) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * fraction)])


@bad_case("truncated-faststart-mp4")  # may also succeed with a warning: see its own test below
def _(tmp, out, weights):
    photo, ref = photo_png(tmp / "photo.png"), tmp / "trunc.mp4"
    with VideoWriter(ref, 25) as writer:  # faststart: the index is at the front
        for frame in _noisy_frames(20):
            writer.write(frame)
    _truncate(ref, 0.5)
    return [photo, ref, "-o", out / "o.mp4", "--weights", weights, "--size", "64"], ("trunc.mp4",)


@bad_case("truncated-mp4-index-at-end")
def _(tmp, out, weights):
    photo, ref = photo_png(tmp / "photo.png"), tmp / "tail.mp4"
    with av.open(str(ref), "w", format="mp4") as container:  # no movflags: moov written last
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i, frame in enumerate(_noisy_frames(20)):
            vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
            vf.pts = i
            container.mux(stream.encode(vf))
        container.mux(stream.encode(None))
    assert sum(1 for _ in FrameReader(ref)) == 20  # whole, the file is fine
    _truncate(ref, 0.5)  # the index is gone: nothing is readable
    return [photo, ref, "-o", out / "o.mp4", "--weights", weights, "--size", "64"], \
        ("tail.mp4", "not a readable video")


@bad_case("empty-reference-folder")
def _(tmp, out, weights):
    photo, ref = photo_png(tmp / "photo.png"), tmp / "frames"
    ref.mkdir()
    return [photo, ref, "-o", out / "o.mp4", "--weights", weights], ("frames", "no image frames")


@bad_case("reference-folder-of-text")
def _(tmp, out, weights):
    photo, ref = photo_png(tmp / "photo.png"), tmp / "frames"
    ref.mkdir()
    (ref / "notes.txt").write_text("no frames here\n")
    return [photo, ref, "-o", out / "o.mp4", "--weights", weights], ("frames", "no image frames")


@bad_case("text-file-as-photo")
def _(tmp, out, weights):
    photo, ref = tmp / "photo.jpg", frame_folder(tmp / "ref", 2)
    photo.write_text("not a photo\n")
    return [photo, ref, "-o", out / "o.mp4", "--weights", weights], ("photo.jpg", "not an image")


@bad_case("label-map-of-another-aspect")
def _(tmp, out, weights):
    photo, ref = photo_png(tmp / "photo.png", (48, 48)), frame_folder(tmp / "ref", 2, (40, 30))
    image_seg, video_seg = tmp / "image_seg.png", tmp / "video_seg.png"
    Image.fromarray(np.zeros((10, 30), np.uint8)).save(image_seg)  # 30x10 for a square photo
    Image.fromarray(np.zeros((30, 40), np.uint8)).save(video_seg)  # fine
    return [photo, ref, "-o", out / "o.mp4", "--weights", weights, "--image-seg", image_seg,
            "--video-seg", video_seg], ("image_seg.png", "30x10", "aspect")


@bad_case("corrupt-weights")
def _(tmp, out, weights):
    photo, ref, copy = photo_png(tmp / "photo.png"), frame_folder(tmp / "ref", 2), tmp / "weights"
    shutil.copytree(weights, copy)
    f = copy / "generator.safetensors"
    data = bytearray(f.read_bytes())
    data[-100:-90] = bytes(b ^ 0xFF for b in data[-100:-90])
    f.write_bytes(bytes(data))
    return [photo, ref, "-o", out / "o.mp4", "--weights", copy], ("generator.safetensors", "SHA-256")


@bad_case("mismatched-weights")
def _(tmp, out, weights):
    photo, ref, copy = photo_png(tmp / "photo.png"), frame_folder(tmp / "ref", 2), tmp / "weights"
    shutil.copytree(weights, copy)
    (copy / "SHA256SUMS").unlink()
    (copy / "config.json").write_text(json.dumps(GeneratorConfig(width=0.25).to_dict()))
    return [photo, ref, "-o", out / "o.mp4", "--weights", copy], ("do not match", "config.json")


@bad_case("missing-weights")
def _(tmp, out, weights):
    photo, ref = photo_png(tmp / "photo.png"), frame_folder(tmp / "ref", 2)
    return [photo, ref, "-o", out / "o.mp4", "--weights", tmp / "weights"], \
        ("config.json", "not found", "--weights")


@bad_case("bad-output-extension")
def _(tmp, out, weights):
    # Neither input exists: the output is checked before any input is read.
    return [tmp / "nophoto.jpg", tmp / "noref.mp4", "-o", out / "out.xyz", "--weights", weights], \
        ("out.xyz", ".mp4")


def _to(suffix: str, name: str):
    """Case `name` with its output written as `suffix`: GIF and WebM fail as the MP4 does."""
    def build(tmp, out, weights):
        args, needles = BAD_CASES[name](tmp, out, weights)
        return [out / f"o{suffix}" if arg == out / "o.mp4" else arg for arg in args], needles
    return build


BAD_CASES["text-file-as-reference-to-gif"] = _to(".gif", "text-file-as-reference")
BAD_CASES["label-map-of-another-aspect-to-webm"] = _to(".webm", "label-map-of-another-aspect")
BAD_CASES["corrupt-weights-to-gif"] = _to(".gif", "corrupt-weights")


@bad_case("crf-out-of-range-for-vp9")
def _(tmp, out, weights):
    return [tmp / "nophoto.jpg", tmp / "noref.mp4", "-o", out / "o.webm", "--crf", "70", "--weights", weights], \
        ("--crf 70", "VP9", "0..63")


@bad_case("unknown-motion")
def _(tmp, out, weights):
    return [tmp / "nophoto.jpg", tmp / "noref.mp4", "-o", out / "o.mp4", "--motion", "fast", "--weights", weights], \
        ("--motion 'fast'", "auto or none")


@pytest.fixture(scope="module")
def bad_runs(tiny_weights, tmp_path_factory) -> dict:
    """name -> (CompletedProcess, words the message must hold, output directory)."""
    cases = {}
    for name, build in BAD_CASES.items():
        tmp = tmp_path_factory.mktemp(name)
        out = tmp / "out"
        out.mkdir()
        args, needles = build(tmp, out, tiny_weights)
        cases[name] = (args, needles, out)
    with ThreadPoolExecutor(max(2, min(8, os.cpu_count() or 2))) as pool:
        futures = {name: pool.submit(run_cli, "animate", *args) for name, (args, _, _) in cases.items()}
    return {name: (futures[name].result(), needles, out) for name, (_, needles, out) in cases.items()}


@pytest.mark.parametrize("case", [name for name in BAD_CASES if name != "truncated-faststart-mp4"])
def test_bad_input(case, bad_runs):
    result, needles, out = bad_runs[case]
    assert_one_line_error(result, *needles)
    assert os.listdir(out) == []  # no output, no temp file


def test_truncated_faststart_mp4(bad_runs):
    """Index at the front, so the first half may decode: a warned run on the readable frames,
    or a clean exit 2."""
    result, needles, out = bad_runs["truncated-faststart-mp4"]
    assert "Traceback" not in result.stderr
    if result.returncode != 0:
        assert_one_line_error(result, *needles)
        assert os.listdir(out) == []
        return
    lines = result.stderr.strip().splitlines()
    assert lines and all(line.startswith("warning:") for line in lines), result.stderr
    assert "trunc.mp4" in result.stderr
    readable = sum(1 for _ in FrameReader(out.parent / "trunc.mp4"))
    assert 0 < readable < 20
    got = probe(out / "o.mp4")
    assert got["codec"] == "h264" and got["frames"] == readable
    assert f"{readable} frames" in summary(result.stdout)
    assert os.listdir(out) == ["o.mp4"]


# ---------------------------------------------------------------- C. must work


@pytest.mark.parametrize("n", [1, 2])
def test_one_and_two_frame_references(n, tiny_weights, tmp_path):
    ref, photo = frame_folder(tmp_path / "ref", n), photo_png(tmp_path / "photo.png")
    out = tmp_path / "o.mp4"
    animate_ok(photo, ref, "-o", out, "--weights", tiny_weights, "--size", "64")
    got = probe(out)
    assert got["frames"] == n and got["rate"] == 25


def _photo(kind: str, path: Path) -> Path:
    rgb = gradient(64, 48)
    if kind == "gray":
        Image.fromarray(rgb[:, :, 0]).save(path := path.with_suffix(".png"))
        expected_mode = "L"
    elif kind == "rgba":
        alpha = np.full((48, 64, 1), 255, np.uint8)
        alpha[:, :32] = 0
        Image.fromarray(np.concatenate([rgb, alpha], axis=2)).save(path := path.with_suffix(".png"))
        expected_mode = "RGBA"
    elif kind == "gray16":
        Image.fromarray(rgb[:, :, 0].astype(np.uint16) * 257).save(path := path.with_suffix(".png"))
        expected_mode = "I;16"
    elif kind == "cmyk":
        Image.fromarray(rgb).convert("CMYK").save(path := path.with_suffix(".jpg"), quality=95)
        expected_mode = "CMYK"
    else:
        raise ValueError(kind)
    with Image.open(path) as im:
        assert im.mode == expected_mode  # the file really is of the kind under test
    return path


@pytest.mark.parametrize("kind", ["gray", "rgba", "gray16", "cmyk"])
def test_photo_modes(kind, tiny_weights, tmp_path):
    photo, ref = _photo(kind, tmp_path / "photo"), frame_folder(tmp_path / "ref", 3)
    out = tmp_path / "o.mp4"
    result = animate_ok(photo, ref, "-o", out, "--weights", tiny_weights, "--size", "64")
    got = probe(out)
    assert got["frames"] == 3 and got["size"] == (64, 48)
    assert "64x48" in summary(result.stdout)


def test_exif_rotated_photo_follows_display_orientation(tiny_weights, tmp_path):
    photo = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 CW to display
    Image.fromarray(gradient(64, 48)).save(photo, exif=exif.tobytes(), quality=95)
    with Image.open(photo) as im:
        assert im.size == (64, 48)  # stored landscape
    ref, out = frame_folder(tmp_path / "ref", 2), tmp_path / "o.mp4"
    result = animate_ok(photo, ref, "-o", out, "--weights", tiny_weights, "--size", "64")
    width, height = probe(out)["size"]
    assert width < height and (width, height) == (48, 64)
    assert "48x64" in summary(result.stdout)


def test_label_maps_of_another_size_same_aspect(tiny_weights, tmp_path):
    photo = photo_png(tmp_path / "photo.png", (64, 48))
    ref = frame_folder(tmp_path / "ref", 3, (40, 30))
    image_seg, video_seg = tmp_path / "image_seg.png", tmp_path / "video_seg.png"
    ids = np.full((24, 32), 3, np.uint8)
    ids[:12] = 7  # two ids, not 0..1: they are remapped jointly
    Image.fromarray(ids).save(image_seg)
    ids = np.full((60, 80), 7, np.uint8)
    ids[40:] = 3
    Image.fromarray(ids).save(video_seg)
    out = tmp_path / "o.mp4"
    result = animate_ok(photo, ref, "-o", out, "--weights", tiny_weights, "--size", "64",
                        "--image-seg", image_seg, "--video-seg", video_seg)
    assert "2 class(es)" in summary(result.stdout)
    assert probe(out)["frames"] == 3


@pytest.mark.slow
def test_shipped_weights_small_size(tmp_path):
    photo, ref = photo_png(tmp_path / "photo.png", (80, 60)), frame_folder(tmp_path / "ref", 3)
    out = tmp_path / "o.mp4"
    result = animate_ok(photo, ref, "-o", out, "--size", "64")
    got = probe(out)
    assert got["frames"] == 3 and got["size"] == (64, 48) and got["codec"] == "h264"
    assert "3 frames, 64x48" in summary(result.stdout)


def test_output_path_with_brackets_is_printed_as_is(tiny_weights, tmp_path):
    ref, photo = frame_folder(tmp_path / "ref", 1), photo_png(tmp_path / "photo.png")
    out = tmp_path / "[final]" / "o.mp4"
    result = animate_ok(photo, ref, "-o", out, "--weights", tiny_weights, "--size", "64")
    assert out.is_file()
    assert "[final]" in summary(result.stdout)


# ---------------------------------------------------------------- D. determinism


def test_same_seed_same_bytes_other_seed_other_bytes(tiny_weights, tmp_path):
    ref, photo = frame_folder(tmp_path / "ref", 4), photo_png(tmp_path / "photo.png")
    outputs = {}
    for name, seed in [("a", 1), ("b", 1), ("c", 2)]:
        outputs[name] = tmp_path / f"{name}.mp4"
        animate_ok(photo, ref, "-o", outputs[name], "--weights", tiny_weights, "--size", "64", "--seed", seed)
    data = {name: path.read_bytes() for name, path in outputs.items()}
    assert data["a"] == data["b"]
    assert data["a"] != data["c"]


# ---------------------------------------------------------------- E. help and light imports


def _script() -> list[str]:
    """The installed console script when present, else the module."""
    script = Path(sys.executable).with_name("timeflies")
    return [str(script)] if script.exists() else [sys.executable, "-m", "timelapse_cli"]


@pytest.mark.parametrize("args", [["--help"], ["animate", "--help"]])
def test_help(args):
    env = {**os.environ, "COLUMNS": "200"}  # wide enough that no option name is cut
    r = subprocess.run(_script() + args, capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    assert "Usage" in r.stdout
    if args[0] == "animate":
        for option in ("--output", "--weights", "--size", "--fps", "--frames", "--seed", "--preview"):
            assert option in r.stdout


def test_cli_import_defers_heavy_modules():
    code = "import timelapse_cli.cli, sys; print('torch' in sys.modules, 'av' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["False", "False"]


@pytest.mark.parametrize("first", ["", "import timelapse_cli.cli, timelapse_cli.benchmark; "])
def test_library_api_names(first):
    """The README's `from timelapse_cli import animate, Animator, AnimateOptions`, in a fresh
    interpreter, and after the CLI's modules have loaded: `animate` is the function."""
    code = (first + "from timelapse_cli import animate, Animator, AnimateOptions, AnimateResult; "
            "import inspect; print(inspect.isfunction(animate), inspect.isclass(Animator), "
            "'output' in inspect.signature(animate).parameters)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-500:]
    assert r.stdout.split() == ["True", "True", "True"]


@pytest.mark.slow
def test_segmenter_choice_for_animate(tiny_weights, outdir):
    """Without label maps, animate segments photo and reference with one segmenter."""
    photo = needs_data("stills", "dpst", "in46.jpg")
    ref = needs_data("videos", "cypress-webcam.gif")
    common = ("--weights", tiny_weights, "--size", "64", "--ref-size", "64", "--frames", "3")
    line = summary(animate_ok(photo, ref, "-o", outdir / "a.mp4", "--segmenter", "builtin", *common).stdout)
    assert "2 class(es) from builtin segmenter" in line
    line = summary(animate_ok(photo, ref, "-o", outdir / "b.mp4", "--segmenter", "none", *common).stdout)
    assert "1 class(es) from none" in line
