"""Atomic file output: write under a temporary name beside the target, rename when done.

A crash, an error or Ctrl-C never leaves a partial file under the final name.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to `final`; on success rename it to `final`.

    The temporary name keeps the suffix of `final` so that tools that pick a format by
    extension (FFmpeg muxers, Pillow) still work. With `directory=True` a temporary
    directory is created and swapped in for `final` (an existing one is replaced).
    On any exception the temporary file or directory is removed and the error re-raised.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    if directory:
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".part", dir=final.parent))
    else:
        fd, name = tempfile.mkstemp(prefix=f".{final.stem}.", suffix=f".part{final.suffix}",
                                    dir=final.parent)
        os.close(fd)
        tmp = Path(name)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual mode
    try:
        yield tmp
    except BaseException:
        _remove(tmp)
        raise
    if directory and final.exists():
        old = final.with_name(f".{final.name}.old")
        _remove(old)
        final.rename(old)
        tmp.rename(final)
        _remove(old)
    else:
        os.replace(tmp, final)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
