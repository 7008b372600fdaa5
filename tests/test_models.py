"""`timeflies models`: the zoo table, and fetch through the real download code against a
model zoo on 127.0.0.1 serving a random-weight SegFormer-B0 checkpoint.

The table's hosts are pointed at the local server and the default entry's checksum at the
served file's; everything else (file names, the cache layout, the CLI) is the real one,
so a file fetched here is what `--segmenter auto` finds in a later process.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import NO_MMSEG
from test_cli import assert_one_line_error
from test_full_disk import _file_size_limit, _leave_free, _mount_tmpfs
from timelapse_cli.cli import run
from timelapse_cli.errors import TimefliesError
from timelapse_cli.segmentation import zoo

B0 = zoo.get(zoo.DEFAULT)


# ---------------------------------------------------------------- a model zoo on 127.0.0.1


class Zoo:
    """What the local server serves and what it was asked."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header)
        self.cut_at: int | None = None    # the next answer stops after this byte of the file
        self.ranges = True                # False: ignore Range headers (send the whole file)

    def url(self, server) -> str:
        return f"http://127.0.0.1:{server.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        zoo_ = self.server.zoo
        asked = self.headers.get("Range")
        zoo_.requests.append((self.path, asked))
        data = zoo_.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        start = int(re.fullmatch(r"bytes=(\d+)-", asked).group(1)) if asked and zoo_.ranges else 0
        if start >= len(data) > 0:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(data)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        end = len(data) if zoo_.cut_at is None else zoo_.cut_at
        zoo_.cut_at = None
        self.wfile.write(data[start:end])
        self.close_connection = True

    def log_message(self, *args):
        pass


class Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # a client that stops reading midway (the Ctrl-C test) is expected


@pytest.fixture(scope="module")
def served():
    """(server, the checkpoint's bytes): a random-weight SegFormer-B0 when mmseg is installed."""
    server = Server(("127.0.0.1", 0), Handler)
    server.zoo = Zoo()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def checkpoint_bytes(request) -> bytes:
    """The random-weight SegFormer-B0 checkpoint (conftest.py) when mmseg is installed; else
    random bytes of a similar size (the download code does not look inside)."""
    try:
        return request.getfixturevalue("random_checkpoint").read_bytes()
    except pytest.skip.Exception:
        return np.random.default_rng(0).integers(0, 256, 15_000_000, dtype=np.uint8).tobytes()


@pytest.fixture
def local_zoo(served, checkpoint_bytes, monkeypatch, tmp_path):
    """The zoo table pointed at the local server, which serves the default checkpoint;
    an empty cache in tmp_path/cache. Yields the server's Zoo."""
    state = served.zoo
    state.files = {f"/{B0.path}": checkpoint_bytes}
    state.requests, state.cut_at, state.ranges = [], None, True
    digest = hashlib.sha256(checkpoint_bytes).hexdigest()
    monkeypatch.setattr(zoo, "ZOO_HOSTS", (state.url(served),))
    monkeypatch.setattr(zoo, "CHECKPOINTS", tuple(replace(e, sha256=digest) if e is B0 else e
                                                   for e in zoo.CHECKPOINTS))
    monkeypatch.setenv(zoo.CACHE_ENV, str(tmp_path / "cache"))
    state.digest, state.host = digest, state.url(served)
    return state


def cached_file() -> Path:
    return zoo.checkpoints_dir() / B0.file


def part_file() -> Path:
    return zoo.checkpoints_dir() / (B0.file + ".part")


