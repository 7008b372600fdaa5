"""A training run's folder (`train --out RUN`) only ever loses what timeflies wrote there.

The run keeps a manifest (MANIFEST, hidden) of every file it wrote: run.json, log.jsonl,
checkpoint/, best/, labels/. Everything else in the folder is the user's and survives
--overwrite (which removes only the listed files), --resume, and every checkpoint swap
(a user's file inside checkpoint/ is carried into the new checkpoint before it is
swapped in). A folder from before manifests is recognised by RUN_MARKERS, and then the
files at the names a run writes (RUN_LAYOUT) count as its own.

Writes are atomic (a temporary name renamed when complete), a log line is appended
whole or not at all, and a full disk becomes one TimefliesError line with nothing
partial left behind; the last complete checkpoint stays.
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
from .fsutil import atomic_path, disk_full_error, is_disk_full, remove_path, unwritable_error
from .outputs import PathLike, check_outputs

MANIFEST = ".timeflies-run.json"
# Any of these marks an earlier run (labels/ is only a cache, written before run.json).
RUN_MARKERS = ("run.json", "log.jsonl", "checkpoint", "best")
# The files a run writes, relative to its folder (a run from before manifests owns these).
RUN_LAYOUT = re.compile(r"run\.json|log\.jsonl|checkpoint/state\.pt|best/val\.json|labels/[^/]+\.png"
                        r"|(checkpoint/generator|best)/(config\.json|generator\.safetensors|SHA256SUMS)")


class RunFolder:
    """The run folder `out` and the files timeflies wrote there (`files`, relative paths)."""

    def __init__(self, out: PathLike, files: set[str]) -> None:
        self.out, self.files = Path(out), set(files)

    @classmethod
    def prepare(cls, out: PathLike, inputs: Mapping[str, PathLike | None], resume: bool,
                overwrite: bool) -> "RunFolder":
        """Check `out` before anything is written: it must not meet an input; an earlier run
        is continued (`resume`) or, with `overwrite`, loses its own files; a folder holding
        anything else is used only with `overwrite` (and then keeps those files)."""
        out = Path(out)
        check_outputs({"--out": out}, inputs)
        if resume and overwrite:
            raise TimefliesError("give --resume (continue the run) or --overwrite (replace it), not both")
        if os.path.lexists(out) and not out.is_dir():
            raise TimefliesError(f"--out '{out}' is a file; give a folder path for the run")
        run = cls(out, _own_files(out))
        earlier = any(os.path.lexists(out / m) for m in RUN_MARKERS)
        if resume:
            if not (out / "checkpoint" / "state.pt").is_file():  # before anything (labels) is written
                raise TimefliesError(f"nothing to resume: '{out / 'checkpoint' / 'state.pt'}' not found; run "
                                     "without --resume")
            return run
        if earlier and not overwrite:
            raise TimefliesError(f"--out '{out}' holds an earlier run; pass --resume to continue it or "
                                 "--overwrite (-y) to replace it (only the run's own files)")
        own_tops = {MANIFEST} | {Path(f).parts[0] for f in run.files}  # e.g. a cache of label maps
        foreign = out.is_dir() and any(p.name not in own_tops for p in out.iterdir())
        if not earlier and foreign and not overwrite:
            raise TimefliesError(f"--out '{out}' is not empty and holds no timeflies run; pass --overwrite (-y) "
                                 "to write the run into it (your files are kept) or choose another folder")
        if overwrite:
            run.remove_own()
        return run

    # ------------------------------------------------------------ writing

    def record(self, *names: str) -> None:
        """List `names` (relative paths) as timeflies' own, before they are written."""
        if not set(names) <= self.files:
            self._save(self.files | set(names))

    @contextlib.contextmanager
    def file(self, name: str) -> Iterator[Path]:
        """A temporary path for the file `name`, renamed into place when the block ends."""
        self.record(name)
        with atomic_path(self.out / name) as tmp:
            yield tmp

    def append(self, name: str, text: str) -> None:
        """Append `text` to the file `name`, whole or not at all (a full disk cuts nothing in half)."""
        self.record(name)
        path = self.out / name
        size = path.stat().st_size if path.exists() else 0
        try:
            with open(path, "a") as f:
                f.write(text)
        except OSError as e:
            with contextlib.suppress(OSError):
                os.truncate(path, size)
            if is_disk_full(e):
                raise disk_full_error(path, e) from None
            raise

    @contextlib.contextmanager
    def folder(self, name: str) -> Iterator[Path]:
        """A temporary folder for `name` (checkpoint/, best/), swapped in as a whole when the
        block ends, with the user's files of the old folder carried into it."""
        try:
            tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".part", dir=self.out))
        except OSError as e:
            raise unwritable_error(self.out / name, e) from None
        try:
            yield tmp
            self._swap(tmp, name)
        except OSError as e:
            if is_disk_full(e):
                raise disk_full_error(self.out / name, e) from None
            raise
        finally:
            remove_path(tmp)

    def remove_own(self) -> None:
        """Remove every file timeflies wrote here and the folders that leaves empty."""
        for name in sorted(self.files, reverse=True):
            remove_path(self.out / name)
        for folder in sorted({p for name in self.files for p in Path(name).parents if p != Path(".")},
                             key=lambda p: -len(p.parts)):
            with contextlib.suppress(OSError):
                (self.out / folder).rmdir()  # only if empty: a user's file keeps it
        self.files = set()
        remove_path(self.out / MANIFEST)

    # ------------------------------------------------------------ inside

    def _swap(self, tmp: Path, name: str) -> None:
        final = self.out / name
        new = {f"{name}/{rel}" for rel in _entries(tmp)}
        theirs = [rel for rel in _entries(final) if f"{name}/{rel}" not in self.files] if final.is_dir() else []
        clash = [rel for rel in theirs if os.path.lexists(tmp / rel)]
        if clash:  # checked before anything moves
            raise TimefliesError(f"'{final / clash[0]}' was not written by timeflies and would be replaced; "
                                 "move it away or choose another --out")
        self._save(self.files | new)  # both listed while they swap: an interruption loses nothing
        for rel in theirs:
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            os.rename(final / rel, tmp / rel)
        if final.exists():
            old = self.out / f".{name}.old"
            remove_path(old)
            final.rename(old)
            tmp.rename(final)
            remove_path(old)
        else:
            tmp.rename(final)
        self._save({f for f in self.files if not f.startswith(f"{name}/")} | new)

    def _save(self, files: set[str]) -> None:
        self.files = set(files)
        self.out.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.out / MANIFEST) as tmp:
            tmp.write_text(json.dumps({"written_by": "timeflies", "files": sorted(self.files)}, indent=1) + "\n")


def _own_files(out: Path) -> set[str]:
    """What the manifest in `out` lists (only relative paths inside `out`); without a
    manifest, the run-layout files of a run from before manifests."""
    try:
        names = json.loads((out / MANIFEST).read_text()).get("files", [])
        return {n for n in names if isinstance(n, str) and _inside(n)}
    except FileNotFoundError:
        pass
    except (OSError, ValueError, AttributeError):
        return set()
    if not any(os.path.lexists(out / m) for m in RUN_MARKERS):
        return set()
    return {rel for rel in _entries(out) if RUN_LAYOUT.fullmatch(rel)}


def _inside(name: str) -> bool:
    """A damaged or hand-edited manifest can never point outside the folder."""
    p = Path(name)
    return not p.is_absolute() and ".." not in p.parts and name not in ("", ".", MANIFEST)


def _entries(root: Path) -> list[str]:
    """Relative paths of the files, links and empty folders under `root`."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath)
        links = [d for d in dirnames if (base / d).is_symlink()]  # never followed: moved as they are
        found += [(base / n).relative_to(root).as_posix() for n in (*filenames, *links)]
        if not dirnames and not filenames and base != root:
            found.append(base.relative_to(root).as_posix())
    return sorted(found)
