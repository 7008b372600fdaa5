"""timelapse_cli.benchmark and `timeflies benchmark`: tiny generator, synthetic clips, and
the real data for one end-to-end run."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from conftest import needs_data
from test_cli import assert_one_line_error, run_cli
from timelapse_cli.animation import Animator
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
                                       cross_scene=None, sky_clips=None))())) == 1


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


def test_other_weights_are_timed_in_the_same_run(tiny_weights, tmp_path):
    from timelapse_cli.model import Generator, GeneratorConfig
    from timelapse_cli.weights import save_pretrained

    torch.manual_seed(0)
    small = save_pretrained(Generator(GeneratorConfig(width=0.125, output="affine", work_size=16)), tmp_path / "s")
    out_json = tmp_path / "b.json"
    result = CliRunner().invoke(app, ["benchmark", "--res", "48", "--frames", "2", "--repeats", "1", "--methods",
                                      "timeflies", "--weights", str(small), "--compare-weights", str(tiny_weights),
                                      "--json", str(out_json)])
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    rows = {r["method"]: r for r in json.loads(out_json.read_text())["speed"]}
    assert set(rows) == {"timeflies", "timeflies-full", "paper-size", f"timeflies ({tiny_weights})"}
    # The network at 16 px costs a fraction of the same network at the output's 48 px (E_GV
    # reads the reference frames at their own size in both).
    assert rows["timeflies"]["gflop_per_frame"] < 0.5 * rows[f"timeflies ({tiny_weights})"]["gflop_per_frame"]
    assert_one_line_error(run_cli("benchmark", "--eval", tmp_path, "--compare-weights", tiny_weights,
                                  "--weights", tiny_weights), "--compare-weights", "--res")
    assert_one_line_error(run_cli("benchmark", "--res", "32", "--methods", "still", "--compare-weights",
                                  tiny_weights, "--weights", tiny_weights), "--compare-weights", "timeflies")


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
    assert_one_line_error(run_cli("benchmark", "--sky-clips", short.parent, "--weights", tiny_weights), "--image")
    assert_one_line_error(run_cli("benchmark", "--sky-clips", short.parent, "--image", tmp_path / "x.png",
                                  "--segmenter", "none", "--weights", tiny_weights), "segmenter")


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


@pytest.mark.slow
def test_cli_sky_clips_moves_the_sky_with_a_drifting_clip_only(tiny_weights, tmp_path):
    """sky-clip-03's clouds drift about 2.4 px/frame rightwards: the photo's sky follows;
    sky-clip-00's drift 0.37: it stays still."""
    data = needs_data("timelapse")
    photo = needs_data("stills", "dpst", "in46.jpg")
    result = CliRunner().invoke(app, [
        "benchmark", "--sky-clips", str(data), "--sequences", "sky-clip-00,sky-clip-03", "--image", str(photo),
        "--size", "128", "--weights", str(tiny_weights), "--json", str(tmp_path / "r.json")])
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    sc = json.loads((tmp_path / "r.json").read_text())["sky_clips"]
    still, drifting = sc["rows"]
    assert (still["clip"], still["must_move"], still["moved"], still["ok"]) == ("sky-clip-00", False, False, True)
    assert drifting["drift"] == pytest.approx(2.4, abs=0.3) and drifting["moved"]
    assert drifting["error_degrees"] < 35 and drifting["ok"]
    assert (sc["moving"], sc["moving_ok"], sc["still"], sc["still_ok"]) == (1, 1, 1, 1)
    assert "1 of 1 drifting clips move its sky" in " ".join(result.output.split())


# ---------------------------------------------------------------------------- nights

