import numpy as np
import pytest
from PIL import Image

from timelapse_cli import images
from timelapse_cli.errors import InputError, TimefliesError
from timelapse_cli.images import contact_sheet, fit_size, load_image, resize_image, save_png


def _save(tmp_path, im, name, **kw):
    path = tmp_path / name
    im.save(path, **kw)
    return path


def _check_rgb(arr, shape):
    assert arr.dtype == np.uint8
    assert arr.shape == shape + (3,)


def test_grayscale_l(tmp_path):
    arr = np.array([[0, 100], [200, 255]], dtype=np.uint8)
    out = load_image(_save(tmp_path, Image.fromarray(arr), "g.png"))
    _check_rgb(out, (2, 2))
    assert (out == arr[:, :, None]).all()


def test_rgba_alpha_is_dropped(tmp_path):
    im = Image.new("RGBA", (4, 3), (10, 20, 30, 0))
    out = load_image(_save(tmp_path, im, "a.png"))
    _check_rgb(out, (3, 4))
    assert (out == (10, 20, 30)).all()


def test_la_alpha_is_dropped(tmp_path):
    out = load_image(_save(tmp_path, Image.new("LA", (3, 2), (77, 0)), "la.png"))
    assert (out == 77).all()


def test_16bit_grayscale_scaled_by_257(tmp_path):
    arr = np.array([[0, 257 * 128], [65535, 65535]], dtype=np.uint16)
    path = _save(tmp_path, Image.fromarray(arr), "g16.png")
    with Image.open(path) as im:
        assert im.mode.startswith("I")
    out = load_image(path)
    _check_rgb(out, (2, 2))
    assert out[:, :, 0].tolist() == [[0, 128], [255, 255]]


def test_32bit_and_float_and_bilevel(tmp_path):
    i32 = Image.fromarray(np.array([[0, 65535]], dtype=np.int32))
    assert load_image(_save(tmp_path, i32, "i.tif"))[0, :, 0].tolist() == [0, 255]
    f = Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32))
    assert load_image(_save(tmp_path, f, "f.tif"))[0, :, 0].tolist() == [0, 128, 255]
    bilevel = Image.new("1", (2, 1), 1)
    assert (load_image(_save(tmp_path, bilevel, "b.png")) == 255).all()


def test_cmyk_jpeg(tmp_path):
    im = Image.new("CMYK", (16, 8), (0, 255, 255, 0))  # red
    out = load_image(_save(tmp_path, im, "c.jpg", quality=95))
    _check_rgb(out, (8, 16))
    r, g, b = out.reshape(-1, 3).mean(axis=0)
    assert r > 200 and g < 60 and b < 60


@pytest.mark.parametrize("mode", ["YCbCr", "HSV", "LAB"])
def test_other_colour_modes(mode):
    im = Image.new("RGB", (4, 4), (0, 0, 255)).convert(mode)
    out = images.to_rgb(im)
    _check_rgb(out, (4, 4))
    assert out[..., 2].mean() > 200 and out[..., 0].mean() < 60


@pytest.mark.parametrize("transparent", [False, True])
def test_palette_png(tmp_path, transparent):
    im = Image.fromarray(np.array([[0, 1], [1, 2]], dtype=np.uint8), mode="P")
    im.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255])
    kw = {"transparency": 0} if transparent else {}
    out = load_image(_save(tmp_path, im, "p.png", **kw))
    assert out[0, 0].tolist() == [255, 0, 0]
    assert out[0, 1].tolist() == [0, 255, 0]
    assert out[1, 1].tolist() == [0, 0, 255]


def test_exif_rotated_jpeg(tmp_path):
    arr = np.zeros((20, 40, 3), dtype=np.uint8)
    arr[:, :20] = (255, 0, 0)  # red left half
    arr[:, 20:] = (0, 0, 255)  # blue right half
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise
    out = load_image(_save(tmp_path, Image.fromarray(arr), "r.jpg", exif=exif, quality=95))
    _check_rgb(out, (40, 20))  # width and height swapped
    top, bottom = out[:16].reshape(-1, 3).mean(0), out[24:].reshape(-1, 3).mean(0)
    assert top[0] > 200 and top[2] < 60  # the left (red) half is now on top
    assert bottom[2] > 200 and bottom[0] < 60


def test_animated_gif_takes_first_frame(tmp_path):
    frames = [Image.new("RGB", (4, 4), c) for c in [(255, 0, 0), (0, 0, 255)]]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    out = load_image(path)
    assert out[0, 0, 0] > 200 and out[0, 0, 2] < 60


