"""A full disk: every command that writes fails with one line and leaves nothing partial.

Each case's outputs go to a small tmpfs filled up to a few pages (when this machine lets
the tests mount one), else to an ordinary folder with the process' file-size limit
(RLIMIT_FSIZE) set, which fails writes the same way (EFBIG instead of ENOSPC). The real
entry point runs in a subprocess; the cases run side by side, once per module.
"""
from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import registry
from test_cli import assert_one_line_error

CASES, case = registry()
QUIET = ["-q"]


def _mount_tmpfs(path: Path, size: str = "2m") -> bool:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or not shutil.which("mount") or os.environ.get("TIMEFLIES_TEST_NO_TMPFS"):
        return False  # (the variable tries the fallback on a machine that could mount)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    return r.returncode == 0


def _leave_free(path: Path, free: int) -> None:
    """Fill the tmpfs at `path` until `free` bytes are left."""
    st = os.statvfs(path)
    (path / ".filler").write_bytes(b"\0" * max(0, st.f_bavail * st.f_frsize - free))


def _file_size_limit(limit: int):
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def scene(d: Path) -> dict:
    """Noisy inputs (so every output is many pages): photo, reference frames, training data."""
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)).save(d / "photo.png")
    (d / "ref").mkdir()
    for i in range(6):
        Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(d / "ref" / f"{i}.png")
    (d / "data" / "seq").mkdir(parents=True)
    for i in range(6):
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(d / "data" / "seq" / f"{i}.png")
    return dict(photo=d / "photo.png", ref=d / "ref", data=d / "data")


def _animate(s, output, *extra):
    return ["animate", s["photo"], s["ref"], "-o", output, "--method", "still", "--segmenter", "none", "--size", "128",
            *extra, *QUIET]


# Each case: (arguments, bytes left free, outputs that must not exist afterwards).
for suffix in ("mp4", "gif", "webm"):
    @case(f"animate-{suffix}")
    def _(s, full, ok, suffix=suffix):
        return _animate(s, full / f"o.{suffix}"), 4096, [full / f"o.{suffix}"]


@case("animate-frame-folder")
def _(s, full, ok):
    return _animate(s, f"{full / 'frames'}/"), 4096, [full / "frames"]


@case("animate-preview")  # the video fits, its preview does not: neither is kept
def _(s, full, ok):
    return _animate(s, ok / "o.mp4", "--preview", full / "sheet.png"), 0, [ok / "o.mp4", full / "sheet.png"]


@case("segment")
def _(s, full, ok):
    return ["segment", s["photo"], "-o", full / "m.png", "--segmenter", "builtin", *QUIET], 0, [full / "m.png"]


@case("segment-preview")
def _(s, full, ok):
    return (["segment", s["photo"], "-o", ok / "m.png", "--preview", full / "p.png", "--segmenter", "builtin", *QUIET],
            0, [ok / "m.png", full / "p.png"])


@case("benchmark-json")
def _(s, full, ok):
    return (["benchmark", "--res", "16", "--frames", "2", "--repeats", "1", "--methods", "still", "--json",
             full / "b.json"], 0, [full / "b.json"])


@case("benchmark-plot")
def _(s, full, ok):
    return (["benchmark", "--res", "16", "--frames", "2", "--repeats", "1", "--methods", "still", "--json",
             ok / "b.json", "--plot", full / "p.png"], 0, [ok / "b.json", full / "p.png"])


@case("train")
def _(s, full, ok):
    return (["train", "--data", s["data"], "--out", full / "run", "--size", "32", "--clip", "3", "--width", "0.125",
             "--max-steps", "2", "--segmenter", "none", *QUIET], 16384, [full / "run" / "checkpoint"])


@pytest.fixture(scope="module")
def full_disk_runs(tmp_path_factory):
    """name -> (CompletedProcess, outputs that must not exist, the two output folders)."""
    mounted, prepared = [], {}
    for name, build in CASES.items():
        d = tmp_path_factory.mktemp(name)
        s, full, ok = scene(d), d / "full", d / "ok"
        ok.mkdir()
        tmpfs = _mount_tmpfs(full)
        if tmpfs:
            mounted.append(full)
        args, free, gone = build(s, full, ok)
        if tmpfs:
            _leave_free(full, free)
        limit = None if tmpfs else _file_size_limit(max(free, 1))
        prepared[name] = (args, limit, gone, full, ok)
    env = {**os.environ, "COLUMNS": "60", "NO_COLOR": "1"}

    def run(args, limit):
        return subprocess.run([sys.executable, "-m", "timelapse_cli", *map(str, args)], capture_output=True,
                              text=True, timeout=300, env=env, preexec_fn=limit)

    try:
        with ThreadPoolExecutor(2) as pool:
            futures = {n: pool.submit(run, a, lim) for n, (a, lim, _, _, _) in prepared.items()}
        yield {n: (futures[n].result(), gone, full, ok) for n, (_, _, gone, full, ok) in prepared.items()}
    finally:
        for path in mounted:
            subprocess.run(["umount", str(path)], capture_output=True)


def _leftovers(*roots: Path) -> list[str]:
    return [str(p) for root in roots for p in root.rglob("*") if ".part" in p.name or p.name.endswith(".old")]


@pytest.mark.parametrize("name", list(CASES))
def test_a_full_disk_leaves_nothing_partial(name, full_disk_runs):
    result, gone, full, ok = full_disk_runs[name]
    assert_one_line_error(result, "no room on the disk")
    assert _leftovers(full, ok) == []
    for path in gone:
        assert not path.exists(), path
    run = full / "run"
    if run.exists():  # train: what is there is whole: the manifest, run.json, whole log lines
        for line in (run / "log.jsonl").read_text().splitlines() if (run / "log.jsonl").exists() else []:
            json.loads(line)
        listed = json.loads((run / ".timeflies-run.json").read_text())["files"]
        assert all((run / f).exists() for f in listed)
