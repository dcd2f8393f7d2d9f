"""Resolve ``--device auto|cpu|cuda`` to a device torch can use; check that a run fits in
the GPU's memory before it starts."""

from __future__ import annotations

from collections.abc import Callable

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


#: bytes kept free beside the estimate: the CUDA context, cuBLAS workspaces, fragmentation.
RESERVE_BYTES = 768 * 2**20
#: the estimate is rough; refuse when it comes within this factor of the free memory.
SAFETY_FACTOR = 1.25


def rollout_memory_bytes(n_envs: int, n_steps: int, n_assets: int, n_features: int, *,
                         batch_size: int, hidden_size: int, n_days: int = 0,
                         pool: int = 0) -> int:
    """Estimated peak device memory of ``cuda_ppo`` training: its rollout buffers, the
    environments' state, one rollout step's forward pass, one minibatch's forward and
    backward pass, the update's temporaries and the market tables.

    The rollout stores per transition only the day, the weights (from which the
    observation is rebuilt), the weights after the step, the action, five float32
    scalars, a done flag and four float64 episode statistics, so it grows with
    ``n_envs × n_steps × n_assets``, not with the feature window.

    :param n_features: per-asset observation width (``window × features + 2``).
    :param n_days: rows of the market tables (0 to leave them out).
    :param pool: the market's columns when episodes sample ``n_assets`` of a wider
        universe (0: the stage's own ``n_assets``); the rollout then also stores each
        transition's assets.
    """
    width = n_assets + 1
    per_transition = 4 + 3 * 4 * width + 4 * 5 + 1 + 8 * 4
    if pool:
        per_transition += 8 * n_assets
    buffers = n_steps * n_envs * per_transition
    update = n_steps * n_envs * (8 + 4 * 4)  # permutation, flat copies, GAE
    env_state = n_envs * 8 * (8 + 3 * width) * 4  # float64 state and a step's temporaries
    step = n_envs * n_assets * (n_features + 6 * hidden_size) * 4 * 2
    minibatch = min(batch_size, n_steps * n_envs) * n_assets * \
        (n_features + 12 * hidden_size) * 4 * 3
    market = n_days * max(pool, n_assets) * (4 * n_features + 8 + (1 if pool else 0))
    return buffers + update + env_state + step + minibatch + market


def check_device_memory(device: str, bytes_for: Callable[[int], int], n_envs: int, *,
                        what: str, free_and_total: tuple[int, int] | None = None) -> int:
    """Refuse an environment count whose training would not fit in the GPU's free memory.

    Nothing is checked on a CPU (``free_and_total`` lets a test pretend otherwise).

    :param bytes_for: the estimate for a number of environments
        (e.g. :func:`rollout_memory_bytes` with the other arguments bound).
    :param what: how the message names the run (``"cuda_ppo with n_steps=64"``).
    :param free_and_total: free and total bytes, instead of asking CUDA.
    :return: the estimate for ``n_envs``.
    :raises DeviceError: naming the estimate, the free memory and the largest count that fits.
    """
    needed = bytes_for(n_envs)
    if free_and_total is None:
        if not device.startswith("cuda"):
            return needed
        import torch

        free_and_total = torch.cuda.mem_get_info(torch.device(device))
    free, total = free_and_total
    budget = free - RESERVE_BYTES
    if needed * SAFETY_FACTOR <= budget:
        return needed
    fits, above = 0, n_envs  # the estimate grows with the count: bisect the largest fit
    while above - fits > 1:
        middle = (fits + above) // 2
        if bytes_for(middle) * SAFETY_FACTOR <= budget:
            fits = middle
        else:
            above = middle
    gib = 2**30
    raise DeviceError(
        f"{what}: {n_envs:,} environments need about {needed / gib:,.1f} GiB of GPU memory "
        f"(rollout buffers, environments, update), but {device} has {free / gib:,.1f} GiB "
        f"free of {total / gib:,.1f} GiB; use --n-envs {fits:,} or fewer, or a smaller "
        f"n_steps or batch_size")
