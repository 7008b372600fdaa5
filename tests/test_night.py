"""The night stage (model/night.py) and teaching its light head (lights.py)."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from timelapse_cli.model import Generator, GeneratorConfig
from timelapse_cli.model.color import LAB_EPS, lab_transfer, rgb_to_lab
from timelapse_cli.model.modulation import Regions, SoftLabels, border_content, class_stats
from timelapse_cli.model.night import (DarkestNight, add_light, albedo, cell_size, greenery, light_cues, lit_pixels, lit_share,
                                       luminance, night_transfer, place_lights, read_night, render_lights, shading,
                                       FILL_SCALE, window_map, with_windows)

H, W = 48, 64


def _scene(seed=0):
    """A photo (1, 3, H, W) with sky on top (class 1) and a textured, sunlit/shadowed ground."""
    g = torch.Generator().manual_seed(seed)
    photo = torch.empty(1, 3, H, W)
    photo[:, :, :16] = torch.tensor([0.55, 0.7, 0.95]).view(1, 3, 1, 1)
    ground = 0.35 + 0.1 * torch.rand(1, 3, H - 16, W, generator=g)
    ground[..., : W // 2] += 0.35  # sunlit half
    photo[:, :, 16:] = ground
    labels = torch.zeros(H, W, dtype=torch.long)
    labels[:16] = 1
    return photo.clamp(0, 1), labels


def _night_frame(lamps=((30, 10), (40, 50), (44, 30))):
    """A dark reference frame (1, 3, H, W) with a dark blue sky and a few warm lamps."""
    frame = torch.full((1, 3, H, W), 0.04)
    frame[:, 2, :16] = 0.12
    for y, x in lamps:
        frame[0, :, y:y + 2, x:x + 2] = torch.tensor([1.0, 0.75, 0.35]).view(3, 1, 1)
    return frame


def _day_frame():
    photo, _ = _scene(1)
    return photo * 0.9


def _night_generator(**kw):
    torch.manual_seed(0)
    cfg = GeneratorConfig(width=0.125, output="affine", affine_smooth=4, night=True, **kw)
    return Generator(cfg).eval()


def _read(frame, labels):
    index = labels.flatten()
    return read_night(frame, rgb_to_lab(frame), index, 2, labels == 1, LAB_EPS)


def test_a_day_frame_has_no_lights_and_the_transfer_is_the_classwise_one():
    photo, labels = _scene()
    frame = _day_frame()
    light = _read(frame, labels)
    assert light.night.item() == 0 and light.share.item() == 0
    lab = rgb_to_lab(photo)
    regions = Regions(labels, 2, (H, W))
    stats = class_stats(lab, regions, LAB_EPS)
    shade = shading(lab, torch.stack([(labels == 0), (labels == 1), labels < 0]).float()[None])
    plain = lab_transfer(lab, regions, frame, regions, stats)
    mean = regions.gather(stats[0])
    assert torch.allclose(night_transfer(lab, regions, stats, mean, shade, light), plain, atol=2e-3)
    assert render_lights(place_lights(torch.zeros(1, 1, H // 4, W // 4), (labels == 1).float()[None, None],
                                      (H, W), 0), light) is None


def test_a_night_frame_reads_as_dark_ambient_plus_lamps():
    _, labels = _scene()
    light = _read(_night_frame(), labels)
    assert light.night.item() == 1
    assert light.share.item() == pytest.approx(3 / ((H // cell_size((H, W))) * (W // cell_size((H, W)))), rel=0.5)
    colours = light.colours[0]  # linear RGB of the lamps: warm (red > blue)
    assert (colours[:, 0] > colours[:, 2]).all()
    # the ambient excludes the lamps: its lightness is that of the dark ground
    assert light.mean[0, 0, 0].item() < 10


def test_lights_never_go_in_the_sky_and_stay_in_place_as_more_come_on():
    _, labels = _scene()
    sky = (labels == 1).float()[None, None]
    sites = place_lights(torch.zeros(1, 1, H // 4, W // 4), sky, (H, W), seed=3)
    ys = sites.index // W
    assert (ys >= 16).all()                                   # the top 16 rows are sky
    assert torch.equal(sites.index, place_lights(torch.zeros(1, 1, H // 4, W // 4), sky, (H, W), 3).index)
    assert not torch.equal(sites.index, place_lights(torch.zeros(1, 1, H // 4, W // 4), sky, (H, W), 4).index)
    frame = _night_frame()
    base = _read(frame, labels)
    few, many = [replace(base, share=torch.tensor([s]))
                 for s in (0.05, 0.2)]
    lamps_few, _ = render_lights(sites, few)
    lamps_many, _ = render_lights(sites, many)
    on_few = lit_pixels(lamps_few.clamp(0, 1))
    on_many = lit_pixels(lamps_many.clamp(0, 1))
    assert on_few.sum() > 0 and on_many.sum() > 2 * on_few.sum()
    assert (on_many | ~on_few).all()                          # every light on at 5% is still on at 20%


def test_light_cues_rank_edges_of_the_ground_whatever_the_photo_s_contrast():
    photo, labels = _scene()
    photo[:, :, 32:, ::3] = 0.1                                # a striped facade low on the right
    sky = (labels == 1).float()[None, None]
    lab = rgb_to_lab(photo)
    cues = light_cues(lab, sky, (H // 4, W // 4))
    ground = cues[:, :, 4:]                                   # rows below the sky
    assert torch.allclose(ground.mean((2, 3)), torch.zeros(1, 2), atol=1e-4)
    assert torch.allclose(ground.std((2, 3), unbiased=False), torch.ones(1, 2), atol=1e-3)
    assert cues[0, 0, 8:].mean() > 0.5 > cues[0, 0, 4:8].mean()  # vertical edges: the facade
    soft = lab.clone()
    soft[:, 0] = 50 + (lab[:, 0] - 50) * 0.3                  # the same photo, a third of its contrast
    assert torch.allclose(light_cues(soft, sky, (H // 4, W // 4)), cues, atol=1e-3)


def test_the_light_head_decides_where_lights_go():
    _, labels = _scene()
    sky = (labels == 1).float()[None, None]
    logits = torch.full((1, 1, H // 4, W // 4), -20.0)
    logits[..., :, W // 8:] = 20.0                            # the right half
    sites = place_lights(logits, sky, (H, W), seed=0)
    first = sites.index[:10] % W
    assert (first >= W // 2 - cell_size((H, W))).all()


def test_lamps_go_in_tree_crowns_and_lawns_only_after_every_other_place():
    _, labels = _scene()
    sky = (labels == 1).float()[None, None]
    photo = torch.full((1, 3, H, W), 0.5)
    photo[:, :, 16:, : W // 2] = torch.tensor([0.2, 0.45, 0.15]).view(1, 3, 1, 1)   # a green left half
    green = greenery(rgb_to_lab(photo))
    assert green[..., 16:, : W // 2].min() == 1 and green[..., :, W // 2:].max() == 0
    sites = place_lights(torch.zeros(1, 1, H // 4, W // 4), sky, (H, W), seed=0, last=green)
    xs = sites.index % W
    right = int((sites.index // W >= 16).sum() // 2)        # the ground cells of the right half
    assert (xs[:right] >= W // 2).all() and (xs[right:] < W // 2).all()


def _with_and_without_night(photo, labels, frame):
    """The same generator's frame for reference `frame`, night stage on and off."""
    g = _night_generator()
    plain = Generator(GeneratorConfig(**{**g.config.to_dict(), "night": False})).eval()
    plain.load_state_dict(g.state_dict(), strict=False)
    windows = frame.repeat(1, 3, 1, 1)
    with torch.no_grad():
        return (g.decode(g.encode_image(photo, labels, 2, sky_id=1, seed=0), windows, labels, None),
                plain.decode(plain.encode_image(photo, labels, 2), windows, labels, None))


