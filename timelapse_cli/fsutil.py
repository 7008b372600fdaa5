"""Atomic file output: write under a temporary name beside the target, rename when done.

A crash, an error, a full disk or Ctrl-C never leaves a partial file under the final name.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from .errors import TimefliesError


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to `final`; on success rename it to `final`.

    The temporary name keeps the suffix of `final` so that tools that pick a format by
    extension (FFmpeg muxers, Pillow) still work. With `directory=True` a temporary
    directory is created and swapped in for `final` (an existing one is replaced).
    On any exception the temporary file or directory is removed and the error re-raised.
    """
    final = Path(final)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        if directory:
            tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".part", dir=final.parent))
        else:
            fd, name = tempfile.mkstemp(prefix=f".{final.stem}.", suffix=f".part{final.suffix}",
                                        dir=final.parent)
            os.close(fd)
            tmp = Path(name)
            os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes 0600; give the usual mode
    except OSError as e:
        raise unwritable_error(final, e) from None
    try:
        yield tmp
    except BaseException as e:
        remove_path(tmp)
        if is_disk_full(e):
            raise disk_full_error(final, e) from None
        raise
    if directory and final.exists():
        old = final.with_name(f".{final.name}.old")
        remove_path(old)
        final.rename(old)
        tmp.rename(final)
        remove_path(old)
    else:
        os.replace(tmp, final)


def check_writable(final: str | os.PathLike, fix: str = "choose another path") -> None:
    """Fail now, with a one-line error ending in `fix`, if `final` could not be written later:
    its folder cannot be made or takes no new file (say, before a long run that ends by
    writing it)."""
    final = Path(final)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=final.parent):
            pass
    except OSError as e:
        raise unwritable_error(final, e, fix) from None
    if final.is_dir():
        raise TimefliesError(f"'{final}' is a folder; give a file path")


@contextlib.contextmanager
def removed_on_error() -> Iterator[list[Path]]:
    """Yield a list for the outputs a command has finished writing; if the block raises,
    they are removed, so that a failed command leaves none of its outputs behind (a video
    without the preview that was asked for is a failure, not half a success)."""
    written: list[Path] = []
    try:
        yield written
    except BaseException:
        for path in written:
            remove_path(Path(path))
        raise


# Errors that mean "no room": a full disk, a full quota, a file-size limit.
DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def is_disk_full(e: BaseException) -> bool:
    return isinstance(e, OSError) and e.errno in DISK_FULL


def disk_full_error(final: str | os.PathLike | None, e: OSError) -> TimefliesError:
    where = f" writing '{final}'" if final else ""
    return TimefliesError(f"no room on the disk{where} ({e.strerror}); nothing partial was kept: free some "
                          "space and run again")


def unwritable_error(final: Path, e: OSError, fix: str = "choose another path") -> TimefliesError:
    if isinstance(e, (FileExistsError, NotADirectoryError)):  # a file where a folder should be
        return TimefliesError(f"cannot write '{final}': a file stands where its folder should be; {fix}")
    return TimefliesError(f"cannot write '{final}' ({e.strerror or e}); {fix}")


def sha256(path: str | os.PathLike) -> str:
    """The hex SHA-256 of a file's bytes, read in 1 MB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def remove_path(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
