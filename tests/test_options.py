"""Every option works: exit 0 with an output that reads back as claimed, or exit 2 with one line.

The runs go through `cli.run` in process (the same code as the `timeflies` script, whose
`main` only adds sys.exit), on tiny synthetic scenes at 64 px, so that hundreds of them
fit in the suite's time. A run that raises instead of returning fails its test: that is
a traceback for the user.
"""
from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from pairwise import pairs_of, pairwise
from test_cli import assert_one_line_error, probe
from test_sky import make_scene
from timelapse_cli import benchmark
from timelapse_cli.cli import run
from timelapse_cli.weights import from_pretrained

HUGE_INT, HUGE_FLOAT = "1000000000000", "1e300"
BAD_VALUES = ("0", "-1", "nan", "inf", "huge")


# ---------------------------------------------------------------- helpers


def cli(*args) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `timeflies ARGS`, in process."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


def refused(code: int, out: str, err: str, *words: str) -> str:
    """Exit 2 and exactly one line on stderr, no traceback, naming each of `words`."""
    return assert_one_line_error(SimpleNamespace(returncode=code, stdout=out, stderr=err), *words)


def decoded(path: Path) -> int:
    """Frames a player gets from a video file, or PNGs in a frame folder."""
    if path.is_dir():
        return sum(1 for p in path.iterdir() if p.suffix == ".png")
    return probe(path)["frames"]


def animated(code: int, out: str, err: str, output: Path, frames: int | None = None) -> int:
    """Exit 0, the summary's frame count, and an output that decodes to exactly that."""
    assert code == 0, f"exit {code}\n{out}\n{err}"
    claimed = int(re.search(r": (\d+) frames, ", out).group(1))
    assert decoded(output) == claimed
    if frames is not None:
        assert claimed == frames
    return claimed


def either(code: int, out: str, err: str, check_ok=None) -> None:
    """A value may be accepted (then `check_ok` verifies the output) or refused in one line."""
    if code == 2:
        refused(code, out, err)
    else:
        assert code == 0, f"exit {code}\n{out}\n{err}"
        if check_ok:
            check_ok()


def value(kind: str, which: str) -> str:
    if which == "huge":
        return {"int": HUGE_INT, "float": HUGE_FLOAT, "size": "100000x100000", "rate": "1e9"}[kind]
    return which


@pytest.fixture(scope="module")
def scenes(tmp_path_factory) -> dict:
    """A photo with sky (label maps in the 8-group format) and one without, each with a
    4-frame reference whose sky drifts."""
    found = {}
    for name, sky in (("sky", True), ("nosky", False)):
        d = tmp_path_factory.mktemp(name)
        found[name] = make_scene(d, n=4, size=(32, 24), photo_sky=sky)
    return found


# ---------------------------------------------------------------- animate: the option matrix

METHODS = ("timeflies", "still", "reinhard", "reinhard-class")
MATTES, MOTIONS, LOOPS = ("soft", "hard"), ("auto", "none"), (False, True)
FRAMES = ("fewer", "equal", "more")
KINDS = ("mp4", "gif", "webm", "frames")
PHOTOS = ("sky", "nosky")
MATRIX = pairwise([METHODS, MATTES, MOTIONS, LOOPS, FRAMES, KINDS, PHOTOS])


def test_the_matrix_covers_every_pair():
    full = set().union(*(pairs_of(c) for c in __import__("itertools").product(
        METHODS, MATTES, MOTIONS, LOOPS, FRAMES, KINDS, PHOTOS)))
    assert set().union(*(pairs_of(c) for c in MATRIX)) == full
    assert len(MATRIX) < 40  # a few dozen runs, not 768


@pytest.mark.parametrize("method,matte,motion,loop,frames,kind,photo", MATRIX,
                         ids=["-".join(map(str, c)) for c in MATRIX])