def test_at_night_daylight_goes_and_lamps_light_the_ground():
    photo, labels = _scene()
    out, ref = _with_and_without_night(photo, labels, _night_frame())
    ground = labels == 0
    y, y_plain, y_photo = (luminance(x)[0, 0][ground] for x in (out, ref, photo))
    lit = lit_pixels(out)[0, 0][ground]
    assert lit.any() and not lit_pixels(out)[0, 0, :13].any()   # lamps on the ground, none in the sky

    def corr(a, b):
        return torch.corrcoef(torch.stack([a, b]))[0, 1].item()

    # the sunlit half no longer stands out: the unlit ground follows the photo far less
    assert corr(y[~lit], y_photo[~lit]) < corr(y_plain[~lit], y_photo[~lit]) - 0.3


def test_by_day_the_night_stage_changes_nothing():
    photo, labels = _scene()
    out, ref = _with_and_without_night(photo, labels, _day_frame())
    assert (out - ref).abs().max() < 2e-3


@pytest.mark.parametrize("naive", [False, True])
def test_cached_and_naive_paths_agree_with_night_on(naive):
    from timelapse_cli.methods import Timeflies

    photo, labels = _scene()
    g = _night_generator()
    windows = torch.cat([_night_frame(), _night_frame(), _night_frame()], 1).repeat(2, 1, 1, 1)
    outs = []
    for n in (False, naive):
        m = Timeflies(g, seed=2, naive=n)
        with torch.no_grad():
            m.prepare(photo, labels, labels, 2, 1)
            outs.append(m.generate(windows, 0))
    assert (outs[0] - outs[1]).abs().max() < 1e-4


