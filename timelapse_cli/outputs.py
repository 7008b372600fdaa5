"""Outputs never destroy a user's files.

Writing atomically (fsutil.atomic_path) protects against half-written files; it does not
protect against writing over the wrong thing. Every command that writes checks its
outputs here first, before reading any input or computing anything:

- an output that is, contains or lies inside one of the command's inputs is refused,
  with or without --overwrite (paths are compared resolved, so `./a/../a/` and symlinks
  do not get around it); so are two outputs of one command on the same path;
- an output's suffix must match what is written (no PNG bytes under a .jpg name);
- an existing output is replaced only with --overwrite;
- a folder of frames only ever replaces frames it wrote itself, which it recognises by
  the manifest (MANIFEST) it keeps beside them; a user's file that merely looks like a
  frame survives (a frame that would land on one is refused when the frames are moved
  in, the one check made after the run, still before anything is touched);
- a training run folder works the same way with a manifest of its own (runfolder.py).

Each refusal is one TimefliesError line naming the paths; the CLI turns it into exit 2.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Iterator, Mapping

from .errors import TimefliesError
from .fsutil import atomic_path, current_umask, disk_full_error, is_disk_full, remove_path, unwritable_error

PathLike = str | os.PathLike
OVERWRITE_HINT = "pass --overwrite (-y) to replace it"
# The frame files a frame folder output writes (VideoWriter: 00000.png, 00001.png, ...),
# and the hidden manifest listing those of the last run (hidden: frame readers skip it).
FRAME_NAME = re.compile(r"\d{5,}\.png")
MANIFEST = ".timeflies-frames.json"


# ---------------------------------------------------------------- the check


def check_outputs(outputs: Mapping[str, PathLike | None], inputs: Mapping[str, PathLike | None]) -> None:
    """Refuse any output that is, contains or lies inside an input, or meets another output.

    `outputs` and `inputs` map how the user named a path ("-o", "--preview", "photo",
    "--data") to the path; None entries (options not given) are skipped. Containment is
    checked both ways on resolved real paths: an output folder inside the reference
    folder would be read as frames, one that holds an input would be swept away with it.
    """
    outs = [(name, path) for name, path in outputs.items() if path is not None]
    ins = [(name, path) for name, path in inputs.items() if path is not None]
    for i, (out_name, out) in enumerate(outs):
        for in_name, path in ins:
            how = _overlap(out, path)
            if how:
                raise TimefliesError(f"{out_name} '{out}' {how} the {in_name} '{path}'; an output must not "
                                     "touch an input: choose another path")
        for other_name, other in outs[i + 1:]:
            how = _overlap(out, other)
            if how:
                how = "is the same path as" if how == "is" else how
                raise TimefliesError(f"{out_name} '{out}' {how} {other_name} '{other}'; give the outputs "
                                     "separate paths")


def check_file(option: str, path: PathLike, suffixes: tuple[str, ...], overwrite: bool) -> None:
    """One output file: its suffix is one of `suffixes`, it is not a folder, and if it exists
    it is replaced only with `overwrite`."""
    path = Path(path)
    if path.suffix.lower() not in suffixes:
        raise TimefliesError(f"{option} '{path}' must end in {' or '.join(suffixes)} (the format written)")
    if path.is_dir():
        raise TimefliesError(f"{option} '{path}' is a folder; give a file path")
    if os.path.lexists(path) and not overwrite:
        raise TimefliesError(f"{option} '{path}' already exists; {OVERWRITE_HINT}")


def check_frame_folder(option: str, path: PathLike, overwrite: bool) -> None:
    """A folder of frames: a new or empty folder is fine; one that holds anything needs
    `overwrite`. Even then frame_folder replaces only frames it wrote there, and refuses
    (before touching anything) if a frame it writes would replace a file of the user's."""
    path = Path(path)
    if os.path.lexists(path) and not path.is_dir():
        raise TimefliesError(f"{option} '{path}' is a file; give a folder path for PNG frames")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise TimefliesError(f"{option} folder '{path}' is not empty; pass --overwrite (-y) to write the frames "
                             "into it (only frames timeflies wrote there are replaced)")


# ---------------------------------------------------------------- frame folders


@contextlib.contextmanager
def frame_folder(final: PathLike) -> Iterator[Path]:
    """Yield a temporary folder for frames (FRAME_NAME files); on success move them into `final`.

    A new `final` is the temporary folder renamed, manifest included. Into an existing
    folder the frames are moved one by one (each os.replace is atomic), replacing only
    frames the folder's manifest lists; listed frames this run did not write (a longer
    earlier run's) are removed. Nothing else in the folder is touched. The manifest lists
    the union while frames move, so an interruption leaves every written frame listed.
    On an exception the temporary folder is removed and `final` is untouched.
    """
    final = Path(final)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".part", dir=final.parent))
        os.chmod(tmp, 0o777 & ~current_umask())  # mkdtemp makes 0700; a new folder gets the usual mode
    except OSError as e:
        raise unwritable_error(final, e) from None
    try:
        yield tmp
        new = sorted(p.name for p in tmp.iterdir() if FRAME_NAME.fullmatch(p.name))
        if not final.exists():
            _write_manifest(tmp, new)
            tmp.rename(final)
        else:
            _merge(tmp, final, new)
    except OSError as e:
        if is_disk_full(e):
            raise disk_full_error(final, e) from None
        raise
    finally:
        remove_path(tmp)


def _merge(tmp: Path, final: Path, new: list[str]) -> None:
    old = _listed(final)
    _refuse_foreign(final, new)
    _write_manifest(final, sorted(set(old) | set(new)))
    for name in new:
        os.replace(tmp / name, final / name)
    for name in set(old) - set(new):
        remove_path(final / name)  # a stale frame of a longer earlier run
    _write_manifest(final, new)


def _refuse_foreign(folder: Path, names: list[str]) -> None:
    """Refuse if any of `names` exists in `folder` without the manifest listing it."""
    listed = set(_listed(folder))
    foreign = [n for n in names if os.path.lexists(folder / n) and n not in listed]
    if foreign:
        raise TimefliesError(f"'{folder / foreign[0]}' was not written by timeflies (not in {MANIFEST}) and "
                             "would be replaced; move it away or choose another folder")


def _listed(folder: Path) -> list[str]:
    """The frames the manifest in `folder` lists; only plain frame names, so that a damaged
    or hand-edited manifest can never point outside the folder or at another file."""
    try:
        names = json.loads((folder / MANIFEST).read_text()).get("frames", [])
    except (OSError, ValueError, AttributeError):
        return []
    return [n for n in names if isinstance(n, str) and FRAME_NAME.fullmatch(n)]


def _write_manifest(folder: Path, names: list[str]) -> None:
    with atomic_path(folder / MANIFEST) as tmp:
        tmp.write_text(json.dumps({"written_by": "timeflies", "frames": names}) + "\n")


# ---------------------------------------------------------------- paths


def _overlap(a: PathLike, b: PathLike) -> str | None:
    """How path `a` meets path `b`, resolved: "is", "lies inside", "contains", or None."""
    ra, rb = os.path.realpath(a), os.path.realpath(b)
    if ra == rb or (os.path.exists(ra) and os.path.exists(rb) and os.path.samefile(ra, rb)):
        return "is"  # samefile also catches one file under two spellings (case-insensitive disks)
    if _inside(ra, rb):
        return "lies inside"
    if _inside(rb, ra):
        return "contains"
    return None


def _inside(child: str, parent: str) -> bool:
    return os.path.commonpath([child, parent]) == parent
