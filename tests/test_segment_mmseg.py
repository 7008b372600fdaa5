"""The ADE20K class table and the mmseg segmenter (random weights: no download, ever).

The mmseg tests build the default SegFormer-B0 ADE20K config with random weights, save
them as an mmengine-style checkpoint (conftest.py's random_model, random_checkpoint) and
load that back through MMSegSegmenter; they are skipped when mmsegmentation is not installed.
"""
from __future__ import annotations

import collections
import importlib.util
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import NO_MMSEG, needs_data
from timelapse_cli.errors import TimefliesError, WeightsError
from timelapse_cli.labels import GROUP_NAMES
from timelapse_cli.segmentation import mmseg as mm
from timelapse_cli.segmentation.ade20k import ADE20K_CLASSES, ADE20K_TO_GROUP, to_groups


def ade(name: str) -> int:
    """ADE20K id (1..150) of a class name."""
    return ADE20K_CLASSES.index(name) + 1


def one_line_error(excinfo) -> str:
    message = str(excinfo.value)
    assert message and "\n" not in message
    return message


# ---------------------------------------------------------------- ade20k.py (no mmseg needed)


def test_table_covers_exactly_the_150_classes():
    assert len(ADE20K_CLASSES) == 150
    assert len(set(ADE20K_CLASSES)) == 150
    assert set(ADE20K_TO_GROUP) == set(ADE20K_CLASSES)
    assert set(ADE20K_TO_GROUP.values()) <= set(GROUP_NAMES)
    assert set(ADE20K_TO_GROUP.values()) == set(GROUP_NAMES)  # every group is reachable


def test_to_groups_known_ids():
    ids = np.array([[ade("sky"), ade("building"), ade("tree")],
                    [ade("water"), ade("road"), 0],
                    [ade("mountain"), ade("grass"), ade("person")]])
    expected = np.array([[5, 1, 6], [7, 4, 0], [3, 2, 0]])
    out = to_groups(ids)
    assert out.dtype == np.int64 and (out == expected).all()
    assert [GROUP_NAMES[g] for g in to_groups(np.array([ade("pool table"), ade("swimming pool")]))] \
        == ["background", "water"]


def test_to_groups_rejects_ids_outside_ade20k():
    with pytest.raises(ValueError):
        to_groups(np.array([255]))


def test_class_names_equal_mmseg_metainfo():
    pytest.importorskip("mmseg", reason=NO_MMSEG)
    from mmseg.datasets import ADE20KDataset

    assert ADE20K_CLASSES == tuple(ADE20KDataset.METAINFO["classes"])


def test_missing_mmseg_is_a_one_line_error(monkeypatch):
    monkeypatch.setattr(mm, "mmseg_available", lambda: False)
    with pytest.raises(TimefliesError) as excinfo:
        mm.MMSegSegmenter(checkpoint="whatever.pth")
    assert "--segmenter builtin" in one_line_error(excinfo)


# ---------------------------------------------------------------- mmseg.py


@pytest.fixture(scope="module")
def segmenter(random_checkpoint):
    return mm.MMSegSegmenter(checkpoint=str(random_checkpoint), device="cpu")


def test_find_config_resolves_bundled_names_and_paths(random_model):
    path = mm.find_config(mm.DEFAULT_CONFIG)
    assert path.name == f"{mm.DEFAULT_CONFIG}.py" and path.parent.parent == mm.configs_dir()
    assert mm.find_config(f"{mm.DEFAULT_CONFIG}.py") == path
    assert mm.find_config(str(path)) == path
    with pytest.raises(TimefliesError) as excinfo:
        mm.find_config("no_such_config_512x512")
    assert "no_such_config_512x512" in one_line_error(excinfo)


