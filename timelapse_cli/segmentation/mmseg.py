"""ADE20K segmentation with an mmsegmentation model (SegFormer-B0 by default).

mmseg is imported lazily, inside functions: the rest of the package works without it.
The model is built from an mmseg config with no weights, then the user's checkpoint is
loaded with `torch.load(weights_only=True)`, so a checkpoint file can never run code.

Ids are ADE20K's: 1..150 (mmseg predicts 0..149; we add 1), see ade20k.py.
"""
from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import re
import warnings
from pathlib import Path

import numpy as np

from ..errors import TimefliesError, WeightsError
from ..images import fit_size, resize_image
from ..labels import fit_label_map
from . import zoo
from .ade20k import ADE20K_CLASSES
from .base import Segmenter, register

DEFAULT_CONFIG = "segformer_mit-b0_8xb2-160k_ade20k-512x512"
CHECKPOINT_ENV = "TIMEFLIES_MMSEG_CHECKPOINT"

_NOT_INSTALLED = ("mmsegmentation is not installed; run `make install` (or `make install-mmseg`), "
                  "or use --segmenter builtin")


def mmseg_available() -> bool:
    """True if mmseg and its dependencies are installed (found, not imported: this is cheap)."""
    return all(importlib.util.find_spec(name) is not None for name in ("mmseg", "mmcv", "mmengine"))


def checkpoint_from_env() -> str | None:
    """The checkpoint path configured once in $TIMEFLIES_MMSEG_CHECKPOINT, or None."""
    return os.environ.get(CHECKPOINT_ENV) or None


def configs_dir() -> Path | None:
    """Where the installed mmseg keeps its bundled configs (mmseg/.mim/configs), or None."""
    spec = importlib.util.find_spec("mmseg")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0]) / ".mim" / "configs"
    return folder if folder.is_dir() else None


def find_config(name_or_path: str | os.PathLike) -> Path:
    """A .py config file: the path itself if it exists, else a bundled config of that name.

    Names are looked up as mmseg/.mim/configs/**/<name>.py (".py" optional).
    """
    path = Path(name_or_path)
    if path.suffix == ".py" and path.is_file():
        return path
    folder = configs_dir()
    if folder is not None and path.name:
        name = str(path) if path.suffix == ".py" else f"{path}.py"
        found = [folder / name] if (folder / name).is_file() else sorted(folder.glob(f"*/{name}"))
        if found:
            return found[0]
    if folder is None:
        raise TimefliesError(f"mmseg config '{name_or_path}' is not a file and {_NOT_INSTALLED}")
    raise TimefliesError(f"mmseg config '{name_or_path}' is neither a .py file nor a config bundled in "
                         f"{folder}; give a config path or a name like {DEFAULT_CONFIG}")


def zoo_checkpoint_name(config: Path) -> str | None:
    """File name of the model-zoo checkpoint for a bundled config, from its metafile.yaml.

    Read as text (the "Weights:" line of the "- Name: <stem>" entry) so no YAML parser is
    needed; None if the config has no metafile entry.
    """
    metafile = config.parent / "metafile.yaml"
    if not metafile.is_file():
        return None
    entries = re.split(r"^- Name:\s*", metafile.read_text(encoding="utf-8"), flags=re.MULTILINE)
    for entry in entries[1:]:
        if entry.split("\n", 1)[0].strip() == config.stem:
            weights = re.search(r"^\s*Weights:\s*(\S+)", entry, flags=re.MULTILINE)
            return weights.group(1).rsplit("/", 1)[-1] if weights else None
    return None


def _missing_checkpoint_error(config: Path) -> WeightsError:
    known = zoo.for_config(config)
    if known:
        return WeightsError(f"no ADE20K checkpoint for {config.stem} is cached; run `timeflies models fetch "
                            f"{known.name}` (about {known.megabytes} MB, once), or give --checkpoint FILE")
    name = zoo_checkpoint_name(config)
    what = f"{name} (the {config.stem} checkpoint)" if name else f"the checkpoint for {config.stem}"
    return WeightsError(f"no ADE20K checkpoint configured; download {what} from the mmsegmentation "
                        f"model zoo and pass --checkpoint FILE (or set {CHECKPOINT_ENV}=FILE), "
                        "or use --segmenter builtin")


