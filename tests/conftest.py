"""Shared fixtures: tiny models and the real data folder (../shared/data)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


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