@pytest.mark.parametrize("config, words", [
    (None, ["`timeflies models fetch segformer-b0`", "--checkpoint"]),  # in the zoo table: the command
    ("segformer_mit-b2_8xb2-160k_ade20k-512x512", ["`timeflies models fetch segformer-b2`"]),
    # not in the table: the model zoo's file name, from mmseg's metafile
    ("segformer_mit-b1_8xb2-160k_ade20k-512x512", ["segformer_mit-b1_512x512_160k_ade20k_20210726_112106-d70e859d.pth",
                                                   "--checkpoint", mm.CHECKPOINT_ENV]),
])
def test_no_checkpoint_says_how_to_get_one(random_model, config, words):
    with pytest.raises(WeightsError) as excinfo:
        mm.MMSegSegmenter(config=config)
    message = one_line_error(excinfo)
    for word in words:
        assert word in message


def test_checkpoint_from_env(random_checkpoint, monkeypatch):
    monkeypatch.setenv(mm.CHECKPOINT_ENV, str(random_checkpoint))
    assert mm.checkpoint_from_env() == str(random_checkpoint)
    assert mm.MMSegSegmenter(device="cpu").checkpoint == random_checkpoint


def test_missing_checkpoint_file(random_model, tmp_path):
    with pytest.raises(WeightsError) as excinfo:
        mm.MMSegSegmenter(checkpoint=str(tmp_path / "nope.pth"))
    assert "not found" in one_line_error(excinfo)


@pytest.mark.parametrize("content", ["text", "no_state_dict", "conv", "conv_bare", "not_a_dict"])
def test_not_an_mmseg_checkpoint(random_model, tmp_path, content):
    path = tmp_path / "bad.pth"
    conv = torch.nn.Conv2d(3, 4, 3)
    if content == "text":
        path.write_text("this is not a checkpoint\n")
    elif content == "no_state_dict":
        torch.save({"meta": {"note": "weights elsewhere"}, "weights": [1, 2, 3]}, path)
    elif content == "conv":
        torch.save({"state_dict": conv.state_dict(), "meta": {}}, path)
    elif content == "conv_bare":
        torch.save(conv.state_dict(), path)
    else:
        torch.save([torch.zeros(3)], path)
    with pytest.raises(WeightsError) as excinfo:
        mm.MMSegSegmenter(checkpoint=str(path))
    message = one_line_error(excinfo)
    assert str(path) in message
    if content.startswith("conv"):
        assert "missing keys" in message and "unexpected keys" in message


def test_checkpoint_with_other_class_count(random_model, tmp_path):
    """A Cityscapes-like head (19 classes) on the same backbone: a shape mismatch."""
    state = dict(random_model.state_dict())
    state["decode_head.conv_seg.weight"] = torch.zeros(19, *state["decode_head.conv_seg.weight"].shape[1:])
    state["decode_head.conv_seg.bias"] = torch.zeros(19)
    torch.save({"state_dict": state}, tmp_path / "c19.pth")
    with pytest.raises(WeightsError) as excinfo:
        mm.MMSegSegmenter(checkpoint=str(tmp_path / "c19.pth"))
    assert "decode_head.conv_seg" in one_line_error(excinfo)


def test_training_checkpoint_extras_load_without_running_code(random_model, tmp_path):
    """Runner checkpoints pickle numpy values and mmengine's HistoryBuffer besides the weights:
    weights_only refuses those, we load them as inert placeholders."""
    from mmengine.logging import HistoryBuffer

    buffer = HistoryBuffer()
    buffer.update(0.5)
    torch.save({"state_dict": random_model.state_dict(),
                "meta": {"seed": np.int64(3), "palette": np.zeros((150, 3), np.uint8)},
                "message_hub": {"log_scalars": {"train/loss": buffer}}}, tmp_path / "train.pth")
    segmenter = mm.MMSegSegmenter(checkpoint=str(tmp_path / "train.pth"), device="cpu")
    assert segmenter.model is not random_model