# ------------------------------------------------------------------ light head training


def _camera_folder(root, name="cam", lamp_rows=(40, 44)):
    """A webcam folder: 4 day frames, 4 night frames whose lamps sit on rows lamp_rows; by
    day a striped facade (vertical edges) stands around those rows on a plain ground."""
    folder = root / name
    folder.mkdir(parents=True)
    g = np.random.default_rng(0)
    tags = []
    for i in range(8):
        day = i % 2 == 0
        if day:
            img = (g.random((H, W, 3)) * 10 + 150).astype(np.uint8)
            img[:16] = (140, 180, 240)
            img[lamp_rows[0] - 4:lamp_rows[1] + 2, ::4] = 60          # the facade's window columns
        else:
            img = np.full((H, W, 3), 10, np.uint8)
            for x in range(4, W, 8):
                img[lamp_rows[0]:lamp_rows[1], x:x + 2] = (255, 200, 120)
        Image.fromarray(img).save(folder / f"{i:04d}.jpg", quality=95)
        tags.append(f"20151102_{i:02d}0000 UTC {'day' if day else 'night'}")
    (folder / "timestamps.txt").write_text("\n".join(tags) + "\n")
    return folder


def test_day_and_night_come_from_timestamps(tmp_path):
    from timelapse_cli import data
    from timelapse_cli.lights import day_night

    _camera_folder(tmp_path)
    seq = data.find_sequences(tmp_path, 2, "")[0]
    frames = data.load_frames(seq, 0, seq.frames, (W, H))
    assert day_night(seq, frames) == ([0, 2, 4, 6], [1, 3, 5, 7])
    (tmp_path / "cam" / "timestamps.txt").unlink()            # without labels: by brightness
    seq = data.find_sequences(tmp_path, 2, "")[0]
    assert day_night(seq, frames) == ([0, 2, 4, 6], [1, 3, 5, 7])


