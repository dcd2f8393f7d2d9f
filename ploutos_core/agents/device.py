"""Resolve ``--device auto|cpu|cuda`` to a device torch can use."""

from __future__ import annotations

from ploutos_core.errors import DeviceError

CHOICES = ("auto", "cpu", "cuda")


def resolve_device(requested: str) -> str:
    """``cuda`` when asked for (or ``auto`` and a GPU exists), else ``cpu``.

    :raises DeviceError: ``cuda`` requested without a usable GPU, or an unknown name.
    """
    import torch

    name = requested.lower()
    if name not in CHOICES and not name.startswith("cuda:"):
        raise DeviceError(f"unknown device {requested!r}; use auto, cpu or cuda")
    available = torch.cuda.is_available()
    if name == "auto":
        return "cuda" if available else "cpu"
    if name.startswith("cuda") and not available:
        build = "a CPU-only build" if torch.version.cuda is None else f"CUDA {torch.version.cuda}"
        raise DeviceError(
            f"--device {requested} was requested but no CUDA GPU is available (torch "
            f"{torch.__version__}, {build}); use --device cpu or --device auto"
        )
    return name