def test_animate_matrix(method, matte, motion, loop, frames, kind, photo, scenes, tiny_weights, tmp_path):
    s = scenes[photo]
    n = {"fewer": 2, "equal": None, "more": 7}[frames]
    output = tmp_path / ("o/" if kind == "frames" else f"o.{kind}")
    args = ["animate", s["photo"], s["ref"], "-o", output, "--weights", tiny_weights, "--size", "64",
            "--image-seg", s["image_seg"], "--video-seg", s["video_seg"], "--method", method, "--matte", matte,
            "--motion", motion, *(["--loop"] if loop else []), *(["--frames", n] if n else [])]
    code, out, err = cli(*args)
    expected = n or (2 * 4 - 2 if loop else 4)
    animated(code, out, err, output, expected)
    assert "64x48" in out


# ---------------------------------------------------------------- every numeric option at odd values

ANIMATE_NUMBERS = {"--size": "size", "--max-size": "int", "--ref-size": "int", "--fps": "rate", "--frames": "int",
                   "--folder-fps": "rate", "--seed": "int", "--batch": "int", "--crf": "int",
                   "--motion-scale": "float"}


@pytest.mark.parametrize("which", BAD_VALUES)
@pytest.mark.parametrize("option", list(ANIMATE_NUMBERS))
def test_animate_numbers(option, which, scenes, tiny_weights, tmp_path):
    s = scenes["sky"]
    output = tmp_path / "o.mp4"
    base = {"--size": "64"}
    base[option] = value(ANIMATE_NUMBERS[option], which)
    args = ["animate", s["photo"], s["ref"], "-o", output, "--weights", tiny_weights, "--image-seg",
            s["image_seg"], "--video-seg", s["video_seg"], *[x for kv in base.items() for x in kv]]
    code, out, err = cli(*args)
    either(code, out, err, lambda: animated(code, out, err, output))
    if code == 2:
        assert not output.exists()


def test_huge_output_is_refused_naming_the_memory_limit(scenes, tiny_weights, tmp_path):
    s = scenes["sky"]
    code, out, err = cli("animate", s["photo"], s["ref"], "-o", tmp_path / "o.mp4", "--weights", tiny_weights,
                         "--size", "100000", "--max-size", "100000", "--segmenter", "none")
    refused(code, out, err, "100000x75000", "memory", "GB", "largest")


@pytest.fixture(scope="module")
def train_data(tmp_path_factory) -> Path:
    """One 6-frame sequence of 32x32 frames."""
    root = tmp_path_factory.mktemp("train")
    seq = root / "data" / "seq"
    seq.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(seq / f"{i}.png")
    return root / "data"


TRAIN_NUMBERS = {"--size": "size", "--clip": "int", "--clips": "int", "--width": "float", "--noise-sigma": "float",
                 "--affine-smooth": "int", "--val-every": "int", "--epochs": "int", "--max-steps": "int",
                 "--max-minutes": "float", "--save-every": "int", "--alpha-decay": "float", "--lr-g": "float",
                 "--lr-d": "float", "--lr-v": "float", "--seed": "int",
                 **{f"--w-{t}": "float" for t in ("pixel", "mse", "log-mse", "adv", "perc", "content", "style",
                                                    "flow", "cycle")}}


@pytest.mark.parametrize("which", BAD_VALUES)
@pytest.mark.parametrize("option", list(TRAIN_NUMBERS))
def test_train_numbers(option, which, train_data, tmp_path):
    run_dir = tmp_path / "run"
    base = {"--size": "32", "--clip": "3", "--width": "0.125", "--max-steps": "1"}
    base[option] = value(TRAIN_NUMBERS[option], which)
    code, out, err = cli("train", "--data", train_data, "--out", run_dir, "--segmenter", "none", "-q",
                         *[x for kv in base.items() for x in kv])

    def trained():
        state = __import__("torch").load(run_dir / "checkpoint" / "state.pt", weights_only=True)
        assert state["step"] >= 1
        from_pretrained(run_dir / "checkpoint" / "generator")  # loads: finite weights, matching config

    either(code, out, err, trained)
    if code == 2:
        assert not run_dir.exists()  # refused before anything was written


LIGHTS_NUMBERS = {"--steps": "int", "--size": "int", "--seed": "int"}