def test_evaluate_reports_night_frames_only_where_there_are_some(animator, tmp_path):
    sequence(tmp_path / "data" / "a-day", n=4, gains=[1.0, 1.2, 0.9, 1.1])
    # Scene mean luma ~0.5: gains 0.2 and 0.1 make two night frames (< 0.12).
    sequence(tmp_path / "data" / "b-dusk", n=5, gains=[1.2, 0.8, 0.5, 0.2, 0.1], seed=1)
    opts = BenchmarkOptions(methods=("still", "reinhard-class"), size=48, segmenter="none")
    with torch.inference_mode():
        ev = evaluate(animator, str(tmp_path / "data"), opts)
    day, dusk = ev["sequences"]
    assert day["night"] is None
    night = dusk["night"]
    assert night["frames"] == 2
    frames = sorted((tmp_path / "data" / "b-dusk").glob("*.png"))
    target = torch.stack([torch.from_numpy(np.asarray(Image.open(f), np.float32) / 255).permute(2, 0, 1)
                          for f in frames]).flip(-1)[3:]
    assert night["black"] == pytest.approx(psnr(torch.zeros_like(target), target).mean().item(), rel=1e-6)
    flat = target.mean((2, 3), keepdim=True).expand_as(target)
    assert night["target_flat"] == pytest.approx(psnr(flat, target).mean().item(), rel=1e-6)
    rows = {r["method"]: r["psnr"] for r in night["rows"]}
    assert list(rows) == ["still", "reinhard-class"]
    # still (the mean frame) is far too bright at night: below black; the per-frame
    # colour transfer follows the night's brightness: above black.
    assert rows["still"] < night["black"] < rows["reinhard-class"]
    assert ev["night_mean"]["sequences"] == ["b-dusk"]
    assert ev["night_mean"]["rows"][1]["psnr"] == pytest.approx(rows["reinhard-class"])
    result = type("R", (), dict(machine={}, speed=[], stages=None, quality=None, evaluation=ev, borders=None,
                                cross_scene=None, sky_clips=None))()
    assert [t.title.split(":")[0] for t in tables(result)][-1] == "Night frames (target mean luminance < 0.12)"


def _night_scene(w=48, h=32, seed=0) -> tuple[np.ndarray, np.ndarray]:
    """A day scene (h, w, 3) and the same scene at night: dark, its daylight gone (weak
    light unrelated to the day's), with lamps at fixed places."""
    day = _scene(w, h, seed)
    night = 0.03 + 0.03 * np.random.default_rng(seed + 10).random((h, w, 3))
    lamps = np.zeros((h, w), bool)
    lamps[20:22, 4:6] = lamps[24:26, 30:32] = lamps[14:16, 40:42] = True
    night[lamps] = [1.0, 0.7, 0.3]
    return day, night


def camera(folder: Path, labels: list[str] | None, seed=0) -> Path:
    """A webcam: day frames, dusk, nights with lamps; timestamps.txt with `labels` if given.
    Frame 0 is brightest of all but labelled night when labels are given (a floodlit
    night, say), so that the photo must follow the labels."""
    day, night = _night_scene(seed=seed)
    frames = [np.clip(day * 1.5, 0, 1), day, 0.8 * day, 0.5 * day + 0.5 * night, night, 0.7 * night]
    folder.mkdir(parents=True)
    for t, f in enumerate(frames):
        Image.fromarray((f * 255).round().astype(np.uint8)).save(folder / f"{t:04d}.png")
    if labels:
        (folder / "timestamps.txt").write_text("".join(f"20150101_{t:02d}0000 UTC {x}\n" for t, x in enumerate(labels)))
    return folder


