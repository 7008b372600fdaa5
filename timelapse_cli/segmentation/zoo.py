"""ADE20K checkpoints from the mmsegmentation model zoo: the table, and fetch, verify, cache.

    timeflies models fetch segformer-b0  ->  $TIMEFLIES_CACHE/checkpoints/<zoo file name>

Nothing is downloaded unless `fetch` is called; the segmenters only look in the cache
(`find_cached`). A download goes to `<file>.part` (resumed with an HTTP Range request
when it was cut off), is checked against the table's SHA-256 (the zoo's file names end in
the first 8 hex digits of their SHA-256, as mmsegmentation's publish_model.py names them)
and only then renamed to its final name: a file under that name is whole and verified.
"""
from __future__ import annotations

import contextlib
import http.client
import os
import socket
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

from ..errors import TimefliesError, WeightsError
from ..fsutil import check_writable, disk_full_error, is_disk_full, remove_path, sha256, unwritable_error

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no lock against a second fetch
    fcntl = None

CACHE_ENV = "TIMEFLIES_CACHE"
# The model zoo's hosts, tried in turn: OpenMMLab's own, then the one the onedl fork's
# metafiles (installed with onedl-mmsegmentation) point at. Both serve the same paths.
ZOO_HOSTS = ("https://download.openmmlab.com", "https://mmassets.onedl.ai")
TIMEOUT = 30          # seconds without an answer before a connection counts as failed
CHUNK = 1 << 16

Progress = Callable[[int, "int | None"], None]


