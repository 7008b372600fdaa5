"""The 150 ADE20K classes and how they fold onto the 8 groups of labels.GROUP_NAMES.

Ids in the "ade20k" id space are 1..150 for ADE20K_CLASSES[0..149] and 0 for "other",
as in ADE20K's own annotation PNGs. mmsegmentation's models predict 0..149; the mmseg
segmenter adds 1. This module needs no mmseg.
"""
from __future__ import annotations

import numpy as np

from ..labels import GROUP_NAMES

# In mmsegmentation's order (mmseg.datasets.ADE20KDataset.METAINFO["classes"]), verbatim:
# mmseg spells "bed " with a trailing space, kept so the tuple compares equal to mmseg's.
ADE20K_CLASSES: tuple[str, ...] = (
    "wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed ", "windowpane",
    "grass", "cabinet", "sidewalk", "person", "earth", "door", "table", "mountain", "plant",
    "curtain", "chair", "car", "water", "painting", "sofa", "shelf", "house", "sea", "mirror",
    "rug", "field", "armchair", "seat", "fence", "desk", "rock", "wardrobe", "lamp", "bathtub",
    "railing", "cushion", "base", "box", "column", "signboard", "chest of drawers", "counter",
    "sand", "sink", "skyscraper", "fireplace", "refrigerator", "grandstand", "path", "stairs",
    "runway", "case", "pool table", "pillow", "screen door", "stairway", "river", "bridge",
    "bookcase", "blind", "coffee table", "toilet", "flower", "book", "hill", "bench",
    "countertop", "stove", "palm", "kitchen island", "computer", "swivel chair", "boat", "bar",
    "arcade machine", "hovel", "bus", "towel", "light", "truck", "tower", "chandelier",
    "awning", "streetlight", "booth", "television receiver", "airplane", "dirt track",
    "apparel", "pole", "land", "bannister", "escalator", "ottoman", "bottle", "buffet",
    "poster", "stage", "van", "ship", "fountain", "conveyer belt", "canopy", "washer",
    "plaything", "swimming pool", "stool", "barrel", "basket", "waterfall", "tent", "bag",
    "minibike", "cradle", "oven", "ball", "food", "step", "tank", "trade name", "microwave",
    "pot", "animal", "bicycle", "lake", "dishwasher", "screen", "blanket", "sculpture", "hood",
    "sconce", "vase", "traffic light", "tray", "ashcan", "fan", "pier", "crt screen", "plate",
    "monitor", "bulletin board", "shower", "radiator", "glass", "clock", "flag",
)

