"""timelapse_cli.benchmark and `timeflies benchmark`: tiny generator, synthetic clips, and
the real data for one end-to-end run."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from conftest import needs_data
from test_cli import assert_one_line_error, run_cli
from timelapse_cli.animate import Animator
from timelapse_cli.benchmark import SPEED_METHODS, BenchmarkOptions, evaluate, quality, speed
from timelapse_cli.cli import app
from timelapse_cli.metrics import psnr, ssim
from timelapse_cli.report import tables


def _scene(w=48, h=36, seed=0) -> np.ndarray:
    """(h, w, 3) float in [0, 1]: a smooth gradient with texture, brighter sky on top."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    base = np.stack([0.3 + 0.3 * x, 0.3 + 0.2 * y, np.full_like(x, 0.4)], -1)
    base[: h // 3] += 0.2
    return np.clip(base + 0.05 * rng.random((h, w, 3)), 0, 1)


def sequence(folder: Path, n: int = 6, gains=None, seed=0) -> Path:
    """A static-camera sequence whose whole frame brightens and darkens over time."""
    folder.mkdir(parents=True)
    scene = _scene(seed=seed)
    gains = gains or np.linspace(0.5, 1.4, n)
    for t, gain in enumerate(gains):
        Image.fromarray((np.clip(scene * gain, 0, 1) * 255).round().astype(np.uint8)).save(folder / f"{t:04d}.png")
    return folder


@pytest.fixture
def animator(tiny_generator):
    return Animator(device="cpu", model=tiny_generator)


def test_speed_rows_and_flop_counts(animator):
    opts = BenchmarkOptions(res=[32], frames=4, repeats=2, batch=2)
    ticks = []
    with torch.inference_mode():
        rows = speed(animator, 32, opts, lambda: ticks.append(1))
    assert [r["method"] for r in rows] == list(SPEED_METHODS)
    assert len(ticks) == len(SPEED_METHODS) * 3  # warm-up + 2 timed runs each
    by = {r["method"]: r for r in rows}
    for r in rows:
        assert r["res"] == 32 and r["frames"] == 4
        assert 0 < r["fps_min"] <= r["fps"] <= r["fps_max"]
    # The full generator per frame does the image encoding 4 times, the cached path once.
    assert by["timeflies-full"]["gflop_per_frame"] > 1.5 * by["timeflies"]["gflop_per_frame"] > 0
    assert by["still"]["gflop_per_frame"] == 0
    # The paper's width-1.0 architecture, run the same way, costs far more than this tiny model.
    assert by["paper-size"]["gflop_per_frame"] > 20 * by["timeflies"]["gflop_per_frame"]
    assert by["timeflies"]["gflops"] == pytest.approx(by["timeflies"]["gflop_per_frame"] * by["timeflies"]["fps"])


def test_evaluate_held_out_check(animator, tmp_path):
    sequence(tmp_path / "data" / "a-bright", n=6)
    sequence(tmp_path / "data" / "b-dark", n=5, gains=[1.2, 1.0, 0.8, 0.6, 0.4], seed=1)
    (tmp_path / "data" / "notes.txt").write_text("not a sequence")
    opts = BenchmarkOptions(methods=("still", "reinhard", "reinhard-class"), size=48, segmenter="none")
    with torch.inference_mode():
        ev = evaluate(animator, str(tmp_path / "data"), opts)
    assert [s["sequence"] for s in ev["sequences"]] == ["a-bright", "b-dark"]
    for seq in ev["sequences"]:
        rows = {r["method"]: r for r in seq["rows"]}
        assert list(rows) == ["still", "reinhard", "reinhard-class"]
        # "still" is I itself, the flipped mean frame: check it against the target by hand.
        frames = sorted((tmp_path / "data" / seq["sequence"]).glob("*.png"))
        clip = torch.stack([torch.from_numpy(np.asarray(Image.open(f), np.float32) / 255).permute(2, 0, 1)
                            for f in frames])
        target = clip.flip(-1)
        i = ((target.mean(0, keepdim=True) * 255).round() / 255)
        assert rows["still"]["psnr"] == pytest.approx(psnr(i, target).mean().item(), rel=1e-5)
        assert rows["still"]["ssim"] == pytest.approx(ssim(i, target).mean().item(), rel=1e-5)
        assert rows["still"]["e_tmp"] == 0.0
        # Frames that are the scene times a gain: per-frame colour transfer recovers them
        # far better than the unchanged mean frame does.
        assert rows["reinhard"]["psnr"] > rows["still"]["psnr"] + 5
        assert rows["reinhard"]["ssim"] > rows["still"]["ssim"]
        assert rows["reinhard"]["sigma_tmp"] < rows["still"]["sigma_tmp"]
        assert seq["target_e_tmp"] > 0
    mean = {r["method"]: r for r in ev["mean"]}
    want = np.mean([s["rows"][1]["psnr"] for s in ev["sequences"]])
    assert mean["reinhard"]["psnr"] == pytest.approx(want)


def test_quality_on_a_pair(animator, tmp_path):
    ref = sequence(tmp_path / "ref", n=4)
    photo = tmp_path / "photo.png"
    Image.fromarray((_scene(60, 40, seed=5) * 255).astype(np.uint8)).save(photo)
    opts = BenchmarkOptions(size=60, segmenter="none")
    with torch.inference_mode():
        q = quality(animator, str(photo), str(ref), opts)
    rows = {r["method"]: r for r in q["rows"]}
    assert list(rows) == ["(reference)", "timeflies", "still", "reinhard", "reinhard-class"]
    assert q["frames"] == 4 and q["size"] == [60, 40]
    assert "generator's own" in q["style_network"]
    assert rows["still"]["ssim"] == pytest.approx(1.0) and rows["still"]["e_tmp"] == 0.0
    assert rows["(reference)"]["e_tmp"] > 0
    # The baseline that follows the reference changes over time and matches its style
    # better than the unchanged photo does.
    assert rows["reinhard"]["e_tmp"] > 0
    assert rows["reinhard"]["gram"] < rows["still"]["gram"]
    for r in q["rows"][1:]:
        assert len(r["ssim_per_frame"]) == len(r["gram_per_frame"]) == 4
    assert len(tables(type("R", (), dict(machine={}, speed=[], stages=None, quality=q, evaluation=None, borders=None,
                                       cross_scene=None))())) == 1


def test_quality_gram_distance_on_imported_vgg(animator, tmp_path):
    from test_weights import _fake_torchvision_vgg19

    torch.save(_fake_torchvision_vgg19(), tmp_path / "vgg19-fake.pth")
    ref = sequence(tmp_path / "ref", n=3)
    photo = tmp_path / "photo.png"
    Image.fromarray((_scene(40, 30, seed=5) * 255).astype(np.uint8)).save(photo)
    own = BenchmarkOptions(size=40, segmenter="none", methods=("still",))
    vgg = BenchmarkOptions(size=40, segmenter="none", methods=("still",), vgg=str(tmp_path / "vgg19-fake.pth"))
    with torch.inference_mode():
        a, b = quality(animator, str(photo), str(ref), own), quality(animator, str(photo), str(ref), vgg)
    assert b["style_network"] == "ImageNet VGG-19 (vgg19-fake.pth)"
    # Another network (full width, other weights), so other distances; the rest is the same.
    assert b["rows"][1]["gram"] != pytest.approx(a["rows"][1]["gram"], rel=1e-3)
    assert b["rows"][1]["ssim"] == a["rows"][1]["ssim"]


def test_cli_speed_json_and_plot(tiny_weights, tmp_path):
    out_json, out_png = tmp_path / "b.json", tmp_path / "b.png"
    result = CliRunner().invoke(app, ["benchmark", "--res", "24", "32", "--frames", "2", "--repeats", "1",
                                      "--weights", str(tiny_weights), "--json", str(out_json),
                                      "--plot", str(out_png)])
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    assert "Frame generation speed" in result.output and "timeflies-full" in result.output
    data = json.loads(out_json.read_text())
    assert sorted({r["res"] for r in data["speed"]}) == [24, 32]
    assert {"cpu", "torch", "av", "peak_gflops"} <= set(data["machine"])
    assert data["machine"]["peak_gflops"]["conv3x3"] > 0
    with Image.open(out_png) as im:
        assert im.format == "PNG" and im.width > 300
    assert not [p for p in tmp_path.iterdir() if ".part" in p.name]


def test_cli_bad_input_is_one_line(tmp_path, tiny_weights):
    assert_one_line_error(run_cli("benchmark", "--eval", tmp_path / "nowhere", "--weights", tiny_weights),
                          "nowhere", "folder")
    assert_one_line_error(run_cli("benchmark", "--image", tmp_path / "x.png", "--weights", tiny_weights),
                          "--reference")
    assert_one_line_error(run_cli("benchmark", "--res", "32", "--methods", "wct", "--weights", tiny_weights),
                          "wct")
    assert_one_line_error(run_cli("benchmark", "--res", "32", "--vgg", tmp_path / "v.pth", "--weights", tiny_weights),
                          "--vgg", "--image")
    # Output paths are checked before the run, not after minutes of it.
    (tmp_path / "file").write_text("")
    for option, name in (("--json", "out.json"), ("--plot", "out.png")):
        result = run_cli("benchmark", "--res", "32", option, tmp_path / "file" / name, "--weights", tiny_weights)
        assert_one_line_error(result, "file", "folder")
        assert "speed" not in result.stdout
    short = sequence(tmp_path / "data" / "one", n=1)
    assert_one_line_error(run_cli("benchmark", "--eval", short.parent, "--segmenter", "none",
                                  "--weights", tiny_weights), "at least 2")


@pytest.mark.slow
def test_cli_real_eval_and_pair(tiny_weights, tmp_path):
    data = needs_data("timelapse")
    photo = needs_data("stills", "dpst", "in1.jpg")
    result = CliRunner().invoke(app, [
        "benchmark", "--eval", str(data), "--sequences", "sky-clip-0[01]", "--image", str(photo),
        "--reference", str(data / "pyramid-webcam"), "--max-frames", "6", "--size", "64",
        "--stage-size", "64", "--weights", str(tiny_weights), "--json", str(tmp_path / "r.json")])
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    r = json.loads((tmp_path / "r.json").read_text())
    assert [s["sequence"] for s in r["evaluation"]["sequences"]] == ["sky-clip-00", "sky-clip-01"]
    assert r["stages"]["frames"] == 6 and set(r["stages"]["stages"]) == {
        "decode", "segment", "sky", "encode image", "generate", "encode video"}
    # The stage run is animate's own: with motion, and the output's flow measured.
    assert r["stages"]["sky"] and set(r["stages"]["motion"]) >= {"sky_degrees", "sky_speed", "ground_speed"}
    assert sum(r["stages"]["stages"].values()) <= r["stages"]["seconds"] * 1.01
    assert r["quality"]["frames"] == 6