def cli(capsys, *args) -> tuple[int, str, str]:
    """The real CLI in this process (the table patched above applies): exit code, stdout, stderr."""
    code = run([*map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_line_error(code: int, err: str, *needles: str) -> str:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    for needle in needles:
        assert needle.lower() in lines[0].lower(), f"{needle!r} not in {lines[0]!r}"
    return lines[0]


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- the table


def _metafile_weights() -> dict[str, dict]:
    """{config name: its metafile entry} over all of mmseg's bundled metafiles."""
    yaml = pytest.importorskip("yaml")
    from timelapse_cli.segmentation.mmseg import configs_dir

    folder = configs_dir()
    if folder is None:
        pytest.skip(NO_MMSEG)
    entries = {}
    for metafile in folder.glob("*/metafile.y*ml"):
        for model in yaml.safe_load(metafile.read_text(encoding="utf-8")).get("Models", []):
            entries[model["Name"]] = model
    return entries


def test_table_matches_mmsegmentations_metafiles():
    """Each entry's URL (on one of the zoo hosts), checksum prefix, config, dataset and mIoU
    are what the installed mmsegmentation's metafile says for its config."""
    metafiles = _metafile_weights()
    assert zoo.DEFAULT == "segformer-b0" and [e.name for e in zoo.CHECKPOINTS][0] == zoo.DEFAULT
    assert len({e.name for e in zoo.CHECKPOINTS}) == len(zoo.CHECKPOINTS)
    assert "https://download.openmmlab.com" in zoo.ZOO_HOSTS
    for entry in zoo.CHECKPOINTS:
        model = metafiles[entry.config]
        assert model["Results"]["Dataset"] == "ADE20K"
        assert model["Results"]["Metrics"]["mIoU"] == entry.miou
        assert model["Weights"] in entry.urls(), (entry.name, model["Weights"])
        prefix = re.fullmatch(r".*-([0-9a-f]{8})\.pth", entry.file).group(1)
        assert entry.sha256.startswith(prefix) and len(entry.sha256) in (8, 64)
    assert max(e.miou for e in zoo.CHECKPOINTS) > zoo.get(zoo.DEFAULT).miou + 10  # a model for quality


def test_table_sizes_are_the_configs_weights():
    """The sizes `models list` shows are the float32 weights of each entry's config."""
    pytest.importorskip("mmseg", reason=NO_MMSEG)
    from timelapse_cli.segmentation import mmseg as mm

    for entry in zoo.CHECKPOINTS:
        model = mm.build_model(mm.find_config(entry.config), "cpu")
        megabytes = sum(t.numel() * t.element_size() for t in model.state_dict().values()) / 1e6
        assert abs(megabytes - entry.megabytes) < 0.05 * megabytes, (entry.name, megabytes)


@pytest.mark.parametrize("timeflies, xdg, expected", [
    ("/tmp/tf", "/tmp/xdg", "/tmp/tf"),
    (None, "/tmp/xdg", "/tmp/xdg/timeflies"),
    (None, "relative/xdg", "~/.cache/timeflies"),  # the XDG spec ignores a relative path
    (None, None, "~/.cache/timeflies"),
])
def test_cache_dir(monkeypatch, timeflies, xdg, expected):
    for name, value in ((zoo.CACHE_ENV, timeflies), ("XDG_CACHE_HOME", xdg)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    assert zoo.cache_dir() == Path(expected).expanduser()
    assert zoo.checkpoints_dir() == Path(expected).expanduser() / "checkpoints"


# ---------------------------------------------------------------- fetch


def test_fetch_list_remove(local_zoo, capsys, checkpoint_bytes):
    code, out, err = cli(capsys, "models", "list")
    assert code == 0 and re.search(r"segformer-b0 .*about 15 MB\s+no", out), out
    assert "Nothing cached: --segmenter auto runs the builtin segmenter" in out
    code, out, err = cli(capsys, "models", "fetch")  # the default model
    assert code == 0, err
    assert out.startswith("Fetched segformer-b0") and "SHA-256 verified" in out
    assert cached_file().read_bytes() == checkpoint_bytes and not part_file().exists()
    assert local_zoo.requests == [(f"/{B0.path}", None)]
    # Cached: fetching again asks nothing, the list says so and which one auto uses.
    code, out, err = cli(capsys, "models", "fetch", "segformer-b0")
    assert code == 0 and "cached already" in out and len(local_zoo.requests) == 1
    code, out, err = cli(capsys, "models", "list")
    assert re.search(r"segformer-b0 .* 15\.\d MB\s+yes", out) and "--segmenter auto uses segformer-b0" in out, out
    assert zoo.find_cached() == zoo.get("segformer-b0")
    code, out, err = cli(capsys, "models", "remove", "segformer-b0")
    assert code == 0 and str(cached_file()) in out and not cached_file().exists()
    code, out, err = cli(capsys, "models", "remove", "segformer-b0")
    assert code == 0 and "not cached" in out
    assert zoo.find_cached() is None


@pytest.mark.parametrize("server", ["resumes", "ignores-range"])
def test_a_cut_download_is_resumed_or_restarted(local_zoo, capsys, checkpoint_bytes, server):
    local_zoo.ranges = server == "resumes"
    cut = len(checkpoint_bytes) // 3
    local_zoo.cut_at = cut
    code, out, err = cli(capsys, "models", "fetch", "segformer-b0")
    one_line_error(code, err, "cut off", f"after {cut / 1e6:.1f} of {len(checkpoint_bytes) / 1e6:.1f} MB",
                   "timeflies models fetch segformer-b0")
    assert not cached_file().exists()  # nothing under the final name
    assert part_file().read_bytes() == checkpoint_bytes[:cut]
    assert zoo.find_cached() is None and zoo.partial_bytes(B0) == cut
    code, out, err = cli(capsys, "models", "list")
    assert f"no, {cut / 1e6:.1f} MB so far" in out
    code, out, err = cli(capsys, "models", "fetch", "segformer-b0")
    assert code == 0, err
    assert cached_file().read_bytes() == checkpoint_bytes and not part_file().exists()
    assert local_zoo.requests[-1][1] == f"bytes={cut}-"  # asked for the rest either way
    if server == "resumes":
        assert f"resumed after {cut / 1e6:.1f} MB" in out
    else:
        assert "resumed after" not in out


def test_a_part_that_is_already_whole_is_verified_and_kept(local_zoo, capsys, checkpoint_bytes):
    """A download cut just before its rename: the server answers 416 to the range."""
    part_file().parent.mkdir(parents=True)
    part_file().write_bytes(checkpoint_bytes)
    code, out, err = cli(capsys, "models", "fetch", "segformer-b0")
    assert code == 0, err
    assert cached_file().read_bytes() == checkpoint_bytes


@pytest.mark.parametrize("case", ["wrong-file", "stale-part"])
def test_a_checksum_mismatch_deletes_the_download(local_zoo, capsys, checkpoint_bytes, case):
    if case == "wrong-file":  # the server sends another file
        local_zoo.files[f"/{B0.path}"] = checkpoint_bytes[::-1]
    else:  # the start kept from an earlier download is not this file's
        part_file().parent.mkdir(parents=True)
        part_file().write_bytes(b"\0" * 1000)
    code, out, err = cli(capsys, "models", "fetch", "segformer-b0")
    one_line_error(code, err, "SHA-256", "deleted", "timeflies models fetch segformer-b0")
    assert not cached_file().exists() and not part_file().exists()
    assert zoo.find_cached() is None  # so never loaded
    if case == "stale-part":  # and a rerun starts over and succeeds
        code, out, err = cli(capsys, "models", "fetch", "segformer-b0")
        assert code == 0 and cached_file().read_bytes() == checkpoint_bytes


@pytest.mark.parametrize("hosts, result", [
    (["refused"], "connection refused"),
    (["404"], "HTTP 404"),
    (["refused", "404"], "connection refused; 127.0.0.1"),  # each host's reason, in one line
    (["refused", "ok"], "fetched"),  # a host that fails is skipped for the next
    (["404", "ok"], "fetched"),
])
def test_unreachable_hosts(local_zoo, capsys, checkpoint_bytes, monkeypatch, hosts, result):
    urls = {"refused": f"http://127.0.0.1:{closed_port()}", "404": f"{local_zoo.host}/missing", "ok": local_zoo.host}
    monkeypatch.setattr(zoo, "ZOO_HOSTS", tuple(urls[h] for h in hosts))
    code, out, err = cli(capsys, "models", "fetch", "segformer-b0")
    if result == "fetched":
        assert code == 0 and cached_file().read_bytes() == checkpoint_bytes, err
    else:
        one_line_error(code, err, "cannot download segformer-b0", result, "timeflies models fetch segformer-b0")
        assert not cached_file().exists() and not part_file().exists()


def test_unknown_name(local_zoo, capsys):
    for command in ("fetch", "remove"):
        code, out, err = cli(capsys, "models", command, "segformer-b9")
        one_line_error(code, err, "unknown model 'segformer-b9'", "segformer-b0, segformer-b2")


def test_a_second_fetch_of_the_same_file_waits_for_none(local_zoo, capsys):
    part_file().parent.mkdir(parents=True)
    with open(part_file(), "ab") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        code, out, err = cli(capsys, "models", "fetch", "segformer-b0")
    one_line_error(code, err, "another `timeflies models fetch segformer-b0` is downloading")
    assert not cached_file().exists() and local_zoo.requests == []


@pytest.fixture
def read_only_dir(tmp_path):
    """A folder no one can write in: a read-only tmpfs as root, else permissions."""
    path = tmp_path / "ro"
    path.mkdir()
    if os.geteuid() == 0:
        if not shutil.which("mount") or subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(path)],
                                                       capture_output=True).returncode:
            pytest.skip("cannot mount a read-only tmpfs here")
        yield path
        subprocess.run(["umount", str(path)], capture_output=True)
    else:
        path.chmod(0o555)
        yield path
        path.chmod(0o755)


@pytest.mark.parametrize("where", ["file-in-the-way", "read-only"])
def test_an_unwritable_cache_is_one_line(local_zoo, capsys, monkeypatch, tmp_path, request, where):
    if where == "file-in-the-way":
        (tmp_path / "file").write_text("a file, not a folder")
        cache = tmp_path / "file" / "cache"
    else:
        cache = request.getfixturevalue("read_only_dir") / "cache"
    monkeypatch.setenv(zoo.CACHE_ENV, str(cache))
    code, out, err = cli(capsys, "models", "fetch", "segformer-b0")
    one_line_error(code, err, "cannot write", f"set {zoo.CACHE_ENV} to a folder you can write")
    assert local_zoo.requests == []  # found out before downloading


RUNNER = """
import sys
from dataclasses import replace
from timelapse_cli.segmentation import zoo
zoo.ZOO_HOSTS = (sys.argv[1],)
zoo.CHECKPOINTS = tuple(replace(e, sha256=sys.argv[2]) if e.name == zoo.DEFAULT else e for e in zoo.CHECKPOINTS)
from timelapse_cli.cli import run
sys.exit(run(sys.argv[3:]))
"""


def test_a_full_disk_leaves_nothing(local_zoo, tmp_path):
    """The real entry point in a subprocess (the table patched as above) on a small tmpfs
    when one can be mounted, else under a file-size limit."""
    cache = tmp_path / "full"
    tmpfs = _mount_tmpfs(cache)
    try:
        if tmpfs:
            _leave_free(cache, 1 << 20)
        r = subprocess.run([sys.executable, "-c", RUNNER, local_zoo.host, local_zoo.digest, "models", "fetch"],
                           capture_output=True, text=True, timeout=300, env={**os.environ, zoo.CACHE_ENV: str(cache)},
                           preexec_fn=None if tmpfs else _file_size_limit(1 << 20))
        assert_one_line_error(r, "no room on the disk", B0.file)
        assert not list((cache / "checkpoints").iterdir())  # neither the file nor a part of it
    finally:
        if tmpfs:
            subprocess.run(["umount", str(cache)], capture_output=True)


def test_interrupted_fetch_keeps_the_part_for_a_resume(local_zoo, capsys, monkeypatch, checkpoint_bytes):
    def interrupt(done, total):
        if done > len(checkpoint_bytes) // 2:
            raise KeyboardInterrupt

    monkeypatch.setattr("timelapse_cli.cli._progress.__enter__", lambda self: interrupt)
    monkeypatch.setattr("timelapse_cli.cli._progress.__exit__", lambda self, *exc: None)
    code, out, err = cli(capsys, "models", "fetch", "segformer-b0")
    assert code == 130 and "resumes the download" in err
    assert not cached_file().exists() and 0 < part_file().stat().st_size < len(checkpoint_bytes)


# ---------------------------------------------------------------- using the cache


def _segment(photo: Path, out: Path, *args: str, netlog: Path):
    return subprocess.run([sys.executable, "-m", "timelapse_cli", "segment", str(photo), "-o", str(out), *args],
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "TIMEFLIES_TEST_NETLOG": str(netlog), "COLUMNS": "300"})


