"""Training run folders only ever lose what timeflies wrote there; a run that diverges stops.

Runs are tiny (one synthetic 6-frame sequence of 32x32, width 0.125, a step or two) and
go through `cli.run` in process, or the Trainer itself where a step must be poisoned.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from test_options import cli, refused
from timelapse_cli.errors import TimefliesError
from timelapse_cli.losses import LossWeights
from timelapse_cli.runfolder import MANIFEST
from timelapse_cli.train import Trainer, TrainOptions
from timelapse_cli.weights import from_pretrained, save_pretrained

TRAIN = ["--size", "32", "--clip", "3", "--width", "0.125", "--segmenter", "none", "-q"]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("runs") / "data"
    (root / "seq").mkdir(parents=True)
    rng = np.random.default_rng(1)
    for i in range(6):
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(root / "seq" / f"{i}.png")
    return root


def train(data: Path, run: Path, *extra) -> None:
    code, out, err = cli("train", "--data", data, "--out", run, *TRAIN, *extra)
    assert code == 0, err


def user_files(run: Path) -> dict[str, str]:
    """Files a user put into a run folder, inside and beside timeflies' own."""
    files = {"notes.txt": "mine\n", "checkpoint/notes.txt": "why step 2\n",
             "checkpoint/generator/README.md": "my model card\n", "labels/sketch.txt": "x\n",
             "best/plots/curve.csv": "1,2\n"}
    for name, text in files.items():
        (run / name).parent.mkdir(parents=True, exist_ok=True)
        (run / name).write_text(text)
    return files


