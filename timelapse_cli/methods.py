"""Ways to turn (photo, reference windows) into frames: the learned model and the baselines.

Every method has the same two calls, so `animate` and `benchmark` drive them alike:
    method.prepare(image (1, 3, H, W), img_labels (H, W), ref_labels (h, w), K, sky, scan)   once
    method.generate(windows (B, 9, h, w), first, photos) -> (B, 3, H, W) in [0, 1]  per batch
windows hold the frames (F_t-2, F_t-1, F_t) of output frames first .. first+B-1. img_labels
may be SoftLabels (soft sky borders); sky is the sky's class id or None; scan is what one pass
over the whole reference found (animate.ReferenceScan: the frame most like the photo, the
lamps of its darkest night), given to a method that `needs_scan`. A method that `takes_photos` accepts photos
(B, 3, H, W): the photo with its sky moved (sky.py), one per frame, to recolour instead of
the prepared photo; the others draw their frames themselves and animate moves their sky.

Baselines (training-free; the floor the learned model must beat, and fast options):
- still:          the photo unchanged in every frame;
- reinhard:       per-frame colour transfer of mean and std in Lab (Reinhard et al. 2001);
- reinhard-class: the same per semantic class, so the sky takes the reference sky's colour.
"""
from __future__ import annotations

from typing import Callable

import torch

from .model.color import LAB_EPS, lab_transfer, rgb_to_lab
from .errors import TimefliesError
from .model import Generator, noise_frames
from .model.modulation import Regions, SoftLabels, class_stats

CHANNELS_LAST = torch.channels_last


class Method:
    name = ""
    needs_model = False  # True: the generator weights are loaded
    takes_photos = True  # generate() recolours per-frame photos given to it
    needs_scan = False  # prepare() wants a pass over the whole reference first (ReferenceScan)
    note = ""  # after prepare(): what it made of the photo and reference, for the summary

    def prepare(self, image: torch.Tensor, img_labels: torch.Tensor, ref_labels: torch.Tensor, k: int,
                sky: int | None = None, scan=None) -> None:
        raise NotImplementedError

    def generate(self, windows: torch.Tensor, first: int, photos: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError


class Timeflies(Method):
    """The generator. Cached: the image-only part runs once (prepare); naive: the whole
    generator for every frame, as the paper's code does."""
    name = "timeflies"
    needs_model = True

    def __init__(self, model: Generator, seed: int = 0, naive: bool = False) -> None:
        self.model, self.seed, self.naive = model, seed, naive
        # The affine head recolours a photo: it can recolour a moving one. The RGB head draws.
        self.takes_photos = model.config.output == "affine" and not naive
        self.needs_scan = model.config.local or model.night

    def prepare(self, image, img_labels, ref_labels, k, sky=None, scan=None):
        # channels_last: oneDNN's convolutions run ~25% faster on it than on NCHW.
        self.image = image.contiguous(memory_format=CHANNELS_LAST)
        self.img_labels, self.ref_labels, self.k, self.sky = img_labels, ref_labels, k, sky
        self.anchor, self.night_share, self.night_fill = (scan.anchor, scan.night_share, scan.night_fill) \
            if scan is not None else (None, None, None)
        if not self.naive:
            self.cache = self.model.encode_image(self.image, img_labels, k, sky, self.seed, self.anchor,
                                                 self.night_share, self.night_fill)
            self.note = "; ".join(filter(None, [view_note(self.cache.local), lamps_note(self.cache)]))

    def generate(self, windows, first, photos=None):
        b = windows.shape[0]
        size = self.model.work_shape(tuple(self.image.shape[-2:]))  # z is the network's: at its working size
        z = noise_frames(self.seed, first, b, size, self.model.config.noise_sigma).to(windows.device)
        windows = windows.contiguous(memory_format=CHANNELS_LAST)
        if self.naive:
            out = self.model(self.image.expand(b, -1, -1, -1), self.img_labels, windows, self.ref_labels, self.k, z,
                             self.sky, self.seed, self.anchor, self.night_share, self.night_fill)
        else:
            out = self.model.decode(self.cache, windows, self.ref_labels, z, image=photos)
        return out.clamp(0, 1)


def view_note(local) -> str:
    """The summary's words on the local transfer (model/local.py) of a prepared photo."""
    if local is None:
        return ""
    if local.trust == 0:
        return "another view than the reference's: colours change class by class"
    mirrored = ", mirrored" if local.mirrored else ""
    return f"the reference's own view{mirrored}: each place changes as it does there (trust {local.trust:.2f})"


def lamps_note(cache) -> str:
    """The summary's words on the night's lamps (model/night.py) of a prepared photo."""
    if cache.sites is None or not cache.night_share:  # a reference without lit nights: nothing to say
        return ""
    sites = cache.sites
    on = min(len(sites.index), round(cache.night_share * sites.cells))
    windows = 0 if sites.window_cells is None else int(sites.window_cells.flatten()[sites.index[:on]].sum())
    lit_windows = f", {windows} of them lit windows" if windows else ""
    return (f"at full night {on} lamps ({cache.night_share:.0%} of the light cells, as in the reference's "
            f"darkest frame{lit_windows})")


class Still(Method):
    name = "still"

    def prepare(self, image, img_labels, ref_labels, k, sky=None, scan=None):
        self.image = image

    def generate(self, windows, first, photos=None):
        return photos if photos is not None else self.image.expand(windows.shape[0], -1, -1, -1)


class Reinhard(Method):
    """Mean/std colour transfer in Lab from the current reference frame F_t.

    Per class this is classwise AdaIN on Lab pixels, the model's `lab_transfer` (a class
    the reference lacks, or pixels of no class, take the global statistics).
    """

    def __init__(self, per_class: bool) -> None:
        self.per_class = per_class
        self.name = "reinhard-class" if per_class else "reinhard"

    def prepare(self, image, img_labels, ref_labels, k, sky=None, scan=None):
        if not self.per_class:  # one region covering each map (a soft matte's hard ids give its shape)
            ids = img_labels.ids if isinstance(img_labels, SoftLabels) else img_labels
            img_labels, ref_labels, k = torch.zeros_like(ids), torch.zeros_like(ref_labels), 1
        self.lab = rgb_to_lab(image)
        self.regions = Regions(img_labels, k, tuple(img_labels.shape))
        self.style_regions = Regions(ref_labels, k, tuple(ref_labels.shape))
        self.stats = class_stats(self.lab, self.regions, LAB_EPS)  # the photo's: once, not per frame

    def generate(self, windows, first, photos=None):
        frame = windows[:, 6:9]  # F_t, the newest frame of each window: (B, 3, h, w)
        # A moved sky keeps the photo's statistics: only its texture has shifted.
        lab = self.lab if photos is None else rgb_to_lab(photos)
        return lab_transfer(lab, self.regions, frame, self.style_regions, self.stats)


METHODS = {
    "timeflies": "the learned generator (default)",
    "still": "the photo unchanged (baseline)",
    "reinhard": "per-frame mean/std colour transfer in Lab, whole image (baseline)",
    "reinhard-class": "the same per semantic class (baseline)",
}


def make_method(name: str, model: Callable[[], Generator], seed: int = 0, naive: bool = False) -> Method:
    """The method called `name`; `model` is called (to load the weights) only if it needs them."""
    if name == "timeflies":
        return Timeflies(model(), seed, naive)
    if name == "still":
        return Still()
    if name in ("reinhard", "reinhard-class"):
        return Reinhard(per_class=name == "reinhard-class")
    raise TimefliesError(f"unknown method '{name}'; use one of: {', '.join(METHODS)}")