def test_segment_auto_uses_the_fetched_checkpoint_offline(local_zoo, capsys, tmp_path, random_checkpoint):
    """Fetched here, used by a new process: `segment` (default --segmenter auto) runs mmseg
    on the cached file, says so, and tries no network connection at all (the test guard
    would log one)."""
    photo = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(photo)
    netlog = tmp_path / "net.log"
    before = _segment(photo, tmp_path / "before.png", netlog=netlog)
    assert before.returncode == 0, before.stderr
    assert "by the builtin segmenter (sky vs. rest)" in before.stdout
    code, out, err = cli(capsys, "models", "fetch", "segformer-b0")
    assert code == 0, err
    after = _segment(photo, tmp_path / "after.png", "--segmenter", "auto", "--classes", "ade20k", netlog=netlog)
    assert after.returncode == 0, after.stderr
    assert "by the mmseg segmenter, SegFormer-B0 512x512 (ADE20K classes)" in after.stdout
    ids = np.asarray(Image.open(tmp_path / "after.png"))
    assert ids.min() >= 1 and ids.max() <= 150  # ADE20K ids: the cached SegFormer made them
    assert not netlog.exists()


def test_cached_checkpoint_by_name_and_the_missing_ones_error(local_zoo, capsys, random_model):
    from timelapse_cli.segmentation import mmseg as mm
    from timelapse_cli.segment import resolve_segmenter

    with pytest.raises(TimefliesError) as excinfo:  # the mmseg segmenter asked for, nothing cached
        resolve_segmenter("mmseg", device="cpu")
    assert "run `timeflies models fetch segformer-b0`" in str(excinfo.value)
    with pytest.raises(TimefliesError) as excinfo:  # a model named that is not cached
        mm.pick_checkpoint(None, "segformer-b2")
    assert "segformer-b2 is not cached; run `timeflies models fetch segformer-b2`" in str(excinfo.value)
    assert resolve_segmenter("auto").name == "builtin"
    assert cli(capsys, "models", "fetch", "segformer-b0")[0] == 0
    assert mm.pick_checkpoint(None, None) == (mm.find_config(B0.config), cached_file())
    assert mm.pick_checkpoint(None, "segformer-b0") == (mm.find_config(B0.config), cached_file())
    assert mm.pick_checkpoint(B0.config, None)[1] == cached_file()
    with pytest.raises(TimefliesError) as excinfo:  # another config's checkpoint is not cached
        mm.pick_checkpoint("segformer_mit-b2_8xb2-160k_ade20k-512x512", None)
    assert "`timeflies models fetch segformer-b2`" in str(excinfo.value)


