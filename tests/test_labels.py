from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from timelapse_cli.errors import InputError
from timelapse_cli.images import load_image
from timelapse_cli.labels import (
    GROUP_NAMES, LabelMap, encode_groups_rgb, fit_label_map, label_preview, load_label_map,
    save_label_map, unify_ids,
)

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def test_ids_round_trip_mode_l(tmp_path):
    ids = np.random.default_rng(0).integers(0, 151, (7, 9))
    save_label_map(ids, tmp_path / "seg.png")
    with Image.open(tmp_path / "seg.png") as im:
        assert im.mode == "L"
    loaded = load_label_map(tmp_path / "seg.png")
    assert loaded.format == "ids" and loaded.ids.dtype == np.int64
    assert (loaded.ids == ids).all()


def test_ids_round_trip_16bit(tmp_path):
    ids = np.array([[0, 255, 256], [1000, 65535, 3]])
    save_label_map(ids, tmp_path / "seg.png")
    with Image.open(tmp_path / "seg.png") as im:
        assert im.mode.startswith("I")
    assert (load_label_map(tmp_path / "seg.png").ids == ids).all()


def test_palette_indices_are_ids(tmp_path):
    im = Image.fromarray(np.array([[0, 5], [12, 5]], dtype=np.uint8), mode="P")
    im.putpalette([7, 7, 7] * 256)  # colours are irrelevant
    im.save(tmp_path / "p.png")
    assert load_label_map(tmp_path / "p.png").ids.tolist() == [[0, 5], [12, 5]]


def test_group_codes():
    codes = encode_groups_rgb(np.arange(8).reshape(2, 4))
    assert codes.dtype == np.uint8 and codes.shape == (2, 4, 3)
    expected = {
        "background": (0, 0, 0), "building": (128, 0, 0), "ground": (0, 128, 0),
        "mountain": (128, 128, 0), "road": (0, 0, 128), "sky": (128, 0, 128),
        "tree": (0, 128, 128), "water": (128, 128, 128),
    }
    for i, name in enumerate(GROUP_NAMES):
        assert tuple(codes.reshape(-1, 3)[i]) == expected[name]


def test_groups_round_trip(tmp_path):
    ids = np.tile(np.arange(8), (3, 1))
    save_label_map(ids, tmp_path / "g.png", format="groups")
    with Image.open(tmp_path / "g.png") as im:
        assert im.mode == "RGB"
    loaded = load_label_map(tmp_path / "g.png")
    assert loaded == LabelMap(loaded.ids, "groups")
    assert (loaded.ids == ids).all()


def test_sky_code_decodes_to_5(tmp_path):
    Image.new("RGB", (3, 2), (128, 0, 128)).save(tmp_path / "sky.png")
    assert (load_label_map(tmp_path / "sky.png").ids == GROUP_NAMES.index("sky")).all()


def test_noisy_rgb_decodes(tmp_path):
    rgb = np.array([[[120, 5, 130], [70, 63, 0]], [[250, 130, 64], [3, 0, 60]]], dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "noisy.png")
    loaded = load_label_map(tmp_path / "noisy.png")
    assert loaded.format == "groups"
    assert loaded.ids.tolist() == [[5, 1], [7, 0]]


def test_gray_rgb_is_ids(tmp_path):
    gray = np.array([[3, 7], [200, 0]], dtype=np.uint8)
    Image.fromarray(np.repeat(gray[:, :, None], 3, axis=2)).save(tmp_path / "gray.png")
    loaded = load_label_map(tmp_path / "gray.png")
    assert loaded.format == "ids" and loaded.ids.tolist() == gray.tolist()


def test_encode_rejects_ids_above_7():
    with pytest.raises(InputError, match="8-group"):
        encode_groups_rgb(np.array([[1, 8]]))


def test_save_rejects_huge_ids(tmp_path):
    with pytest.raises(InputError):
        save_label_map(np.array([[70000]]), tmp_path / "x.png")
    assert list(tmp_path.iterdir()) == []


def test_load_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_label_map(tmp_path / "missing.png")
    (tmp_path / "seg.png").write_text("hello")
    with pytest.raises(InputError, match="label map"):
        load_label_map(tmp_path / "seg.png")
    Image.new("CMYK", (2, 2)).save(tmp_path / "cmyk.jpg")
    with pytest.raises(InputError, match="CMYK"):
        load_label_map(tmp_path / "cmyk.jpg")


def test_fit_label_map_keeps_ids():
    ids = np.random.default_rng(2).choice([3, 7], size=(20, 30))
    for size in [(75, 50), (12, 8), (30, 20)]:
        out = fit_label_map(ids, size, "seg.png", "in.jpg")
        assert out.shape == (size[1], size[0]) and out.dtype == np.int64
        assert set(np.unique(out)) <= {3, 7}


def test_fit_label_map_is_nearest():
    ids = np.array([[3, 7], [7, 3]])
    assert (fit_label_map(ids, (4, 4), "s", "p") == np.kron(ids, np.ones((2, 2), int))).all()
    assert (fit_label_map(np.kron(ids, np.ones((3, 3), int)), (2, 2), "s", "p") == ids).all()


def test_fit_label_map_allows_rounding():
    assert fit_label_map(np.zeros((437, 700), int), (700, 438), "s", "p").shape == (438, 700)
    assert fit_label_map(np.zeros((33, 100), int), (1000, 333), "s", "p").shape == (333, 1000)


def test_fit_label_map_aspect_mismatch():
    with pytest.raises(InputError) as info:
        fit_label_map(np.zeros((200, 300), int), (400, 400), "seg.png", "in.jpg")
    msg = str(info.value)
    assert "\n" not in msg
    assert msg == ("label map 'seg.png' is 300x200 but photo 'in.jpg' is 400x400 "
                   "(aspect ratios differ); give a label map of the image's shape")


def test_unify_ids():
    a = np.array([[5, 100], [5, 7]])
    b = np.array([[100, 42]])
    (ua, ub), k = unify_ids(a, b)
    assert k == 4
    assert ua.dtype == np.int64 and ub.dtype == np.int64
    assert ua.tolist() == [[0, 3], [0, 1]] and ub.tolist() == [[3, 2]]
    assert unify_ids() == ([], 0)


def test_label_preview():
    ids = np.array([[0, 1], [5, 7]])
    plain = label_preview(ids)
    assert plain.shape == (2, 2, 3) and plain.dtype == np.uint8
    assert len({tuple(c) for c in plain.reshape(-1, 3)}) == 4  # distinct colours
    image = np.full((40, 60, 3), 200, dtype=np.uint8)
    big = np.zeros((40, 60), dtype=np.int64)
    big[20:] = 5
    out = label_preview(big, image, names=GROUP_NAMES)
    assert out.shape == (40, 60, 3) and out.dtype == np.uint8


@pytest.mark.skipif(not (DATA / "stills" / "dpst" / "in1_seg.png").exists(),
                    reason="shared data not available")
def test_real_colour_mask_loads():
    # These masks use arbitrary colours, not the 8-group format; they must still load.
    seg = load_label_map(DATA / "stills" / "dpst" / "in1_seg.png")
    photo = load_image(DATA / "stills" / "dpst" / "in1.jpg")
    assert isinstance(seg, LabelMap) and seg.ids.dtype == np.int64
    assert seg.ids.shape == photo.shape[:2]
