"""Learning quality at equal steps: the stage defaults against the reference setup (issue 8).

For each stage (stage 1: one asset; stage 3: five), configuration and seed, a
fresh agent is built with the runner's pieces and trained for the same number of
environment steps; at 0, ¼, ½ and all of the budget the policy is backtested
deterministically on the validation split with
:func:`ploutos_core.evaluation.evaluate.evaluate_agent`. The summary gives the
median and spread of the final validation Sharpe per configuration, beside
buy-and-hold on the same days. Runs go to worker processes (``--jobs``); their
wall times are not throughput measurements (see ``throughput.py``).

Configurations (``common.py``): ``stage``, the stage files as they are (what
``ploutos run`` trains), and ``reference``, the design's reference setup (the stage's
``n_envs``, ``n_steps`` 512, ``batch_size`` 256, ``n_epochs`` 10, ``hidden_size`` 64).
Files recorded before 2026-11-25 21:00 UTC name the reference settings ``stage`` and
the current defaults ``fast``.

``cuda_ppo`` (issue 15) is the ``stage`` settings trained by the ``cuda_ppo`` plugin; at
the same seed it starts from the same weights as ``stage`` (SB3 ``ppo``), so the two
differ only in how they train.

Usage::

    python bench/learning.py                             # synthetic, 262,144 steps, 3 seeds
    python bench/learning.py --source csv --stages stage3   # real prices (../shared/market-data)
    python bench/learning.py --source csv --configs stage,cuda_ppo   # issue 15's parity
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import os
import socket
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import SHARED_DATA, Config, select_configs

RESULTS = Path(__file__).resolve().parent / "results"
#: a multiple of every measured configuration's rollout (2,048 … 16,384 steps), so both
#: sides train exactly the same number of steps.
DEFAULT_STEPS = 262_144
CHECKPOINTS = (0.0, 0.25, 0.5, 1.0)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS,
                        help=f"training steps per run (default {DEFAULT_STEPS:,})")
    parser.add_argument("--seeds", default="0,1,2", help="training seeds (default 0,1,2)")
    parser.add_argument("--stages", default="stage1,stage3", help="stages (default stage1,stage3)")
    parser.add_argument("--configs", default="reference,stage",
                        help="configurations: reference, stage or a --variant's name "
                             "(default reference,stage)")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME:K=V,…",
                        help="an extra configuration to name in --configs: changes to the "
                             "stage files' settings, e.g. 'f3:n_envs=64,n_epochs=3' "
                             "(repeatable)")
    parser.add_argument("--source", default="synthetic", choices=("synthetic", "csv"))
    parser.add_argument("--data-dir", type=Path, default=None,
                        help=f"TICKER.csv directory for --source csv (default {SHARED_DATA})")
    parser.add_argument("--data-seed", type=int, default=0,
                        help="seed of the synthetic market (the same market for every run)")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--out", type=Path, default=None,
                        help="JSON path (default bench/results/learning-<host>-<source>.json)")
    args = parser.parse_args(argv)
    if args.source == "csv" and args.data_dir is None:
        args.data_dir = SHARED_DATA
    return args


def run_one(job: dict[str, Any]) -> dict[str, Any]:
    """Train one (stage, configuration, seed) and evaluate it along the way."""
    import torch

    torch.set_num_threads(1)
    from common import load_panel, ploutos_trainer, registry

    from ploutos_core.evaluation.evaluate import build_backtest_env, evaluate_agent

    reg = registry()
    stage = reg.stage(job["stage"])
    config: Config = job["config"]
    panel = load_panel(reg, stage, job["source"], job["data_dir"], job["data_seed"])
    trainer = ploutos_trainer(reg, stage, panel, config, seed=job["seed"], device="cpu",
                              timesteps=job["steps"])
    agent = trainer.agent
    assert agent is not None  # ploutos_trainer always sets it
    env = build_backtest_env(reg, stage, panel, "validation")
    curve = []
    started = time.perf_counter()
    for fraction in CHECKPOINTS:
        target = round(job["steps"] * fraction)
        if target > agent.num_timesteps:
            trainer.train(target - agent.num_timesteps)
        result = evaluate_agent(agent, reg, stage, panel, "validation", model="bench", env=env)
        curve.append({"steps": agent.num_timesteps, "sharpe": result.agent.summary.sharpe,
                      "cagr": result.agent.summary.cagr,
                      "turnover": result.agent.average_turnover})
    baselines = {b.name: b.summary.sharpe for b in result.baselines}
    return {"stage": stage.name, "config": config.name, "seed": job["seed"],
            "settings": trainer.settings, "steps": agent.num_timesteps,
            "wall_seconds": round(time.perf_counter() - started, 1),
            "validation_sharpe": curve[-1]["sharpe"], "curve": curve,
            "baselines_sharpe": baselines,
            "validation": f"{result.start}…{result.end}"}


def summarize(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Median and spread of the final validation Sharpe per (stage, configuration)."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for run in runs:
        groups.setdefault((run["stage"], run["config"]), []).append(run)
    rows = []
    for (stage, config), members in sorted(groups.items()):
        final = [m["validation_sharpe"] for m in members]
        untrained = [m["curve"][0]["sharpe"] for m in members]
        rows.append({
            "stage": stage, "config": config, "seeds": [m["seed"] for m in members],
            "steps": members[0]["steps"], "settings": members[0]["settings"],
            "sharpe_median": statistics.median(final), "sharpe_min": min(final),
            "sharpe_max": max(final),
            "sharpe_stdev": statistics.stdev(final) if len(final) > 1 else 0.0,
            "sharpe_per_seed": final,
            "untrained_sharpe_median": statistics.median(untrained),
            "curve_median": [statistics.median(m["curve"][i]["sharpe"] for m in members)
                             for i in range(len(CHECKPOINTS))],
            "curve_steps": [members[0]["curve"][i]["steps"] for i in range(len(CHECKPOINTS))],
            "baselines_sharpe": members[0]["baselines_sharpe"],
        })
    return rows


def benchmark_sharpe(baselines: dict[str, float]) -> tuple[str, float]:
    """The stage's benchmark among the baselines: 1/N rebalanced, or buy-and-hold of the
    only asset."""
    if "equal_weight_rebalanced" in baselines:
        return "1/N", baselines["equal_weight_rebalanced"]
    name = next(n for n in baselines if n.startswith("buy_and_hold_"))
    return name.removeprefix("buy_and_hold_"), baselines[name]


def print_table(rows: list[dict[str, Any]]) -> None:
    """The human-readable summary: every configuration against its own untrained policy
    and against the benchmark (issue 11: "better than untrained and than 1/N?")."""
    print(f"\n{'stage':7} {'config':9} {'steps':>9} {'Sharpe median':>13} {'min…max':>15} "
          f"{'untrained':>9} {'benchmark':>13}  verdict; per seed / curve (0, ¼, ½, 1)")
    for row in rows:
        label, bench = benchmark_sharpe(row["baselines_sharpe"])
        median = row["sharpe_median"]
        verdict = (f"{'>' if median > row['untrained_sharpe_median'] else '≤'} untrained, "
                   f"{'>' if median > bench else '≤'} {label}")
        print(f"{row['stage']:7} {row['config']:9} {row['steps']:>9,} "
              f"{median:>13.3f} "
              f"{row['sharpe_min']:>7.3f}…{row['sharpe_max']:<7.3f} "
              f"{row['untrained_sharpe_median']:>9.3f} {label:>6} {bench:>6.3f}  "
              f"{verdict}; {[round(s, 3) for s in row['sharpe_per_seed']]} / "
              f"{[round(s, 3) for s in row['curve_median']]}")


def main(argv: list[str] | None = None) -> int:
    """Train every run, write JSON, print the summary."""
    args = parse_args(argv)
    configs = select_configs(args.configs, args.variant)
    jobs = [{"stage": stage, "config": config, "seed": int(seed), "steps": args.steps,
             "source": args.source, "data_dir": args.data_dir, "data_seed": args.data_seed}
            for stage in args.stages.split(",") for seed in args.seeds.split(",")
            for config in configs.values()]
    print(f"{len(jobs)} runs of {args.steps:,} steps on {args.source} data, {args.jobs} "
          f"worker(s)", flush=True)
    started = time.perf_counter()
    runs = []
    context = multiprocessing.get_context("spawn")
    with context.Pool(args.jobs, maxtasksperchild=1) as pool:
        for run in pool.imap_unordered(run_one, jobs):
            runs.append(run)
            print(f"  {run['stage']} {run['config']:9} seed {run['seed']}: validation Sharpe "
                  f"{run['validation_sharpe']:.3f} after {run['steps']:,} steps "
                  f"(curve {[round(c['sharpe'], 3) for c in run['curve']]}, "
                  f"{run['wall_seconds']:.0f} s)", flush=True)
    rows = summarize(runs)
    result = {
        "benchmark": "learning", "issue": 8,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]),
        "host": socket.gethostname(), "cpus": os.cpu_count(), "source": args.source,
        "data_dir": str(args.data_dir) if args.data_dir else None,
        "data_seed": args.data_seed, "steps": args.steps,
        "wall_seconds": round(time.perf_counter() - started, 1),
        "summary": rows, "runs": sorted(runs, key=lambda r: (r["stage"], r["config"],
                                                                r["seed"])),
    }
    from ploutos_core.runfiles.atomic import write_json

    out = args.out or RESULTS / f"learning-{socket.gethostname()}-{args.source}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json(out, result)
    print_table(rows)
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