@pytest.mark.parametrize("which", BAD_VALUES)
@pytest.mark.parametrize("option", list(LIGHTS_NUMBERS))
def test_train_lights_numbers(option, which, train_data, tmp_path):
    out = tmp_path / "w"
    base = {"--steps": "1", "--size": "32"}
    base[option] = value(LIGHTS_NUMBERS[option], which)
    code, stdout, err = cli("train-lights", "--data", train_data, "--out", out, "--segmenter", "none", "-q",
                            *[x for kv in base.items() for x in kv])
    # train_data has no night frames: a run that gets past the options says so in one line
    refused(code, stdout, err)
    assert not out.exists()
    if option == "--seed" and which in ("0",):
        assert "night" in err


BENCH_NUMBERS = {"--res": "int", "--frames": "int", "--repeats": "int", "--size": "int", "--stage-size": "int",
                 "--max-frames": "int", "--batch": "int", "--seed": "int"}


@pytest.fixture
def no_peak_rate(monkeypatch):
    """The machine's peak rate (seconds of matrix products) is not what these tests look at."""
    monkeypatch.setattr(benchmark, "peak_gflops", lambda device: {"matmul": 1.0, "conv3x3": 1.0})


@pytest.mark.parametrize("which", BAD_VALUES)
@pytest.mark.parametrize("option", list(BENCH_NUMBERS))
def test_benchmark_numbers(option, which, scenes, tiny_weights, tmp_path, no_peak_rate):
    s = scenes["sky"]
    report = tmp_path / "b.json"
    base = {"--res": "16", "--frames": "2", "--repeats": "1", "--size": "16", "--stage-size": "16",
            "--max-frames": "3"}
    base[option] = value(BENCH_NUMBERS[option], which)
    code, out, err = cli("benchmark", "--image", s["photo"], "--reference", s["ref"], "--segmenter", "none",
                         "--methods", "still", "--weights", tiny_weights, "--json", report,
                         *[x for kv in base.items() for x in kv])

    def reported():
        figures = json.loads(report.read_text())
        assert figures["speed"] and figures["quality"]["rows"]

    either(code, out, err, reported)
    if code == 2:
        assert not report.exists()


# ---------------------------------------------------------------- devices this machine does not have

DEVICES = ("mps", "meta", "cuda", "cuda:3", "xpu", "vulkan", "gpu")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("command", ["animate", "segment", "train", "benchmark"])
def test_devices_this_machine_lacks(command, device, scenes, train_data, tiny_weights, tmp_path):
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    s = scenes["sky"]
    args = {"animate": ["animate", s["photo"], s["ref"], "-o", tmp_path / "o.mp4", "--weights", tiny_weights],
            "segment": ["segment", s["photo"], "-o", tmp_path / "o.png"],
            "train": ["train", "--data", train_data, "--out", tmp_path / "run"],
            "benchmark": ["benchmark", "--res", "16", "--weights", tiny_weights]}[command]
    refused(*cli(*args, "--device", device), f"--device {device}")
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- one line for each of the cases


def test_option_parsing_errors_are_one_line(tmp_path):
    refused(*cli("animate"), "missing argument", "timeflies animate --help")
    refused(*cli("animate", "a.jpg", "b.mp4", "--nope"), "--nope")
    refused(*cli("train", "--data", tmp_path, "--epochs", "many"), "--epochs", "integer")
    refused(*cli("benchmark", "--res", "big"), "--res")
    refused(*cli("frobnicate"), "frobnicate")


def test_option_parsing_errors_are_one_line_from_the_script():
    """The same through the real entry point (cli.main), without the usage box."""
    from test_cli import run_cli

    assert_one_line_error(run_cli("animate", "a.jpg", "b.mp4", "--frames", "many"), "--frames", "--help")


def test_empty_method_list_is_refused(tiny_weights):
    refused(*cli("benchmark", "--methods", "", "--weights", tiny_weights), "--methods", "no method")
    refused(*cli("benchmark", "--methods", " , ", "--weights", tiny_weights), "--methods")
    refused(*cli("benchmark", "--methods", "still,magic", "--weights", tiny_weights), "magic")


def test_a_photo_is_not_a_label_map(scenes, tiny_weights, tmp_path):
    s = scenes["sky"]
    refused(*cli("animate", s["photo"], s["ref"], "-o", tmp_path / "o.mp4", "--weights", tiny_weights,
                 "--image-seg", s["photo"], "--video-seg", s["video_seg"]), "photo.png", "looks like a photo")
    assert list(tmp_path.iterdir()) == []