# Class name -> group name. Groups are what the animation treats alike, so the question for
# each class is "which kind of outdoor surface does it light and recolour like?". Objects
# (people, vehicles, furniture, signs) are "background".
ADE20K_TO_GROUP: dict[str, str] = {
    # --- building: built structures and their facades
    "building": "building", "house": "building", "skyscraper": "building", "tower": "building",
    "hovel": "building",
    "wall": "building",        # outdoors a wall is a facade or a garden/stone wall
    "windowpane": "building",  # facade parts: in a landscape they sit on buildings
    "door": "building",
    "column": "building",
    "awning": "building",
    "grandstand": "building",  # a large built stand, lit like a building
    # --- ground: natural or unpaved ground surfaces
    "floor": "ground",         # outdoors: terraces and plazas, flat ground surfaces
    "earth": "ground", "sand": "ground", "field": "ground", "land": "ground",
    "path": "ground", "dirt track": "ground",
    "grass": "ground",         # vegetation, but a flat ground cover, not a tree-like mass
    # --- mountain: hills and bare rock
    "mountain": "mountain", "hill": "mountain", "rock": "mountain",
    # --- road: paved, man-made walkable or drivable surfaces
    "road": "road", "sidewalk": "road", "runway": "road",
    "bridge": "road",          # its deck is a road; the surface is what the animation sees
    "pier": "road",            # a walkway over water
    "stairs": "road", "stairway": "road", "step": "road",  # paved steps outdoors
    # --- sky
    "sky": "sky",
    # --- tree: vegetation masses
    "tree": "tree", "plant": "tree", "palm": "tree", "flower": "tree",
    # --- water
    "water": "water", "sea": "water", "river": "water", "lake": "water",
    "waterfall": "water", "fountain": "water", "swimming pool": "water",
    # --- background: everything else (people, animals, vehicles, furniture, objects)
    "ceiling": "background", "bed ": "background", "cabinet": "background",
    "person": "background", "table": "background", "curtain": "background",
    "chair": "background", "car": "background", "painting": "background",
    "sofa": "background", "shelf": "background", "mirror": "background", "rug": "background",
    "armchair": "background", "seat": "background",
    "fence": "background",     # thin and see-through: mostly shows what is behind it
    "desk": "background", "wardrobe": "background", "lamp": "background",
    "bathtub": "background", "railing": "background", "cushion": "background",
    "base": "background", "box": "background", "signboard": "background",
    "chest of drawers": "background", "counter": "background", "sink": "background",
    "fireplace": "background", "refrigerator": "background", "case": "background",
    "pool table": "background",  # furniture, not a pool
    "pillow": "background", "screen door": "background", "bookcase": "background",
    "blind": "background", "coffee table": "background", "toilet": "background",
    "book": "background", "bench": "background", "countertop": "background",
    "stove": "background", "kitchen island": "background", "computer": "background",
    "swivel chair": "background", "boat": "background", "bar": "background",
    "arcade machine": "background", "bus": "background", "towel": "background",
    "light": "background", "truck": "background", "chandelier": "background",
    "streetlight": "background", "booth": "background",
    "television receiver": "background", "airplane": "background", "apparel": "background",
    "pole": "background", "bannister": "background", "escalator": "background",
    "ottoman": "background", "bottle": "background", "buffet": "background",
    "poster": "background", "stage": "background", "van": "background", "ship": "background",
    "conveyer belt": "background", "canopy": "background", "washer": "background",
    "plaything": "background", "stool": "background", "barrel": "background",
    "basket": "background", "tent": "background", "bag": "background",
    "minibike": "background", "cradle": "background", "oven": "background",
    "ball": "background", "food": "background", "tank": "background",
    "trade name": "background", "microwave": "background", "pot": "background",
    "animal": "background", "bicycle": "background", "dishwasher": "background",
    "screen": "background", "blanket": "background", "sculpture": "background",
    "hood": "background", "sconce": "background", "vase": "background",
    "traffic light": "background", "tray": "background", "ashcan": "background",
    "fan": "background", "crt screen": "background", "plate": "background",
    "monitor": "background", "bulletin board": "background", "shower": "background",
    "radiator": "background", "glass": "background", "clock": "background",
    "flag": "background",
}

# Lookup array: ADE20K id (0 = other, 1..150) -> group id (index into GROUP_NAMES).
_LOOKUP = np.array([GROUP_NAMES.index("background")]
                   + [GROUP_NAMES.index(ADE20K_TO_GROUP[name]) for name in ADE20K_CLASSES],
                   dtype=np.int64)


def to_groups(ids: np.ndarray) -> np.ndarray:
    """ADE20K ids of any shape (0..150, 0 = other) -> group ids 0..7, same shape, int64.

    ValueError for ids outside 0..150 (a caller bug: e.g. mmseg's 0..149 not shifted by 1
    would not be caught, but 255 "ignore" values or other id spaces would).
    """
    ids = np.asarray(ids)
    if ids.size and (ids.min() < 0 or ids.max() >= len(_LOOKUP)):
        raise ValueError(f"ADE20K ids must be in 0..{len(_LOOKUP) - 1}, "
                         f"got {ids.min()}..{ids.max()}")
    return _LOOKUP[ids.astype(np.int64, copy=False)]
