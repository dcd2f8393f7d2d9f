"""Where training time goes: cProfile of the reference, stage and baseline settings (issue 8).

Each model is built and warmed up, then ``--steps`` of training run under
cProfile. The cumulative times of the functions that make up a PPO iteration
are grouped (rollout: environment step, policy forward, buffer, callbacks;
update: forward, backward, optimiser, minibatch sampling) and written as JSON,
with the top functions by own time as text beside it. cProfile slows
Python-heavy code more than torch kernels, so shares of Python overhead are
upper bounds; the un-profiled rollout/update split is in ``throughput.py``'s
output. The configurations are those of ``common.py``: ``reference`` (the design's
reference setup), ``stage`` (the stage files' defaults, what ``ploutos run`` trains)
and ``baseline`` (stable-baselines3 defaults). Profiles recorded before 2026-11-25
21:00 UTC name the reference settings ``stage`` and the current defaults ``fast``.

Usage::

    python bench/profiling.py                     # reference, stage, baseline × 1 and 5 assets
    python bench/profiling.py --configs stage --assets 5 --steps 65536
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import socket
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    STAGE_FOR_ASSETS,
    Trainer,
    baseline_trainer,
    load_panel,
    ploutos_trainer,
    registry,
    select_configs,
    train_market,
)

RESULTS = Path(__file__).resolve().parent / "results"

#: group → (file suffix, function name) whose cumulative times are summed.
GROUPS: dict[str, tuple[tuple[str, str], ...]] = {
    "rollout": (("on_policy_algorithm.py", "collect_rollouts"),),
    "rollout/env_step": (("portfolio.py", "step_wait"), ("dummy_vec_env.py", "step_wait")),
    "rollout/policy_forward": (("policies.py", "forward"), ("policy.py", "forward")),
    "rollout/buffer_add": (("buffers.py", "add"),),
    "rollout/callbacks": (("callbacks.py", "on_step"),),
    "rollout/info_buffer": (("base_class.py", "_update_info_buffer"),),
    "rollout/gae": (("buffers.py", "compute_returns_and_advantage"),),
    "update": (("ppo.py", "train"),),
    "update/forward": (("policies.py", "evaluate_actions"), ("policy.py", "evaluate_actions")),
    "update/backward": (("~", "<method 'run_backward' of 'torch._C._EngineBase' objects>"),),
    "update/optimizer_step": (("adam.py", "step"),),
    "update/clip_grad_norm": (("clip_grad.py", "clip_grad_norm_"),),
    "update/minibatch_sampling": (("buffers.py", "get"),),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=32768,
                        help="profiled steps per configuration (whole rollouts; default 32768)")
    parser.add_argument("--assets", default="1,5", help="asset counts (default 1,5)")
    parser.add_argument("--configs", default="reference,stage,baseline",
                        help="configurations: reference, stage, baseline or a --variant's "
                             "name (default reference,stage,baseline)")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME:K=V,…",
                        help="an extra configuration to name in --configs: changes to the "
                             "stage files' settings, e.g. 'w64:hidden_size=64' (repeatable)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads; 0 keeps torch's default (default 1, like "
                             "'ploutos --threads')")
    parser.add_argument("--source", default="synthetic", choices=("synthetic", "csv"))
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--top", type=int, default=20, help="functions listed per profile")
    parser.add_argument("--out", type=Path, default=None,
                        help="JSON path (default bench/results/profile-<host>-cpu.json)")
    return parser.parse_args(argv)


def grouped(stats: pstats.Stats, total: float) -> dict[str, dict[str, float]]:
    """Seconds and share of ``total`` per :data:`GROUPS` entry."""
    table: dict[tuple[str, int, str], tuple[Any, ...]] = stats.stats  # type: ignore[attr-defined]
    out = {}
    for group, keys in GROUPS.items():
        seconds = sum(value[3] for (path, _, name), value in table.items()
                      if any(path.endswith(suffix) and name == func for suffix, func in keys))
        out[group] = {"seconds": round(seconds, 4), "share": round(seconds / total, 4)}
    for phase in ("rollout", "update"):
        rest = out[phase]["seconds"] - sum(v["seconds"] for k, v in out.items()
                                           if k.startswith(f"{phase}/"))
        out[f"{phase}/other"] = {"seconds": round(rest, 4), "share": round(rest / total, 4)}
    return out


def profile_one(trainer: Trainer, steps: int, top: int) -> dict[str, Any]:
    """Profile ``steps`` of training of a warmed-up model."""
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    run = trainer.train(steps)
    profiler.disable()
    total = time.perf_counter() - started
    stats = pstats.Stats(profiler)
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(top)
    return {"steps": run["steps"], "seconds": round(total, 3),
            "steps_per_second_profiled": round(run["steps"] / total, 1),
            "groups": grouped(stats, total), "top_by_own_time": text.getvalue()}


def main(argv: list[str] | None = None) -> int:
    """Profile every requested model; write JSON and a text report."""
    args = parse_args(argv)
    import torch

    from ploutos_core.runfiles.atomic import write_json, write_text

    if args.threads:
        torch.set_num_threads(args.threads)
    reg = registry()
    configs = select_configs(args.configs, args.variant)
    results = []
    for n_assets in (int(a) for a in args.assets.split(",")):
        stage = reg.stage(STAGE_FOR_ASSETS[n_assets])
        panel = load_panel(reg, stage, args.source, args.data_dir, seed=0)
        for name in args.configs.split(","):
            trainer = (baseline_trainer(train_market(reg, stage, panel), stage, seed=0,
                                        device="cpu") if name == "baseline" else
                       ploutos_trainer(reg, stage, panel, configs[name], seed=0, device="cpu"))
            trainer.train(1)
            profile = profile_one(trainer, args.steps, args.top)
            results.append({"assets": n_assets, "stage": stage.name, "config": name,
                            "settings": trainer.settings, **profile})
            groups = profile["groups"]
            print(f"{stage.name} {name:9s} {profile['steps_per_second_profiled']:>9,.0f} "
                  f"steps/s (profiled)  rollout {groups['rollout']['share']:.0%} "
                  f"(env {groups['rollout/env_step']['share']:.0%}, policy "
                  f"{groups['rollout/policy_forward']['share']:.0%})  update "
                  f"{groups['update']['share']:.0%} (fwd {groups['update/forward']['share']:.0%},"
                  f" bwd {groups['update/backward']['share']:.0%}, adam "
                  f"{groups['update/optimizer_step']['share']:.0%}, sampling "
                  f"{groups['update/minibatch_sampling']['share']:.0%})", flush=True)
    out = args.out or RESULTS / f"profile-{socket.gethostname()}-cpu.json"
    write_json(out, {"benchmark": "profile", "issue": 8, "threads": args.threads,
                     "command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]),
                     "results": [{k: v for k, v in r.items() if k != "top_by_own_time"}
                                 for r in results]})
    write_text(out.with_suffix(".txt"), "\n".join(
        f"=== {r['stage']} {r['config']} ({r['steps']} steps) ===\n{r['top_by_own_time']}"
        for r in results))
    print(f"wrote {out} and {out.with_suffix('.txt')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