def test_mmseg_options_are_not_silently_ignored(scenes, tiny_weights, tmp_path):
    s = scenes["sky"]
    refused(*cli("segment", s["photo"], "-o", tmp_path / "m.png", "--segmenter", "builtin", "--config", "x.py"),
            "--config", "builtin")
    refused(*cli("animate", s["photo"], s["ref"], "-o", tmp_path / "o.mp4", "--weights", tiny_weights,
                 "--segmenter", "none", "--config", "x.py"), "--config", "--segmenter none")
    assert list(tmp_path.iterdir()) == []


def test_summary_gives_the_size_stored_and_why(scenes, tiny_weights, tmp_path):
    s = scenes["nosky"]
    output = tmp_path / "o.mp4"
    code, out, err = cli("animate", s["photo"], s["ref"], "-o", output, "--weights", tiny_weights,
                         "--size", "17x5", "--segmenter", "none")
    animated(code, out, err, output, 4)
    assert "17x5 (stored as 18x6: H.264 and VP9 need even sides" in out
    assert probe(output)["size"] == (18, 6)


def test_benchmark_sizes_the_metrics_cannot_use(tiny_weights, tmp_path, no_peak_rate):
    photo, ref = tmp_path / "wide.png", tmp_path / "ref"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (20, 2000, 3), dtype=np.uint8)).save(photo)
    ref.mkdir()
    for i in range(3):
        Image.fromarray(np.full((24, 32, 3), 40 * i, np.uint8)).save(ref / f"{i}.png")
    common = ("--segmenter", "none", "--methods", "still", "--weights", tiny_weights)
    refused(*cli("benchmark", "--image", photo, "--reference", ref, *common), "wide.png", "256x3", "--size 939")
    refused(*cli("benchmark", "--eval", tmp_path, "--size", "1", *common), "--size 1", "11")
    refused(*cli("benchmark", "--eval", tmp_path, "--size", "3", *common), "--size 3")
    refused(*cli("benchmark", "--eval", tmp_path, "--max-frames", "1", *common), "--max-frames 1", "2")
    refused(*cli("benchmark", "--res", "100000", *common), "--res", "memory", "largest --res")
    refused(*cli("benchmark", "--borders", tmp_path, "--plot", tmp_path / "p.png", *common), "--plot")


def test_every_loss_weight_zero_is_refused(train_data, tmp_path):
    refused(*cli("train", "--data", train_data, "--out", tmp_path / "run", "--w-log-mse", "0"), "loss weight")
    assert not (tmp_path / "run").exists()


def test_a_gif_slower_than_its_longest_delay_says_the_rate_it_holds(scenes, tiny_weights, tmp_path):
    """A GIF's delay is 16 bits of centiseconds: --fps 1/3600 becomes 100/65535 fps, and the
    summary says so instead of the rate asked for."""
    s, output = scenes["nosky"], tmp_path / "o.gif"
    code, out, err = cli("animate", s["photo"], s["ref"], "-o", output, "--weights", tiny_weights, "--size", "32",
                         "--segmenter", "none", "--fps", "1/3600")
    animated(code, out, err, output, 4)
    assert f"{100 / 65535:g} fps" in out
    with __import__("av").open(str(output)) as c:
        assert {f.duration for f in c.decode(c.streams.video[0])} == {65535}


def test_sizes_of_runs_not_asked_for_are_not_checked(tiny_weights, no_peak_rate):
    """--stage-size (default 512) is used only with --image: a large --batch for speed alone runs."""
    code, out, err = cli("benchmark", "--res", "16", "--frames", "2", "--repeats", "1", "--methods", "still",
                         "--batch", "256", "--weights", tiny_weights)
    assert code == 0, err


def test_train_choices_are_one_line(train_data, tmp_path):
    for option in ("--output", "--affine-base", "--photo", "--segmenter"):
        refused(*cli("train", "--data", train_data, "--out", tmp_path / "run", option, "x"), option, "'x'")
    assert not (tmp_path / "run").exists()
