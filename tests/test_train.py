"""`timeflies train`: loss terms, per-term updates, resume after kill -9, torchrun."""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import needs_data
from timelapse_cli.losses import LossWeights
from timelapse_cli.train import Trainer, TrainOptions
from timelapse_cli.weights import from_pretrained

TERMS = ("adv", "perc", "content", "style", "flow", "cycle", "pixel")
PAPER_TERMS = TERMS[:-1]


@pytest.fixture(scope="module")
def real_data(tmp_path_factory) -> Path:
    """Two real sky time-lapse clips (32 frames of 128x128 each), linked into one data folder."""
    root = tmp_path_factory.mktemp("data")
    for name in ("sky-clip-00", "sky-clip-07"):
        (root / name).symlink_to(needs_data("timelapse", name), target_is_directory=True)
    return root


def options(data: Path, out: Path, **kw) -> TrainOptions:
    base = dict(data=str(data), out=str(out), size=(32, 32), clip=3, width=0.125, max_steps=2, save_every=100,
                seed=1, device="cpu", segmenter="none", output="rgb", weights=LossWeights())
    base.update(kw)
    return TrainOptions(**base)


def only(term: str) -> LossWeights:
    weight = {**vars(LossWeights()), "pixel": 1.0}[term]
    return LossWeights(**{t: (weight if t == term else 0.0) for t in TERMS})


def test_every_loss_term_is_finite_and_logged(real_data, tmp_path):
    result = Trainer(options(real_data, tmp_path / "run")).run()
    lines = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [1, 2]
    for line in lines:
        for key in (*PAPER_TERMS, "d", "total", "recon_mse", "identity_mse", "alpha"):
            assert math.isfinite(line[key]), (key, line)
    assert lines[1]["alpha"] < lines[0]["alpha"] == 1.0  # the content loss's alpha decays
    assert from_pretrained(result.generator_dir).config.width == 0.125
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert "random" in run["encoders"] or "shipped" in run["encoders"]


@pytest.mark.parametrize("term", TERMS)
def test_a_term_alone_drives_the_update(real_data, tmp_path, term):
    """With every other weight 0, one training step equals a step on that term alone."""
    a = Trainer(options(real_data, tmp_path / "a", weights=only(term)))
    before = {k: v.clone() for k, v in a.G.decoder.state_dict().items()}
    log = a.train_step(0)
    assert set(log) & set(TERMS) == {term}  # the others are not even computed
    changed = [k for k, v in a.G.decoder.state_dict().items() if not torch.equal(v, before[k])]
    assert changed, f"{term} alone did not update the decoder"
    # The same step done by hand on that term only gives the same weights.
    b = Trainer(options(real_data, tmp_path / "b", weights=only(term)))
    terms, _, _ = b.losses(0, *b.batch(0)[:4])
    (getattr(b.opts.weights, term) * terms[term]).backward()
    b.opt_g.step()
    for k, v in b.G.decoder.state_dict().items():
        assert torch.allclose(v, a.G.decoder.state_dict()[k], atol=1e-7), k


def _train_cmd(data: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "timelapse_cli", "train", "--data", str(data), "--out", str(out), "--size", "32",
            "--clip", "3", "--width", "0.125", "--max-steps", "14", "--save-every", "2", "--seed", "3", "-q",
            "--segmenter", "none", *extra]


def _tensors(run: Path) -> dict:
    from safetensors.torch import load_file
    return load_file(str(run / "checkpoint" / "generator" / "generator.safetensors"))


@pytest.mark.slow
def test_resume_after_kill_9_matches_an_uninterrupted_run(real_data, tmp_path):
    subprocess.run(_train_cmd(real_data, tmp_path / "whole"), check=True, capture_output=True)
    proc = subprocess.Popen(_train_cmd(real_data, tmp_path / "cut"), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    log = tmp_path / "cut" / "log.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if log.exists() and len(log.read_text().splitlines()) >= 5:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    steps_done = len(log.read_text().splitlines())
    assert 5 <= steps_done < 14
    subprocess.run(_train_cmd(real_data, tmp_path / "cut", "--resume"), check=True, capture_output=True)
    whole, cut = _tensors(tmp_path / "whole"), _tensors(tmp_path / "cut")
    assert whole.keys() == cut.keys()
    for k in whole:
        assert torch.equal(whole[k], cut[k]), k
    steps = [json.loads(line)["step"] for line in log.read_text().splitlines()]
    assert steps == list(range(1, 15))  # the log was trimmed to the checkpoint and continued


@pytest.mark.slow
def test_torchrun_two_processes_gloo(real_data, tmp_path):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "timelapse_cli", "train", "--data", str(real_data), "--out", str(out), "--size", "32",
           "--clip", "3", "--width", "0.125", "--max-steps", "2", "-q", "--segmenter", "none", "--recipe", "paper"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-2000:]
    assert sorted(p.name for p in out.iterdir()) == [".timeflies-run.json", "checkpoint", "log.jsonl", "run.json"]
    assert json.loads((out / "run.json").read_text())["world_size"] == 2
    r = subprocess.run([sys.executable, "-m", "timelapse_cli", "animate", str(needs_data("stills", "dpst", "in1.jpg")),
                        str(needs_data("timelapse", "sky-clip-00")), "-o", str(tmp_path / "a.mp4"), "--weights",
                        str(out / "checkpoint" / "generator"), "--size", "48", "--frames", "2", "--segmenter", "none"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "a.mp4").stat().st_size > 0


def test_bad_data_is_reported_before_training(tmp_path):
    (tmp_path / "d" / "short").mkdir(parents=True)
    from PIL import Image
    for i in range(3):
        Image.new("RGB", (16, 16)).save(tmp_path / "d" / "short" / f"{i}.png")
    r = subprocess.run([sys.executable, "-m", "timelapse_cli", "train", "--data", str(tmp_path / "d"), "--out",
                        str(tmp_path / "o"), "--clip", "8"], capture_output=True, text=True)
    assert r.returncode == 2 and "short" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "o").exists()