# ---------------------------------------------------------------- no network


def test_the_network_guard_refuses_and_logs(tmp_path, monkeypatch):
    """What 'no test touches the network beyond 127.0.0.1' rests on (conftest.py): attempts
    fail, in this process and in subprocesses, and are logged."""
    log = tmp_path / "net.log"
    monkeypatch.setenv("TIMEFLIES_TEST_NETLOG", str(log))
    with socket.socket() as s, pytest.raises(OSError, match="refused by the tests"):
        s.connect(("192.0.2.1", 80))
    r = subprocess.run([sys.executable, "-c", "import urllib.request; urllib.request.urlopen('https://example.org/')"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "refused by the tests" in r.stderr
    assert log.read_text().splitlines() == ["connect 192.0.2.1:80", "resolve example.org"]


def test_fetch_without_network_is_one_line(tmp_path, monkeypatch):
    """The real table and entry point with no network (the guard): one line per the hosts
    tried, nothing left in the cache."""
    monkeypatch.setenv("TIMEFLIES_TEST_NETLOG", str(tmp_path / "net.log"))
    monkeypatch.setenv(zoo.CACHE_ENV, str(tmp_path / "cache"))
    r = subprocess.run([sys.executable, "-m", "timelapse_cli", "models", "fetch"], capture_output=True, text=True,
                       timeout=120, env={**os.environ, "COLUMNS": "60"})
    assert_one_line_error(r, "cannot download segformer-b0", "download.openmmlab.com", "mmassets.onedl.ai",
                          "check the network", "timeflies models fetch segformer-b0")
    assert list((tmp_path / "cache" / "checkpoints").iterdir()) == []
    assert (tmp_path / "net.log").read_text().split() == ["resolve", "download.openmmlab.com",
                                                          "resolve", "mmassets.onedl.ai"]
