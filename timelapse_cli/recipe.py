"""Training recipes as data: named settings for `timeflies train`, and the data split of
the shipped weights.

A recipe fills every TrainOptions field the command line leaves unset. "fast" is the
default (it runs on a laptop CPU: under a second per step, about 1 GB); "paper" is the
paper's set-up (256x256, clips of 64 frames, the full-width model, the six losses), which
needs a GPU. The shipped weights were made by `make weights`, i.e. the "fast" recipe on
../shared/data/timelapse without the test and validation sequences below.
"""
from __future__ import annotations

from .errors import TimefliesError
from .losses import LossWeights

RECIPES: dict[str, dict] = {
    # TrainOptions' own defaults: 128 px long side, clips of 8 frames, the photo the mean
    # of the whole sequence, width 0.25, the affine head (smoothed over 8 px) on the
    # classwise Lab transfer, the clip's squared error in dB (-PSNR) alone, learning
    # rates 1e-5.
    "fast": {},
    "paper": dict(size=(256, 256), clip=64, width=1.0, output="rgb", affine_smooth=1, photo="clip",
                  lr_g=1e-4, lr_v=1e-4, weights=LossWeights()),
}
DEFAULT_RECIPE = "fast"

# The split of ../shared/data/timelapse behind the shipped weights. Test sequences are
# never trained on and never used to choose a checkpoint or a setting; validation
# sequences choose the checkpoint (and settings) and are not trained on either. Training
# uses every other sequence, including the AMOS webcams not named here.
#
# The AMOS webcams (amos-*: day, dusk and night frames, each labelled in timestamps.txt)
# are split by camera (issue 18): three with lights and dark nights in test, two in
# validation, the rest in training. The shipped weights predate them (none was trained on).
TEST_SEQUENCES_2025 = (
    "pyramid-webcam",        # 25 hours: day, dusk, night with city lights, dawn
    "tilde-frankfurt",       # city: day, dusk, night lights, seasons
    "suburb-sunset-night",   # sunset, night, sunrise
    "cypress-webcam",        # fog, snow, floodlit night
    "sky-clip-05", "sky-clip-17", "sky-clip-29", "sky-clip-41",  # sky clips
)
"""The test split before the AMOS webcams: figures are still reported on it, e.g.
`benchmark --eval ../shared/data/timelapse --split test-2025` (or `--sequences` with
these names)."""
TEST_AMOS = (
    "amos-monumento", "amos-river-town", "amos-sea-town",  # webcams with lights and dark nights
)
TEST_SEQUENCES = TEST_SEQUENCES_2025 + TEST_AMOS
VALIDATION_SEQUENCES = (
    "tilde-mexico", "arizona-gradient",
    "sky-clip-11", "sky-clip-23", "sky-clip-35", "sky-clip-47",
    "amos-tower-rooftops", "amos-old-town-fog",  # AMOS webcams with lights
)
SPLITS = {"test": TEST_SEQUENCES, "validation": VALIDATION_SEQUENCES, "test-2025": TEST_SEQUENCES_2025}


def recipe(name: str) -> dict:
    """The settings of recipe `name` (a copy)."""
    if name not in RECIPES:
        raise TimefliesError(f"unknown recipe '{name}'; use one of: {', '.join(RECIPES)}")
    return dict(RECIPES[name])


def split_patterns(split: str) -> str:
    """The sequence names of split "test", "validation" or "test-2025" (the test split
    before the AMOS webcams), comma-separated."""
    if split not in SPLITS:
        raise TimefliesError(f"unknown split '{split}'; use {', '.join(SPLITS)}")
    return ",".join(SPLITS[split])