def assert_kept(run: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        assert (run / name).read_text() == text, name


def listed(run: Path) -> set[str]:
    return set(json.loads((run / MANIFEST).read_text())["files"])


def step(run: Path) -> int:
    return torch.load(run / "checkpoint" / "state.pt", weights_only=True)["step"]


# ---------------------------------------------------------------- manifests


def test_the_manifest_lists_exactly_what_the_run_wrote(data, tmp_path):
    run = tmp_path / "run"
    train(data, run, "--max-steps", "2")
    files = {p.relative_to(run).as_posix() for p in run.rglob("*") if p.is_file() and p.name != MANIFEST}
    assert listed(run) == files
    assert {"run.json", "log.jsonl", "checkpoint/state.pt", "checkpoint/generator/generator.safetensors"} <= files


def test_overwrite_and_resume_keep_the_users_files(data, tmp_path):
    run = tmp_path / "run"
    train(data, run, "--max-steps", "1")
    mine = user_files(run)
    train(data, run, "--max-steps", "2", "--save-every", "1", "--resume")  # two checkpoint swaps
    assert step(run) == 2
    assert_kept(run, mine)
    train(data, run, "--max-steps", "1", "--overwrite")
    assert step(run) == 1
    assert_kept(run, mine)
    assert not set(mine) & listed(run)  # never taken for timeflies' own
    lines = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [1]  # the earlier run's log went, not the user's files


def test_a_folder_that_is_not_a_run_needs_overwrite_and_keeps_its_files(data, tmp_path):
    run = tmp_path / "photos"
    (run / "checkpoint").mkdir(parents=True)
    (run / "holiday.jpg").write_bytes(b"a photo")
    (run / "checkpoint" / "model.ckpt").write_bytes(b"someone else's model")
    refused(*cli("train", "--data", data, "--out", run, *TRAIN, "--max-steps", "1"), "earlier run", "--overwrite")
    assert sorted(p.name for p in run.rglob("*")) == ["checkpoint", "holiday.jpg", "model.ckpt"]
    train(data, run, "--max-steps", "1", "--overwrite")
    assert (run / "holiday.jpg").read_bytes() == b"a photo"
    assert (run / "checkpoint" / "model.ckpt").read_bytes() == b"someone else's model"
    assert step(run) == 1


def test_a_non_empty_folder_without_run_markers_is_refused(data, tmp_path):
    run = tmp_path / "mine"
    run.mkdir()
    (run / "notes.txt").write_text("mine\n")
    refused(*cli("train", "--data", data, "--out", run, *TRAIN, "--max-steps", "1"), "not empty", "--overwrite")
    assert [p.name for p in run.iterdir()] == ["notes.txt"]


def test_a_run_from_before_manifests_loses_only_its_own_files(data, tmp_path):
    run = tmp_path / "old"
    train(data, run, "--max-steps", "1")
    (run / MANIFEST).unlink()  # as runs were written before manifests
    mine = user_files(run)
    train(data, run, "--max-steps", "1", "--overwrite")
    assert_kept(run, mine)
    assert step(run) == 1 and "checkpoint/state.pt" in listed(run)


def test_a_manifest_cannot_point_outside_the_run(data, tmp_path):
    run, victim = tmp_path / "run", tmp_path / "victim.txt"
    train(data, run, "--max-steps", "1")
    victim.write_text("keep me\n")
    manifest = json.loads((run / MANIFEST).read_text())
    manifest["files"] += ["../victim.txt", str(victim), "notes.txt/../../victim.txt"]
    (run / MANIFEST).write_text(json.dumps(manifest))
    train(data, run, "--max-steps", "1", "--overwrite")
    assert victim.read_text() == "keep me\n"


# ---------------------------------------------------------------- divergence


def options(data: Path, out: Path, **kw) -> TrainOptions:
    base = dict(data=str(data), out=str(out), size=(32, 32), clip=3, width=0.125, max_steps=6, save_every=2,
                seed=1, device="cpu", segmenter="none", output="rgb", weights=LossWeights(adv=0.0))
    return TrainOptions(**{**base, **kw})


def test_a_run_whose_frames_turn_nan_stops_and_keeps_the_last_good_checkpoint(data, tmp_path):
    run = tmp_path / "run"
    trainer = Trainer(options(data, run))

    def poison(done, total, terms):  # after step 3, a weight of the decoder becomes NaN
        if done == 3:
            with torch.no_grad():
                next(trainer.G.decoder.parameters()).view(-1)[0] = math.nan

    with pytest.raises(TimefliesError, match="diverged at step 4.*checkpoint of step 2 is kept"):
        trainer.run(poison)
    assert step(run) == 2
    model = from_pretrained(run / "checkpoint" / "generator")  # finite: it loads
    assert all(torch.isfinite(p).all() for p in model.parameters())
    steps = [json.loads(line)["step"] for line in (run / "log.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3]  # nothing of the diverged step


def test_a_non_finite_weight_or_loss_is_named(data, tmp_path):
    trainer = Trainer(options(data, tmp_path / "run"))
    trainer._check_finite({"log_mse": 1.0})  # all finite: nothing happens
    with pytest.raises(TimefliesError, match="step 1: the loss term 'log_mse' is not finite; no checkpoint"):
        trainer._check_finite({"log_mse": math.nan})
    with torch.no_grad():
        next(trainer.G.video_encoder.parameters()).view(-1)[0] = math.inf
    with pytest.raises(TimefliesError, match="the weight 'video_encoder"):
        trainer._check_finite({"log_mse": 1.0})


def test_animate_refuses_weights_that_are_not_finite(tmp_path):
    from timelapse_cli.model import Generator, GeneratorConfig

    model = Generator(GeneratorConfig(width=0.125))
    with torch.no_grad():
        next(model.decoder.parameters()).view(-1)[0] = math.nan
    weights = save_pretrained(model, tmp_path / "w")
    photo, ref = tmp_path / "p.png", tmp_path / "ref"
    Image.fromarray(np.zeros((24, 32, 3), np.uint8)).save(photo)
    ref.mkdir()
    Image.fromarray(np.zeros((24, 32, 3), np.uint8)).save(ref / "0.png")
    refused(*cli("animate", photo, ref, "-o", tmp_path / "o.mp4", "--weights", weights, "--segmenter", "none"),
            "not finite", "earlier checkpoint")
    assert not (tmp_path / "o.mp4").exists()


def test_resume_without_a_run_writes_nothing(data, tmp_path):
    run = tmp_path / "new"
    refused(*cli("train", "--data", data, "--out", run, "--resume", "--size", "32", "--clip", "3", "-q"),
            "nothing to resume", "without --resume")
    assert not run.exists()  # not even the label maps the builtin segmenter would have cached