def pick_checkpoint(config: str | None, checkpoint: str | None) -> tuple[Path, Path]:
    """(config file, checkpoint file) from the options, the environment and the cache.

    `checkpoint` may be a file or a name from the zoo table (then it must be cached); without
    one, $TIMEFLIES_MMSEG_CHECKPOINT, else the first cached zoo checkpoint (for `config` when
    given). A zoo checkpoint brings its own config unless one is given.
    """
    checkpoint = checkpoint or checkpoint_from_env()
    if checkpoint:
        entry = zoo.named(checkpoint) if not Path(checkpoint).is_file() else zoo.for_file(checkpoint)
        path = Path(checkpoint)
        if entry and not path.is_file():
            path = zoo.cached_path(entry)
            if path is None:
                raise WeightsError(f"{entry.name} is not cached; run `timeflies models fetch {entry.name}` "
                                   f"(about {entry.megabytes} MB, once)")
        elif not path.is_file():
            raise WeightsError(f"checkpoint '{checkpoint}' not found; check the path given to "
                               f"--checkpoint (or {CHECKPOINT_ENV}), or give a name from `timeflies models list`")
    else:
        entry = zoo.find_cached(config)
        if entry is None:
            raise _missing_checkpoint_error(find_config(config or DEFAULT_CONFIG))
        path = zoo.cached_path(entry)
    return find_config(config or (entry.config if entry else DEFAULT_CONFIG)), path