def test_divergence_is_a_clear_error(real_data, tmp_path):
    from timelapse_cli.errors import TimefliesError
    trainer = Trainer(options(real_data, tmp_path / "run", lr_g=1e30, max_steps=4))
    with pytest.raises(TimefliesError, match="diverged"):
        trainer.run()


def test_validation_logs_psnr_and_keeps_the_best_generator(real_data, tmp_path):
    """Validation sequences are never trained on; their PSNR goes into the log every
    val_every steps, and OUT/best/ holds the generator of the best one."""
    trainer = Trainer(options(real_data, tmp_path / "run", val=("sky-clip-07",), val_every=2, max_steps=4,
                              val_frames=6, val_size=32, output="affine", weights=only("pixel")))
    assert [s.name for s in trainer.shard] == ["sky-clip-00"]
    trainer.run()
    lines = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    vals = [line for line in lines if "val_psnr" in line]
    assert [v["step"] for v in vals] == [0, 2, 4]  # 0: the initialisation
    assert all(v["val"].keys() == {"sky-clip-07"} and 10 < v["val_psnr"] < 60 for v in vals)
    assert {line["sequence"] for line in lines if "sequence" in line} == {"sky-clip-00"}
    best = json.loads((tmp_path / "run" / "best" / "val.json").read_text())
    assert best["val_psnr"] == max(v["val_psnr"] for v in vals)
    assert from_pretrained(tmp_path / "run" / "best").config.output == "affine"


def test_excluded_sequences_are_never_opened(real_data, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "sky-clip-00").symlink_to(real_data / "sky-clip-00", target_is_directory=True)
    (data / "broken").mkdir()
    (data / "broken" / "0000.jpg").write_text("not a jpeg")
    trainer = Trainer(options(data, tmp_path / "run", exclude=("bro*",)))
    assert [s.name for s in trainer.shard] == ["sky-clip-00"]


@pytest.mark.slow
def test_sequences_without_label_maps_get_the_builtin_segmenters(real_data, tmp_path):
    """As benchmark --eval makes them, once, cached in OUT/labels/ (a resumed run reuses them)."""
    import numpy as np
    from timelapse_cli.labels import load_label_map

    trainer = Trainer(options(real_data, tmp_path / "run", segmenter="builtin"))
    maps = sorted(p.name for p in (tmp_path / "run" / "labels").iterdir())
    assert maps == ["sky-clip-00.png", "sky-clip-07.png"]
    assert all(s.label_path.parent == tmp_path / "run" / "labels" for s in trainer.shard)
    ids = load_label_map(tmp_path / "run" / "labels" / "sky-clip-00.png").ids
    assert 5 in np.unique(ids)  # sky (the 8 groups' id 5) in a sky clip
    stamp = (tmp_path / "run" / "labels" / "sky-clip-00.png").stat().st_mtime_ns
    Trainer(options(real_data, tmp_path / "run", segmenter="builtin"))
    assert (tmp_path / "run" / "labels" / "sky-clip-00.png").stat().st_mtime_ns == stamp


def test_the_training_photo_is_the_flipped_mean_of_the_clip_or_of_the_sequence(real_data, tmp_path):
    from timelapse_cli import data

    seq = next(s for s in data.scan_sequences(real_data, 3) if s.name == "sky-clip-00")
    everything = data.load_frames(seq, 0, seq.frames, (32, 32)).mean(0, keepdim=True).flip(-1)
    for photo in ("clip", "sequence"):
        trainer = Trainer(options(real_data, tmp_path / photo, photo=photo))
        step = next(i for i in range(4) if trainer.batch(i)[4] == "sky-clip-00")
        windows, image, targets, _, _ = trainer.batch(step)
        if photo == "clip":  # the paper: the clip's own frames, whose newest ones the windows end on
            assert torch.allclose(image, targets.mean(0, keepdim=True), atol=1e-6)
        else:  # benchmark --eval's photo: every frame of the sequence
            assert torch.allclose(image, everything, atol=1e-5)