def test_cross_scene_on_synthetic_cameras(animator, tmp_path):
    from timelapse_cli.benchmark import cross_scene, cross_scene_inputs

    data = tmp_path / "data"
    camera(data / "cam-labelled", ["night", "day", "day", "day", "night", "night"])
    camera(data / "cam-plain", None, seed=1)
    sequence(data / "cam-daylong", n=4, gains=[1.0, 1.1, 0.9, 1.0])     # no night: not a camera
    sequence(data / "ref", n=8, gains=list(np.linspace(1.2, 0.1, 8)), seed=2)
    cameras, refs = cross_scene_inputs(str(data), "cam-*", ("ref",))
    assert [c.name for c in cameras] == ["cam-labelled", "cam-plain"] and [r.name for r in refs] == ["ref"]
    opts = BenchmarkOptions(methods=("still", "reinhard-class"), size=48, ref_size=48, segmenter="none", batch=3)
    ticks = []
    with torch.inference_mode():
        cs = cross_scene(animator, opts, cameras, refs, lambda: ticks.append(1))
    assert len(ticks) == 4 and len(cs["pairs"]) == 2
    labelled, plain = cs["pairs"]
    # Labels decide: frame 0 is brighter but labelled night; without labels it is the photo.
    assert labelled["photo_frame"] == 1 and plain["photo_frame"] == 0
    assert labelled["night_frames"] == 3 and plain["night_frames"] == 2   # plain: luma < 0.12
    clip = torch.stack([torch.from_numpy(np.asarray(Image.open(f), np.float32) / 255).permute(2, 0, 1)
                        for f in sorted((data / "cam-labelled").glob("*.png"))])
    photo = clip[1:2]
    still, rc = (r for r in labelled["rows"])
    assert still["method"] == "still" and still["dark_frames"] == 1   # 10% of 8 frames: at least 1
    # still: every output frame is the photo; the real night closest in mean luma is frame 0 (floodlit).
    assert still["psnr"] == pytest.approx(psnr(photo, clip[0:1]).item(), rel=1e-6)
    assert still["black"] == pytest.approx(psnr(torch.zeros_like(photo), clip[0:1]).item(), rel=1e-6)
    assert still["daylight_left"] == pytest.approx(1.0)
    # The transfer follows the reference into its night: darker, nearer the real nights.
    assert rc["psnr"] > still["psnr"] and rc["daylight_left"] > 0.9   # ... but keeps the day's structure
    # Real nights: no daylight left but in the floodlit frame 0 (r = 1 there).
    assert labelled["real_daylight_left"] < 0.5
    assert labelled["real_lit_share"] > 0 and labelled["ref_lit_share"] == 0.0
    for r in labelled["rows"] + plain["rows"]:
        assert math.isnan(r["share_ratio"])      # the reference's darkest frame has no lights
        assert r["lit_share"] == 0.0 and math.isnan(r["lift"]) and r["lift_frames"] == 0
    means = {(r["group"], r["method"]): r for r in cs["by_camera"] + cs["by_reference"] + cs["mean"]}
    assert means[("ref", "still")]["psnr"] == pytest.approx((still["psnr"] + plain["rows"][0]["psnr"]) / 2)
    assert means[(None, "reinhard-class")]["pairs"] == 2
    result = type("R", (), dict(machine={}, speed=[], stages=None, quality=None, evaluation=None, borders=None,
                                cross_scene=cs, sky_clips=None))()
    from rich.console import Console

    console = Console(width=80, record=True)
    for t in tables(result):
        console.print(t)
    text = console.export_text()
    assert "cam-labelled" in text and "(real nights)" in text
    assert max(len(line) for line in text.splitlines()) <= 80


def test_cross_scene_lift_of_lamps_in_place(animator, tmp_path):
    """The measures themselves on an output that is the camera's own night: lift = 1/share."""
    from timelapse_cli.benchmark import _night_truth
    from timelapse_cli import metrics

    _, night = _night_scene()
    real = torch.from_numpy(night).permute(2, 0, 1)[None].float()
    day = torch.from_numpy(_scene(48, 32)).permute(2, 0, 1)[None].float()
    out = torch.cat([real, day, day])
    blocks = metrics.lit_blocks(real)
    row = _night_truth(out, day, real, metrics.mean_luminance(real), blocks, ref_share=0.05)
    share = metrics.lit_share(blocks).item()
    assert row["dark_frames"] == 1 and row["psnr"] == 100.0   # the darkest output frame is the real night
    assert row["lift"] == pytest.approx(1 / share) and row["lift_union"] == pytest.approx(1 / share)
    assert row["lit_share"] == pytest.approx(share) and row["share_ratio"] == pytest.approx(share / 0.05)