def test_unloadable_pickled_objects_are_explained(random_model, tmp_path):
    torch.save({"state_dict": random_model.state_dict(),
                "meta": collections.defaultdict(list, classes=["sky"])}, tmp_path / "odd.pth")
    with pytest.raises(WeightsError) as excinfo:
        mm.MMSegSegmenter(checkpoint=str(tmp_path / "odd.pth"))
    message = one_line_error(excinfo)
    assert "collections.defaultdict" in message and "state_dict" in message


def test_downscale_keeps_aspect():
    rgb = np.zeros((3000, 4000, 3), np.uint8)
    assert mm._fit_long_side(rgb, 1024).shape == (768, 1024, 3)
    assert mm._fit_long_side(rgb[:500, :600], 1024).shape == (500, 600, 3)


@pytest.mark.slow
def test_segment_image_random_weights(segmenter, random_model):
    photo = np.asarray(Image.open(needs_data("stills", "dpst", "in1.jpg")).convert("RGB"))
    ids = segmenter.segment_image(photo)
    assert ids.shape == photo.shape[:2] and ids.dtype == np.int64
    assert ids.min() >= 1 and ids.max() <= 150
    # The checkpoint's weights were loaded: same output as the model it was saved from.
    from mmseg.apis import inference_model

    with mm._quiet():
        direct = inference_model(random_model, np.ascontiguousarray(photo[:, :, ::-1]))
    assert (direct.pred_sem_seg.data[0].numpy() + 1 == ids).all()


@pytest.mark.slow
def test_segment_image_downscales_large_photos(random_checkpoint):
    photo = np.asarray(Image.open(needs_data("stills", "dpst", "in1.jpg")).convert("RGB"))
    big = np.asarray(Image.fromarray(photo).resize((1400, 874)))
    ids = mm.MMSegSegmenter(checkpoint=str(random_checkpoint), device="cpu", max_side=700).segment_image(big)
    assert ids.shape == (874, 1400)
    assert ids.min() >= 1 and ids.max() <= 150


@pytest.mark.slow
def test_segment_video_random_weights(segmenter):
    from timelapse_cli.video import FrameReader

    reader = FrameReader(needs_data("videos", "cypress-webcam.gif"))
    ids = segmenter.segment_video(iter(reader), reader.info.frames)
    assert ids.shape == (reader.info.height, reader.info.width) and ids.dtype == np.int64
    assert ids.min() >= 1 and ids.max() <= 150


def test_registered_under_its_name():
    from timelapse_cli.segmentation.base import _REGISTRY

    assert _REGISTRY["mmseg"] is mm.MMSegSegmenter
    assert mm.MMSegSegmenter.id_space == "ade20k"


# ---------------------------------------------------------------- install without compiled ops


def test_cli_segment_prints_only_its_own_lines(random_checkpoint, tmp_path):
    """The real command with the default SegFormer-B0: timeflies' summary and nothing else
    (no "Could not import OneDL", no dependency warnings)."""
    photo = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (96, 128, 3), dtype=np.uint8)).save(photo)
    result = subprocess.run([sys.executable, "-m", "timelapse_cli", "segment", str(photo), "-o",
                             str(tmp_path / "s.png"), "--segmenter", "mmseg", "--checkpoint", str(random_checkpoint)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Wrote "), result.stdout
    assert (tmp_path / "s.png").is_file()


def test_config_that_needs_compiled_ops_says_how_to_get_them(random_checkpoint):
    pytest.importorskip("mmseg", reason=NO_MMSEG)
    if importlib.util.find_spec("mmcv._ext") is not None:
        pytest.skip("mmcv's compiled ops are installed (make install-mmseg-ops)")
    with pytest.raises(TimefliesError) as excinfo:
        mm.MMSegSegmenter(config="ccnet_r50-d8_4xb4-80k_ade20k-512x512", checkpoint=str(random_checkpoint))
    message = one_line_error(excinfo)
    assert "CrissCrossAttention" in message and "make install-mmseg-ops" in message