def test_training_moves_the_lights_to_where_the_nights_have_them(tmp_path):
    from timelapse_cli import data
    from timelapse_cli.lights import LightTrainOptions, load_camera, train_light_head

    _camera_folder(tmp_path)
    seq = data.find_sequences(tmp_path, 2, "")[0]
    cam = load_camera(seq, W, None)
    rows = cam.target[0, 0].sum(1)                            # per row of cells
    c = cell_size((H, W))
    lamp = slice(40 // c, 44 // c)                            # the lamps' rows (40..43) in cells
    assert rows[lamp].sum() > 0 and rows.sum() == rows[lamp].sum()
    g = _night_generator()
    labels = torch.zeros(H, W, dtype=torch.long)
    labels[:16] = 1

    def first_rows():                                         # rows of the first lights to come on
        with torch.no_grad():
            return g.encode_image(cam.days[:1], labels, 2, sky_id=1, seed=0).sites.index[:6] // W

    assert (first_rows() < 36).any()                          # untrained: anywhere but the sky
    losses = train_light_head(g, [cam], LightTrainOptions(steps=60))
    assert losses[-1] < 0.8 * losses[0]
    assert (first_rows() >= 36).all()                         # the bottom rows, where the lamps were
    assert not any(p.requires_grad for p in g.parameters())


def test_train_lights_command_writes_weights_animate_reads(tmp_path):
    from typer.testing import CliRunner

    from timelapse_cli.cli import app
    from timelapse_cli.weights import from_pretrained, save_pretrained

    torch.manual_seed(0)  # an affine generator without the night stage: train-lights turns it on
    tiny_weights = save_pretrained(Generator(GeneratorConfig(width=0.125, output="affine")), tmp_path / "init")
    _camera_folder(tmp_path / "data")
    out = tmp_path / "w"
    r = CliRunner().invoke(app, ["train-lights", "--data", str(tmp_path / "data"), "-o", str(out),
                                 "--init", str(tiny_weights), "--steps", "3", "--size", "64", "--segmenter",
                                 "builtin"])
    assert r.exit_code == 0, r.output
    assert "3 steps" in r.output and "1 cameras" in r.output
    model = from_pretrained(out)
    assert model.night
    from test_cli import assert_one_line_error, run_cli

    before = (out / "generator.safetensors").read_bytes()
    assert_one_line_error(run_cli("train-lights", "--data", tmp_path / "data", "-o", out, "--init", tiny_weights,
                                  "--steps", "3"), "already exists", "--overwrite")
    assert (out / "generator.safetensors").read_bytes() == before


def test_the_darkest_frame_of_the_reference_gives_the_lamps_of_full_night():
    _, labels = _scene()
    sky = labels == 1
    darkest = DarkestNight(sky)
    assert darkest.share is None
    many = _night_frame(((20, 4), (24, 20), (30, 40), (36, 56), (44, 12), (40, 30)))
    many[:, :, :16] = 1.0                      # a bright sky: never a lamp, and not the darkest frame
    few = _night_frame()
    for frame in (_day_frame(), many, few, torch.zeros(1, 3, H, W)):   # the last: a fade to black
        darkest.add(frame)
    assert darkest.share == pytest.approx(_read(few, labels).share.item())
    darkest = DarkestNight(sky)
    darkest.add(many * torch.where(torch.arange(H).view(1, 1, H, 1) < 16, 0.0, 1.0))  # its sky dark now
    assert darkest.share == pytest.approx(_read(many, labels).share.item()) and darkest.share > 0


def test_with_the_darkest_share_every_night_frame_has_the_same_lamps():
    photo, labels = _scene()
    g = _night_generator()
    few = _night_frame()
    many = _night_frame(((20, 4), (24, 20), (30, 40), (36, 56), (44, 12), (40, 30)))
    share = _read(few, labels).share.item()
    with torch.no_grad():
        def frames(night_share):
            cache = g.encode_image(photo, labels, 2, sky_id=1, seed=0, night_share=night_share)
            return [g.decode(cache, f.repeat(1, 3, 1, 1), labels, None) for f in (few, many)]
        own = [lit_pixels(x) for x in frames(None)]
        held = [lit_pixels(x) for x in frames(share)]
    assert own[1].sum() > own[0].sum()              # frame by frame: more lamps in the frame with more
    assert torch.equal(held[0], held[1])            # through the night: the same lamps in both
    assert torch.equal(held[0], own[0])             # those of the darkest frame


def test_lamps_stand_out_from_a_frame_brighter_than_the_reference():
    """A bright city night (ambient 0.2, lamps at 0.85, just above 4 x its median) on a
    photo lit a little brighter (0.24: lit means above 0.96 there): the lamps are raised
    to stay lit; added as they are, they would not be."""
    _, labels = _scene()
    frame = torch.full((1, 3, H, W), 0.2)
    for y, x in ((20, 4), (30, 40), (44, 12), (40, 30)):
        frame[0, :, y:y + 2, x:x + 2] = 0.85
    light = replace(_read(frame, labels), ground=torch.tensor([1.0]))  # room for all the light
    assert light.threshold.item() == pytest.approx(0.8, abs=0.01)
    sites = place_lights(torch.zeros(1, 1, H // 4, W // 4), (labels == 1).float()[None, None], (H, W), 0)
    lamps, thrown = render_lights(sites, light)
    ground = (labels == 0).float()[None, None]
    bright = torch.full((1, 3, H, W), 0.24)
    on = int((light.share * sites.cells).round())
    out = add_light(bright, (lamps, thrown), torch.ones(1, 3, H, W), ground, light)
    plain = add_light(bright, (lamps, thrown), torch.ones(1, 3, H, W), ground,
                      replace(light, threshold=torch.tensor([1.0])))  # as if lamps stood out already
    assert on >= 3
    assert lit_share(out, ground).item() * sites.cells == pytest.approx(on, abs=0.5)
    assert lit_share(plain, ground).item() * sites.cells < on / 2, on


def test_the_summary_says_how_many_lamps_come_on_at_full_night():
    from timelapse_cli.animation import ReferenceScan
    from timelapse_cli.methods import Timeflies

    photo, labels = _scene()
    method = Timeflies(_night_generator())
    with torch.no_grad():
        method.prepare(photo, labels, labels, 2, 1, ReferenceScan(None, 0.1))
        cells = method.cache.sites.cells
        assert f"at full night {round(0.1 * cells)} lamps (10% of the light cells" in method.note
        method.prepare(photo, labels, labels, 2, 1, ReferenceScan(None, 0.0))   # a reference with no lit night
        assert "lamps" not in method.note
        method.prepare(photo, labels, labels, 2, 1, None)
        assert "lamps" not in method.note


def test_lamps_and_their_glow_light_as_many_cells_as_the_reference_asks():
    """On a very dark night a lamp's glow lights the cells beside it too; fewer lamps are
    then drawn, so the lit cells are the share asked for, not more."""
    from timelapse_cli.model.night import light_up

    _, labels = _scene()
    ground = (labels == 0).float()[None, None]
    sites = place_lights(torch.zeros(1, 1, H // 4, W // 4), (labels == 1).float()[None, None], (H, W), 0)
    light = replace(_read(_night_frame(), labels), share=torch.tensor([0.1]), ground=torch.tensor([1.0]))
    dark = torch.full((1, 3, H, W), 0.01)
    plain = add_light(dark, render_lights(sites, light), torch.ones(1, 3, H, W), ground, light)
    out = light_up(dark, sites, torch.ones(1, 3, H, W), ground, light)
    assert lit_share(plain, ground).item() > 1.2 * 0.1                      # the glow spills
    assert lit_share(out, ground).item() == pytest.approx(0.1, abs=0.02)


def _facade(n=128):
    """A photo (1, 3, n, n): sky in the top quarter, a plain wall on the left half of the
    ground and a facade on the right half: a light wall with dark 2x2 windows every 4 px."""
    photo = torch.full((1, 3, n, n), 0.7)
    photo[:, :, :n // 4] = torch.tensor([0.55, 0.7, 0.95]).view(1, 3, 1, 1)
    for y in range(n // 4 + 4, n - 2, 4):
        for x in range(n // 2 + 4, n - 2, 4):
            photo[:, :, y:y + 2, x:x + 2] = 0.2
    photo[:, :, :, n // 4] = 0.2                                    # a thin dark line down the plain wall: no window
    photo = photo + 0.01 * torch.rand(1, 1, n, n, generator=torch.Generator().manual_seed(0))  # no ties
    ground = torch.ones(1, 1, n, n)
    ground[..., :n // 4, :] = 0
    return photo, ground


def test_windows_are_the_facade_s_dark_features_as_many_as_the_fill_asks():
    photo, ground = _facade()
    lab = rgb_to_lab(photo)
    cell = cell_size((128, 128))                                   # 4 px: 16 pixels per cell
    # The reference's fill is scaled by FILL_SCALE: these light 1 and all 16 pixels of a cell.
    few, many = window_map(lab, ground, 1 / 16 / FILL_SCALE), window_map(lab, ground, 1 / FILL_SCALE)
    window = (photo[:, :1] < 0.3) & (torch.arange(128) >= 64)      # the panes, not the line
    assert many.sum() > 0 and (many.bool() <= window).all()        # window panes only: no wall, line or sky
    assert many[..., :32, :].sum() == 0 and many[..., :, :64].sum() == 0
    assert (few.bool() <= many.bool()).all() and few.sum() < many.sum()  # less fill: a subset
    per_cell = torch.nn.functional.avg_pool2d(few, cell) * cell * cell
    assert per_cell.max() <= 1                                     # 1/16 of 16 pixels: one per cell


def test_a_lit_facade_cell_lights_its_windows_and_a_plain_cell_keeps_its_point():
    photo, ground = _facade()
    lab = rgb_to_lab(photo)
    sky = 1 - ground
    sites = place_lights(torch.zeros(1, 1, 32, 32), sky, (128, 128), seed=1)
    sites = with_windows(sites, window_map(lab, ground, 1 / FILL_SCALE))
    frame = torch.full((1, 3, 64, 64), 0.03)
    frame[0, :, 40:42, 20:22] = 1.0
    light = replace(read_night(frame, rgb_to_lab(frame), torch.zeros(64 * 64, dtype=torch.long), 1, None, LAB_EPS),
                    share=torch.tensor([1.0]))                     # every cell lit
    lamps, _ = render_lights(sites, light)
    lit = luminance(lamps)[0, 0] > 0.2
    window = (photo[0, 0] < 0.3) & (torch.arange(128) >= 64)
    facade = (torch.arange(128).view(1, 128) >= 68) & (torch.arange(128).view(128, 1) >= 36)  # cells with windows
    assert lit[window & facade].float().mean() > 0.9               # the windows glow ...
    assert not lit[~window & facade].any()                         # ... not the wall between them
    assert lit[32:, :60].sum() > 0                                 # the plain wall keeps point lamps
    points, _ = render_lights(replace(sites, windows=None), light)
    assert torch.equal(luminance(points)[0, 0, 32:, :60] > 0.2, lit[32:, :60])


def test_the_darkest_frame_says_how_much_of_a_lit_cell_glows():
    darkest = DarkestNight()
    frame = torch.zeros(1, 3, H, W)
    frame[0, :, 20:22, 8:10] = 1.0                                 # a 2x2 lamp inside one 2x2 cell
    frame[0, :, 30:31, 40:41] = 1.0                                # a 1 px lamp: a quarter of its cell
    frame = frame + 0.02                                           # not a black frame
    darkest.add(frame)
    assert cell_size((H, W)) == 2 and darkest.fill == pytest.approx((1 + 0.25) / 2)


def test_the_reference_s_fill_reaches_the_photo_s_windows():
    photo, _ = _facade()
    labels = torch.zeros(128, 128, dtype=torch.long)
    labels[:32] = 1
    g = _night_generator()
    sparse = g.encode_image(photo, labels, 2, sky_id=1, seed=0, night_share=0.2, night_fill=0.25).sites.windows
    dense = g.encode_image(photo, labels, 2, sky_id=1, seed=0, night_share=0.2, night_fill=1.0).sites.windows
    assert 0 < sparse.sum() < dense.sum()
    points = _night_generator(windows=False)                       # config.json's switch: point lamps only
    assert points.encode_image(photo, labels, 2, sky_id=1, seed=0, night_share=0.2, night_fill=1.0).sites.windows is None


def _skyline():
    """A smooth blue sky over warm roofs; the segmenter's sky reaches a row into the roofs
    and the soft matte shares the two rows at the border: (photo, SoftLabels)."""
    g = torch.Generator().manual_seed(0)
    photo = torch.empty(1, 3, H, W)
    photo[:, :, :16] = torch.tensor([0.55, 0.7, 0.95]).view(1, 3, 1, 1) + 0.01 * torch.rand(1, 3, 16, W, generator=g)
    photo[:, :, 16:] = torch.tensor([0.55, 0.4, 0.3]).view(1, 3, 1, 1) + 0.15 * torch.rand(1, 3, H - 16, W, generator=g)
    ids = torch.zeros(H, W, dtype=torch.long)
    ids[:17] = 1                        # row 16 is roof, labelled sky
    weight = torch.zeros(H, W)
    weight[15:18] = torch.tensor([0.2, 0.6, 0.3])[:, None]
    return photo.clamp(0, 1), SoftLabels(ids, 1 - ids, weight)


@pytest.mark.parametrize("frame", ["night", "day"])
def test_at_night_a_soft_skyline_has_no_dark_rim_and_by_day_nothing_changes(frame):
    photo, soft = _skyline()
    lab = rgb_to_lab(photo)
    regions = Regions(soft, 2, (H, W))
    stats = class_stats(lab, regions, LAB_EPS)
    shade = shading(lab, torch.stack([soft.ids == 0, soft.ids == 1]).float()[None])
    g = torch.Generator().manual_seed(1)  # real nights have some texture in sky and ground
    night = _night_frame(lamps=()) * (0.6 + 0.8 * torch.rand(1, 3, H, W, generator=g))
    light = _read(night if frame == "night" else _day_frame(), soft.ids)
    mean = regions.gather(stats[0])
    border = border_content(lab, regions)
    plain = rgb_to_lab(night_transfer(lab, regions, stats, mean, shade, light))
    apart = rgb_to_lab(night_transfer(lab, regions, stats, mean, shade, light, border))
    if frame == "day":
        assert torch.allclose(plain, apart, atol=1e-4)
        return
    sky, roofs = apart[0, :, 2:12].mean((1, 2)), apart[0, :, 22:].mean((1, 2))   # Lab (3,) each
    low, high = torch.minimum(sky, roofs), torch.maximum(sky, roofs)
    # The roof row read as sky is several of the sky's small sigmas from its mean: a rim
    # yellower (b*) than either side.
    assert plain[0, 2, 16].mean() > high[2] + 0.5
    # Read as the two colours it mixes, the border lies between its two sides.
    for row in (15, 16, 17):
        got = apart[0, :, row].mean(1)
        assert ((got > low - 0.3) & (got < high + 0.3)).all(), (row, got, low, high)


def test_thrown_light_shows_the_surfaces_not_the_day_s_sun_and_shadow():
    photo, labels = _scene()                       # the ground's left half is sunlit
    lab = rgb_to_lab(photo)
    masks = torch.stack([labels == 0, labels == 1]).float()[None]
    shaded = albedo(lab, torch.zeros_like(lab[:, :1]))
    flat = albedo(lab, shading(lab, masks))
    sun, shadow = (slice(24, 44), slice(4, 24)), (slice(24, 44), slice(40, 60))

    def ratio(a):
        return (luminance(a)[0, 0][sun].mean() / luminance(a)[0, 0][shadow].mean()).item()

    assert ratio(shaded) > 1.3
    assert ratio(flat) < 1.1