def test_cli_cross_scene(tiny_weights, tmp_path):
    data = tmp_path / "data"
    camera(data / "cam", ["day", "day", "day", "night", "night", "night"])
    sequence(data / "ref", n=4, gains=[1.0, 0.6, 0.3, 0.1])
    out_json = tmp_path / "c.json"
    result = CliRunner().invoke(app, ["benchmark", "--cross-scene", str(data), "--sequences", "cam",
                                      "--night-refs", "ref", "--methods", "still,timeflies", "--size", "48",
                                      "--segmenter", "none", "--weights", str(tiny_weights), "--json", str(out_json)])
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    assert "Cross-scene with truth" in result.output and "speed" not in result.output
    pairs = json.loads(out_json.read_text())["cross_scene"]["pairs"]
    assert [(p["camera"], p["reference"], [r["method"] for r in p["rows"]]) for p in pairs] == [
        ("cam", "ref", ["still", "timeflies"])]
    assert_one_line_error(run_cli("benchmark", "--cross-scene", data, "--sequences", "cam", "--night-refs",
                                  "ref,nowhere", "--weights", tiny_weights), "nowhere", "--night-refs")
    sequence(data / "daylong", n=3, gains=[1.0, 0.9, 1.1])
    assert_one_line_error(run_cli("benchmark", "--cross-scene", data, "--sequences", "day*", "--night-refs", "ref",
                                  "--weights", tiny_weights), "no sequence matching 'day*'", "night")
    assert_one_line_error(run_cli("benchmark", "--cross-scene", data, "--sequences", "cam", "--night-refs", "cam",
                                  "--weights", tiny_weights), "its own reference")


@pytest.mark.slow
def test_cross_scene_on_a_real_camera():
    from timelapse_cli.benchmark import cross_scene, cross_scene_inputs

    data = needs_data("timelapse")
    needs_data("timelapse", "amos-sea-town")
    cameras, refs = cross_scene_inputs(str(data), "amos-sea-town", ("tilde-frankfurt",))
    opts = BenchmarkOptions(methods=("still", "reinhard-class"), size=64, ref_size=64, max_frames=12,
                            segmenter="builtin")
    with torch.inference_mode():
        cs = cross_scene(Animator(device="cpu"), opts, cameras, refs)
    (pair,) = cs["pairs"]
    labels = (data / "amos-sea-town" / "timestamps.txt").read_text().split()[2::3]
    assert labels[pair["photo_frame"]] == "day" and pair["night_frames"] == labels.count("night")
    still, rc = pair["rows"]
    assert still["dark_frames"] == rc["dark_frames"] == 2                # ceil(10% of 12)
    assert still["daylight_left"] == pytest.approx(1.0)                  # the photo itself
    # Real nights keep much less of the day than the photo does; the transfer darkens
    # towards them (higher PSNR than the photo) but keeps more daylight than they do.
    assert pair["real_daylight_left"] < 0.6
    assert rc["psnr"] > still["psnr"] + 1 and rc["daylight_left"] > pair["real_daylight_left"]
    assert 0 <= pair["ref_lit_share"] < 1 and pair["real_lit_share"] > 0   # lights in the real nights


def test_split_holds_amos_cameras_by_camera_and_keeps_the_previous_test_split():
    from timelapse_cli.recipe import TEST_SEQUENCES, VALIDATION_SEQUENCES, split_patterns

    old = ("pyramid-webcam", "tilde-frankfurt", "suburb-sunset-night", "cypress-webcam",
           "sky-clip-05", "sky-clip-17", "sky-clip-29", "sky-clip-41")
    assert split_patterns("test-2025").split(",") == list(old)
    test = split_patterns("test").split(",")
    assert test[:8] == list(old) and test[8:] == ["amos-monumento", "amos-river-town", "amos-sea-town"]
    assert {"amos-tower-rooftops", "amos-old-town-fog"} <= set(split_patterns("validation").split(","))
    assert not set(TEST_SEQUENCES) & set(VALIDATION_SEQUENCES)
    with pytest.raises(Exception, match="test-2025"):
        split_patterns("train")