@dataclass(frozen=True)
class ZooCheckpoint:
    name: str            # what `timeflies models fetch` takes
    title: str           # the model and its training crop
    config: str          # the mmseg config it was trained with (bundled with mmsegmentation)
    path: str            # on the zoo hosts; the file name ends in -<SHA-256 prefix>.pth
    sha256: str          # the full SHA-256 when pinned, else the prefix in the file name
    megabytes: int       # approximate download size (the weights in float32)
    miou: float          # ADE20K validation mIoU, single scale (mmsegmentation's metafile)

    @property
    def file(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    def urls(self) -> tuple[str, ...]:
        return tuple(f"{host}/{self.path}" for host in ZOO_HOSTS)


_ZOO = "mmsegmentation/v0.5/segformer"
CHECKPOINTS = (
    ZooCheckpoint("segformer-b0", "SegFormer-B0 512x512", "segformer_mit-b0_8xb2-160k_ade20k-512x512",
                  f"{_ZOO}/segformer_mit-b0_512x512_160k_ade20k/"
                  "segformer_mit-b0_512x512_160k_ade20k_20210726_101530-8ffa8fda.pth", "8ffa8fda", 15, 37.41),
    ZooCheckpoint("segformer-b2", "SegFormer-B2 512x512", "segformer_mit-b2_8xb2-160k_ade20k-512x512",
                  f"{_ZOO}/segformer_mit-b2_512x512_160k_ade20k/"
                  "segformer_mit-b2_512x512_160k_ade20k_20210726_112103-cbd414ac.pth", "cbd414ac", 99, 45.58),
    ZooCheckpoint("segformer-b5", "SegFormer-B5 640x640", "segformer_mit-b5_8xb2-160k_ade20k-640x640",
                  f"{_ZOO}/segformer_mit-b5_640x640_160k_ade20k/"
                  "segformer_mit-b5_640x640_160k_ade20k_20210801_121243-41d2845b.pth", "41d2845b", 328, 49.62),
)
DEFAULT = "segformer-b0"


@dataclass
class Fetched:
    checkpoint: ZooCheckpoint
    path: Path
    downloaded: int      # bytes transferred by this call (0: it was cached already)
    seconds: float
    resumed: int = 0     # bytes of an earlier, cut-off download that were kept


class _Unreachable(Exception):
    """No answer worth reading from one host (refused, unknown, HTTP error): try the next."""


class _Cut(Exception):
    """The transfer stopped midway."""


# ---------------------------------------------------------------- the cache


def cache_dir() -> Path:
    """$TIMEFLIES_CACHE, else $XDG_CACHE_HOME/timeflies, else ~/.cache/timeflies."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"  # the spec ignores a relative one
    return base / "timeflies"


def checkpoints_dir() -> Path:
    return cache_dir() / "checkpoints"


def get(name: str) -> ZooCheckpoint:
    for entry in CHECKPOINTS:
        if entry.name == name:
            return entry
    raise TimefliesError(f"unknown model '{name}'; choose one of {', '.join(e.name for e in CHECKPOINTS)} "
                         "(timeflies models list)")


def named(name: str) -> ZooCheckpoint | None:
    """The table's entry called `name`, or None."""
    return next((e for e in CHECKPOINTS if e.name == name), None)


def for_file(path: str | os.PathLike) -> ZooCheckpoint | None:
    """The table's entry whose zoo file name `path` has, or None."""
    return next((e for e in CHECKPOINTS if e.file == Path(path).name), None)


def for_config(config: str | os.PathLike) -> ZooCheckpoint | None:
    """The table's entry for an mmseg config (a name or a .py path), or None."""
    stem = Path(config).name.removesuffix(".py")
    return next((e for e in CHECKPOINTS if e.config == stem), None)


def cached_path(entry: ZooCheckpoint) -> Path | None:
    path = checkpoints_dir() / entry.file
    return path if path.is_file() else None


def partial_bytes(entry: ZooCheckpoint) -> int:
    """Bytes of a cut-off download of `entry` waiting to be resumed (0 if none)."""
    with contextlib.suppress(OSError):
        return _part_of(checkpoints_dir() / entry.file).stat().st_size
    return 0


def find_cached(config: str | os.PathLike | None = None) -> ZooCheckpoint | None:
    """The first cached entry in the table's order (for `config` only, when given), or None."""
    entries = CHECKPOINTS if config is None else filter(None, [for_config(config)])
    return next((e for e in entries if cached_path(e)), None)


def remove(name: str) -> list[Path]:
    """Delete `name`'s cached checkpoint and any cut-off download of it; the paths deleted."""
    final = checkpoints_dir() / get(name).file
    gone = [p for p in (final, _part_of(final)) if p.exists()]
    for path in gone:
        remove_path(path)
    return gone


# ---------------------------------------------------------------- fetch


def fetch(name: str, progress: Progress | None = None) -> Fetched:
    """Download `name` into the cache, verify its SHA-256, and return where it is.

    A cached file is returned as it is. A download cut off midway leaves `<file>.part`,
    which the next call resumes (or restarts if the server ignores the range). A file
    whose checksum does not match is deleted. TimefliesError (one line) on any failure.
    """
    entry = get(name)
    final = checkpoints_dir() / entry.file
    if final.is_file():
        return Fetched(entry, final, 0, 0.0)
    fix = f"set {CACHE_ENV} to a folder you can write"
    check_writable(final, fix)
    part = _part_of(final)
    start = time.perf_counter()
    with _locked(part, entry, fix) as f:
        if final.is_file():  # another fetch finished while this one waited
            remove_path(part)
            return Fetched(entry, final, 0, 0.0)
        try:
            received = _download_from_any(entry, f, progress)
            f.flush()
        except OSError as e:  # writing failed (the network's errors are caught where they happen)
            remove_path(part)
            if is_disk_full(e):
                raise disk_full_error(final, e) from None
            raise unwritable_error(part, e, fix) from None
        except BaseException:
            if not f.tell():  # nothing to resume from
                remove_path(part)
            raise
        digest = sha256(part)
        if not digest.startswith(entry.sha256.lower()):
            remove_path(part)
            raise WeightsError(f"the download of {entry.name} is not the model zoo's file: its SHA-256 starts "
                               f"{digest[:len(entry.sha256)]}, not {entry.sha256}; it was deleted unused; run "
                               f"`timeflies models fetch {entry.name}` again")
        os.replace(part, final)
    size = final.stat().st_size
    return Fetched(entry, final, received, time.perf_counter() - start, size - received)


def _part_of(final: Path) -> Path:
    return final.with_name(final.name + ".part")


@contextlib.contextmanager
def _locked(part: Path, entry: ZooCheckpoint, fix: str) -> Iterator[BinaryIO]:
    """`part` opened for appending, locked against a second fetch of the same file."""
    try:
        f = open(part, "ab")
    except OSError as e:
        raise unwritable_error(part, e, fix) from None
    with f:
        if fcntl is not None:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise TimefliesError(f"another `timeflies models fetch {entry.name}` is downloading it; "
                                     "wait for it to finish") from None
        yield f


def _download_from_any(entry: ZooCheckpoint, f: BinaryIO, progress: Progress | None) -> int:
    """Complete `f` from the first host that answers; the bytes received."""
    failures = []
    for url in entry.urls():
        try:
            return _download(url, f, progress)
        except _Unreachable as e:
            failures.append(f"{urllib.parse.urlsplit(url).netloc}: {e}")
        except _Cut as e:
            raise TimefliesError(f"the download of {entry.name} was cut off ({e}); run "
                                 f"`timeflies models fetch {entry.name}` again to resume it") from None
    raise TimefliesError(f"cannot download {entry.name} ({'; '.join(failures)}); check the network and run "
                         f"`timeflies models fetch {entry.name}` again")


def _download(url: str, f: BinaryIO, progress: Progress | None, retry: bool = True) -> int:
    """Append the rest of `url` to `f` (from its current size); the bytes received."""
    have = f.seek(0, os.SEEK_END)
    headers = {"User-Agent": "timeflies", "Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=TIMEOUT)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # nothing after `have`: the part is whole, or not this file's
            if _total(e.headers.get("Content-Range")) == have:
                return 0
            if retry:
                f.truncate(0)
                return _download(url, f, progress, retry=False)
        raise _Unreachable(f"HTTP {e.code} {e.reason}") from None
    except urllib.error.URLError as e:
        raise _Unreachable(_why(e.reason)) from None
    except (OSError, http.client.HTTPException) as e:
        raise _Unreachable(_why(e)) from None
    with response:
        if have and response.status != 206:  # the server ignored the range: start over
            f.truncate(0)
            have = 0
        length = response.headers.get("Content-Length")
        total = have + int(length) if length and length.isdigit() else None
        done = have
        if progress:
            progress(done, total)
        while True:
            try:
                chunk = response.read(CHUNK)
            except (OSError, http.client.HTTPException) as e:
                raise _Cut(f"{_megabytes(done, total)}: {_why(e)}") from None
            if not chunk:
                break
            f.write(chunk)
            done += len(chunk)
            if progress:
                progress(done, total)
    if total is not None and done < total:
        raise _Cut(f"{_megabytes(done, total)}: the connection closed")
    return done - have


def _total(content_range: str | None) -> int | None:
    """The total size in a Content-Range header ("bytes */1234", "bytes 0-9/1234")."""
    try:
        return int((content_range or "").rsplit("/", 1)[1])
    except (IndexError, ValueError):
        return None


def _why(e: BaseException | str) -> str:
    """A few words for a network error."""
    if isinstance(e, str):
        return e
    if isinstance(e, ConnectionRefusedError):
        return "connection refused"
    if isinstance(e, socket.gaierror):
        return "host not found (no network?)"
    if isinstance(e, (TimeoutError, socket.timeout)):
        return f"no answer in {TIMEOUT} s"
    if isinstance(e, ssl.SSLError):
        return f"TLS error: {e.reason or e}"
    text = getattr(e, "strerror", None) or str(e) or type(e).__name__
    return text.splitlines()[0][:120]


def _megabytes(done: int, total: int | None) -> str:
    return f"after {done / 1e6:.1f}" + (f" of {total / 1e6:.1f} MB" if total else " MB")