def test_text_file_is_input_error(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("not a picture\n")
    with pytest.raises(InputError) as info:
        load_image(path)
    msg = str(info.value)
    assert "\n" not in msg and "notes.jpg" in msg and "not an image" in msg and "JPEG" in msg


def test_missing_file_is_input_error(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_image(tmp_path / "nope.jpg")


def test_directory_is_input_error(tmp_path):
    with pytest.raises(InputError, match="directory"):
        load_image(tmp_path)


def test_truncated_jpeg_is_input_error(tmp_path):
    # Decision: LOAD_TRUNCATED_IMAGES stays off, so a cut-off photo is an InputError.
    rng = np.random.default_rng(0)
    full = _save(tmp_path, Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)), "f.jpg")
    data = full.read_bytes()
    for cut in (len(data) // 2, 20):
        path = tmp_path / f"cut{cut}.jpg"
        path.write_bytes(data[:cut])
        with pytest.raises(InputError) as info:
            load_image(path)
        assert "\n" not in str(info.value)


def test_resize_image():
    img = np.zeros((10, 20, 3), dtype=np.uint8)
    for size in [(5, 3), (40, 21)]:
        out = resize_image(img, size)
        assert out.shape == (size[1], size[0], 3) and out.dtype == np.uint8
    assert resize_image(img[:, :, 0], (4, 2)).shape == (2, 4)


@pytest.mark.parametrize("args, kwargs, expected", [
    ((4000, 3000), {}, (4000, 3000)),
    ((4000, 3000), {"size": 1000}, (1000, 750)),
    ((3000, 4000), {"size": 1000}, (750, 1000)),
    ((4000, 3000), {"size": (640, 360)}, (640, 360)),
    ((1001, 501), {"max_size": 500}, (500, 250)),
    ((300, 200), {"max_size": 500}, (300, 200)),
    ((4000, 3000), {"size": 2000, "max_size": 1000}, (1000, 750)),
    ((4000, 3000), {"size": (2000, 100), "max_size": 1000}, (1000, 50)),
    ((333, 111), {"size": 100}, (100, 33)),
    ((101, 51), {"size": 50}, (50, 25)),
    ((3, 5), {"size": 7}, (4, 7)),  # 4.2 -> 4
    ((1000, 1), {"size": 10}, (10, 1)),  # never below 1
])
def test_fit_size(args, kwargs, expected):
    assert fit_size(*args, **kwargs) == expected


@pytest.mark.parametrize("kwargs", [{"size": 0}, {"size": (10, -1)}, {"max_size": 0}, {"size": 2.5}])
def test_fit_size_rejects_bad_sizes(kwargs):
    with pytest.raises(TimefliesError):
        fit_size(100, 100, **kwargs)


def test_save_png_round_trip(tmp_path):
    arr = np.random.default_rng(1).integers(0, 255, (6, 5, 3), dtype=np.uint8)
    save_png(arr, tmp_path / "out" / "x.png")
    assert (load_image(tmp_path / "out" / "x.png") == arr).all()
    save_png(arr[:, :, 0], tmp_path / "gray.png")
    with Image.open(tmp_path / "gray.png") as im:
        assert im.mode == "L"


def test_save_png_leaves_nothing_on_error(tmp_path, monkeypatch):
    def broken_save(self, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(OSError):
        save_png(np.zeros((2, 2, 3), dtype=np.uint8), tmp_path / "x.png")
    assert list(tmp_path.iterdir()) == []


def test_contact_sheet_shape():
    frames = [np.full((48, 64, 3), 40 * i, dtype=np.uint8) for i in range(5)]
    frames.append(np.zeros((64, 32), dtype=np.uint8))  # taller, grayscale
    plain = contact_sheet(frames, columns=4, thumb_width=32)
    gap = 8
    assert plain.dtype == np.uint8 and plain.ndim == 3 and plain.shape[2] == 3
    assert plain.shape[1] == 4 * (32 + gap) + gap
    assert plain.shape[0] == 2 * (64 + gap) + gap  # tallest thumb is 32x64
    assert (plain[0, 0] == 255).all()  # white border
    labelled = contact_sheet(frames, columns=4, thumb_width=32, labels=[f"frame {i}" for i in range(6)])
    assert labelled.shape[1] == plain.shape[1] and labelled.shape[0] > plain.shape[0]


def test_contact_sheet_fewer_frames_than_columns():
    out = contact_sheet([np.zeros((10, 10, 3), dtype=np.uint8)], columns=4, thumb_width=16)
    assert out.shape == (16 + 16, 16 + 16, 3)


def test_open_image_names_what(tmp_path):
    with pytest.raises(InputError, match="^label map"):
        images.open_image(tmp_path / "seg.png", what="label map")
