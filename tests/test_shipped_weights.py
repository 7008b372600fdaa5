"""The shipped weights are trained: pinned checksums, and on a held-out test sequence they
beat the photo left unchanged and the global colour transfer (an untrained generator
scores far below both)."""
from __future__ import annotations

import pytest

from conftest import needs_data
from timelapse_cli.recipe import TEST_SEQUENCES
from timelapse_cli.weights import SHIPPED_DIR, SHIPPED_SHA256, from_pretrained, sha256


def test_shipped_files_match_their_pinned_sha256():
    for name, digest in SHIPPED_SHA256.items():
        assert sha256(SHIPPED_DIR / name) == digest, name
    assert from_pretrained().config.output == "affine"


@pytest.mark.slow
def test_shipped_weights_beat_still_and_reinhard_on_a_held_out_sequence(tmp_path):
    from timelapse_cli.animation import Animator
    from timelapse_cli.benchmark import BenchmarkOptions, evaluate

    name = "tilde-frankfurt"  # day, dusk and night with city lights; never trained on
    assert name in TEST_SEQUENCES
    (tmp_path / name).symlink_to(needs_data("timelapse", name), target_is_directory=True)
    opts = BenchmarkOptions(methods=("timeflies", "still", "reinhard"), size=128, segmenter="builtin")
    ev = evaluate(Animator(device="cpu"), str(tmp_path), opts)
    psnr = {r["method"]: r["psnr"] for r in ev["mean"]}
    assert psnr["timeflies"] > psnr["reinhard"] > psnr["still"], psnr
