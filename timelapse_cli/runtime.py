"""Device choice and other run-time settings, kept out of the model code."""
from __future__ import annotations

import torch

from .errors import TimefliesError


def resolve_device(name: str | None = "auto") -> torch.device:
    """'auto' -> CUDA when available, else CPU; otherwise the named device, checked."""
    if name in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise TimefliesError(f"unknown device '{name}'; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise TimefliesError(f"device '{name}' asked for but CUDA is not available; use --device cpu")
    return device
