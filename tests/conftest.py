"""Shared fixtures: tiny models, a random-weight SegFormer-B0 checkpoint, the real data
folder (../shared/data), and the session's isolation: no network beyond 127.0.0.1 and an
empty model cache of its own."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
NETGUARD = Path(__file__).resolve().parent / "netguard"
NO_MMSEG = "mmsegmentation (onedl-mmsegmentation) is not installed; `make install-mmseg` enables these tests"


def _install_netguard() -> None:
    spec = importlib.util.spec_from_file_location("timeflies_netguard", NETGUARD / "sitecustomize.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.install()


@pytest.fixture(autouse=True, scope="session")
def _isolated_session(tmp_path_factory):
    """Connections beyond 127.0.0.1 fail, in this process and in the Python subprocesses the
    tests start (netguard/sitecustomize.py on their PYTHONPATH); the subprocesses import this
    checkout's package (whatever the environment's editable install points at); and the
    model cache is an empty folder of the session's, with no checkpoint configured, so that
    `--segmenter auto` never picks up a user's fetched checkpoint. An attempt to reach
    another host anywhere in the session fails the session at its end."""
    _install_netguard()
    netlog = tmp_path_factory.mktemp("netguard") / "refused.log"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), str(NETGUARD), os.environ.get("PYTHONPATH")])))
        mp.setenv("TIMEFLIES_TEST_NETGUARD", "1")
        mp.setenv("TIMEFLIES_TEST_NETLOG", str(netlog))
        mp.setenv("TIMEFLIES_CACHE", str(tmp_path_factory.mktemp("model-cache")))
        mp.delenv("TIMEFLIES_MMSEG_CHECKPOINT", raising=False)
        yield
    if netlog.exists():
        pytest.fail(f"network access beyond 127.0.0.1 was tried: {netlog.read_text().strip()}")


def needs_data(*parts: str) -> Path:
    """Path under ../shared/data; skips the test when it is absent."""
    path = DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not found: {path}")
    return path


@pytest.fixture
def tiny_generator():
    from timelapse_cli.model import Generator, GeneratorConfig

    torch.manual_seed(0)
    return Generator(GeneratorConfig(width=0.125)).eval()


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory) -> Path:
    """A saved width-0.125 generator (random weights): every CLI run with it takes about a second."""
    from timelapse_cli.model import Generator, GeneratorConfig
    from timelapse_cli.weights import save_pretrained

    torch.manual_seed(0)
    return save_pretrained(Generator(GeneratorConfig(width=0.125)), tmp_path_factory.mktemp("tiny") / "w")


def registry():
    """Named test cases and the decorator that collects them: `CASES, case = registry()`,
    then `@case("name")` over each builder; parametrize over `list(CASES)`."""
    cases = {}

    def case(name: str):
        def register(build):
            cases[name] = build
            return build
        return register

    return cases, case


@pytest.fixture(scope="session")
def random_model():
    """The default mmseg config's model (SegFormer-B0 ADE20K) with random weights (built once)."""
    pytest.importorskip("mmseg", reason=NO_MMSEG)
    from timelapse_cli.segmentation import mmseg as mm

    torch.manual_seed(0)
    return mm.build_model(mm.find_config(mm.DEFAULT_CONFIG), "cpu")


@pytest.fixture(scope="session")
def random_checkpoint(random_model, tmp_path_factory) -> Path:
    """An mmengine-style checkpoint of the random model: state_dict plus plain-typed meta."""
    from timelapse_cli.segmentation.ade20k import ADE20K_CLASSES

    path = tmp_path_factory.mktemp("mmseg") / "segformer_random.pth"
    meta = {"dataset_meta": {"classes": list(ADE20K_CLASSES)}, "mmseg_version": "1.4.2", "iter": 0}
    torch.save({"state_dict": random_model.state_dict(), "meta": meta}, path)
    return path