@register("mmseg")
class MMSegSegmenter(Segmenter):
    """An mmseg ADE20K model; the model is built once and kept on the instance."""

    name = "mmseg"
    id_space = "ade20k"

    def __init__(self, config: str | None = None, checkpoint: str | None = None,
                 device: str = "auto", max_side: int = 1024) -> None:
        if not mmseg_available():
            raise TimefliesError(_NOT_INSTALLED)
        if max_side < 32:
            raise TimefliesError(f"max_side must be at least 32 pixels, got {max_side}")
        self.config, self.checkpoint = pick_checkpoint(config, checkpoint)
        self.device = resolve_device(device)
        self.max_side = max_side
        state_dict = load_state_dict(self.checkpoint)
        self.model = build_model(self.config, self.device)
        load_into(self.model, state_dict, self.checkpoint, self.config)

    @property
    def description(self) -> str:
        entry = zoo.for_file(self.checkpoint)
        model = entry.title if entry and entry.config == self.config.stem else \
            f"{self.config.stem} with {self.checkpoint.name}"
        return f"mmseg segmenter, {model} (ADE20K classes)"

    def segment_image(self, rgb: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 RGB -> (H, W) int64 ADE20K ids 1..150.

        The photo is downscaled so its long side is at most `max_side`; mmseg resizes that to
        the config's test scale (short side 512), runs sliding 512x512 windows, and resizes the
        (150, h, w) logits back to the downscaled size only. The label map (never the logits)
        is then upsampled to (H, W) by nearest neighbour. So memory is bounded by `max_side`
        (logits: 150 x 4 bytes x the downscaled area, ~0.5 GB at 1024x768), not by the photo.
        """
        from mmseg.apis import inference_model

        rgb = np.asarray(rgb)
        if rgb.ndim != 3 or rgb.shape[2] < 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected (H, W, 3) uint8 RGB, got {rgb.shape} {rgb.dtype}")
        h, w = rgb.shape[:2]
        small = _fit_long_side(rgb[:, :, :3], self.max_side)
        bgr = np.ascontiguousarray(small[:, :, ::-1])  # mmcv convention: BGR input
        try:
            with _quiet():
                result = inference_model(self.model, bgr)
        except Exception as exc:
            raise _missing_ops_error(exc, self.config) or exc
        ids = result.pred_sem_seg.data[0].cpu().numpy().astype(np.int64) + 1  # 0..149 -> 1..150
        del result  # drops the (150, h, w) logits before upsampling
        if ids.shape != (h, w):
            ids = fit_label_map(ids, (w, h), "segmentation", "photo")
        return ids


def resolve_device(device: str) -> str:
    """"auto" -> "cuda" if available else "cpu" (the project's one rule, as a string for mmseg)."""
    from ..runtime import resolve_device as resolve

    return str(resolve(device))


def build_model(config: Path, device: str):
    """The config's segmentor with random weights, in eval mode, set up for bounded memory.

    Raises TimefliesError if mmseg cannot be imported or the model is not an ADE20K one.
    """
    try:
        with _quiet():
            from mmengine import Config
            from mmseg.apis import init_model
            import mmseg.datasets  # noqa: F401  (registers transforms; prints a debug line once)
    except ImportError as exc:
        raise TimefliesError(f"{_NOT_INSTALLED} ({exc})") from exc

    try:
        cfg = Config.fromfile(str(config))
    except Exception as exc:  # a user's .py config can fail in any way
        raise TimefliesError(f"mmseg config '{config}' cannot be read ({_first_line(exc)}); "
                             "give an mmsegmentation config file") from exc
    # Slide 512 windows (or the config's crop size) with 1/3 overlap: memory per window is
    # fixed, whatever the resized image's size. init_model already drops the backbone's
    # pretrained init_cfg, so building never downloads anything.
    crop = tuple(cfg.get("crop_size", (512, 512)))
    cfg.model.test_cfg = dict(mode="slide", crop_size=crop, stride=tuple(c * 2 // 3 for c in crop))
    try:
        with _quiet():
            model = init_model(cfg, None, device)
    except Exception as exc:
        raise _missing_ops_error(exc, config) or exc
    classes = getattr(model.decode_head, "num_classes", None)
    if classes != len(ADE20K_CLASSES):
        raise TimefliesError(f"mmseg config '{config.name}' predicts {classes} classes, not ADE20K's "
                             f"{len(ADE20K_CLASSES)}; give an ADE20K config (e.g. {DEFAULT_CONFIG})")
    from mmseg.datasets import ADE20KDataset

    model.dataset_meta = {"classes": ADE20K_CLASSES, "palette": ADE20KDataset.METAINFO["palette"]}
    return model


# ---------------------------------------------------------------- checkpoints


class _Opaque:
    """Inert stand-in for a pickled object weights-only loading refuses (e.g. numpy arrays or
    mmengine's HistoryBuffer in a training checkpoint's meta/message_hub). It ignores its
    arguments and state, so nothing from the checkpoint is ever called."""

    def __new__(cls, *args, **kwargs):
        return object.__new__(cls)

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        pass


def read_checkpoint(path: Path):
    """torch.load(weights_only=True) of `path`, tolerating non-tensor extras safely.

    mmengine training checkpoints also pickle numpy values and logging objects next to the
    weights; weights_only refuses those. We then list the refused globals (statically, without
    unpickling) and load again with each one mapped to `_Opaque`, which never runs any code
    from the file. We never fall back to weights_only=False. WeightsError if unreadable.
    """
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling errors come as many types (UnpicklingError, KeyError, ...)
        first = exc
    try:
        refused = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:
        refused = []  # not a torch.save zip file
    if not refused:
        why = _first_line(first) if _looks_like_torch_save(path) else "not a torch.save file"
        raise WeightsError(f"checkpoint '{path}' is not a readable PyTorch checkpoint ({why}); "
                           "give an mmsegmentation .pth file") from first
    try:
        with torch.serialization.safe_globals([(_Opaque, name) for name in refused]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsError(
            f"checkpoint '{path}' holds pickled objects that cannot be loaded safely "
            f"({', '.join(sorted(refused))}); from a copy you trust, re-save just the weights: "
            "torch.save({'state_dict': torch.load(FILE, weights_only=False)['state_dict']}, 'weights.pth')"
        ) from exc


def load_state_dict(path: Path) -> dict:
    """The checkpoint's state dict {name: tensor}; WeightsError if it is not an mmseg checkpoint.

    mmengine checkpoints are {"state_dict": ..., "meta": ...}; like mmengine we also accept a
    bare state dict (all values tensors) and strip DataParallel's "module." prefix.
    """
    import torch

    ckpt = read_checkpoint(path)
    if not isinstance(ckpt, dict):
        raise WeightsError(f"checkpoint '{path}' holds a {type(ckpt).__name__}, not an mmsegmentation "
                           "checkpoint (a dict with 'state_dict'); give an mmsegmentation .pth file")
    if "state_dict" in ckpt:
        state = ckpt["state_dict"]
    elif ckpt and all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        state = ckpt
    else:
        keys = ", ".join(sorted(map(str, ckpt))[:5]) or "nothing"
        raise WeightsError(f"checkpoint '{path}' has no 'state_dict' (it holds {keys}); "
                           "give an mmsegmentation .pth file")
    if not isinstance(state, dict) or not state:
        raise WeightsError(f"checkpoint '{path}' has an empty or malformed 'state_dict'; "
                           "give an mmsegmentation .pth file")
    bad = [str(k) for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise WeightsError(f"checkpoint '{path}' state_dict holds non-tensor values ({bad[0]}, ...); "
                           "give an mmsegmentation .pth file")
    return {re.sub(r"^module\.", "", str(k)): v for k, v in state.items()}


def load_into(model, state: dict, path: Path, config: Path) -> None:
    """Load `state` strictly into `model`; WeightsError naming the mismatch if it does not fit."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or unexpected or shapes:
        problems = []
        if missing:
            problems.append(f"{len(missing)} missing keys (e.g. {missing[0]})")
        if unexpected:
            problems.append(f"{len(unexpected)} unexpected keys (e.g. {unexpected[0]})")
        if shapes:
            k = shapes[0]
            problems.append(f"{len(shapes)} shape mismatches (e.g. {k}: {tuple(state[k].shape)} "
                            f"vs {tuple(expected[k].shape)})")
        raise WeightsError(f"checkpoint '{path}' does not match config {config.stem}: "
                           f"{'; '.join(problems)}; give the checkpoint trained with this config "
                           "(or the matching --config)")
    model.load_state_dict(state, strict=True)


# ---------------------------------------------------------------- helpers


def _fit_long_side(rgb: np.ndarray, max_side: int) -> np.ndarray:
    """(H, W, 3) uint8 -> the same, downscaled (aspect kept) so max(H, W) <= max_side."""
    size = fit_size(rgb.shape[1], rgb.shape[0], None, max_side)
    return rgb if size == (rgb.shape[1], rgb.shape[0]) else resize_image(rgb, size)


@contextlib.contextmanager
def _quiet():
    """Silence mmseg's import-time print ("Could not import OneDL") and its build warnings:
    the library never prints."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def _missing_ops_error(exc: Exception, config: Path) -> TimefliesError | None:
    """A one-line error if `exc` says mmcv's compiled ops are missing, else None.

    `make install` leaves the ops out (the default SegFormer needs none); mmseg then refuses
    heads that need one ("Please install onedl-mmcv for CrissCrossAttention ops") and mmcv
    fails to import its extension module ("No module named 'mmcv._ext'").
    """
    text = str(exc)
    op = re.search(r"for (\w+) ops", text)
    if not (op or "mmcv._ext" in text):
        return None
    what = f"the {op.group(1)} op" if op else "an op"
    return TimefliesError(f"mmseg config '{config.stem}' needs {what} of mmcv's compiled ops, which "
                          f"`make install` leaves out; run `make install-mmseg-ops` (about 15 minutes) "
                          f"or use the default config {DEFAULT_CONFIG}")


def _looks_like_torch_save(path: Path) -> bool:
    """True if the file starts like torch.save output: a zip archive or a (legacy) pickle."""
    with open(path, "rb") as f:
        head = f.read(4)
    return head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"


def _first_line(exc: BaseException) -> str:
    """A short one-line description of an exception, for error messages."""
    text = str(exc).strip()
    # torch's weights-only errors bury the cause after "WeightsUnpickler error:"
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1].strip()
    line = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: {line}"[:160].rstrip(": ")
