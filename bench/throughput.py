"""End-to-end training throughput of Ploutos against the stable-baselines3 baseline (issue 8).

One command measures, in one run and on the same data:

* Ploutos's ``stage`` configuration (stage 1 for one asset, stage 2 for three, stage 3
  for five): the stage files as they are (``batch_envs`` 128, ``n_steps`` 64,
  ``batch_size`` 1024, ``n_epochs`` 4, ``hidden_size`` 32), built with the runner's own
  pieces exactly as ``ploutos run`` trains it;
* the ``reference`` configuration, the design's reference setup (the stage's ``n_envs``
  4 / 8 / 16, ``n_steps`` 512, ``batch_size`` 256, ``n_epochs`` 10, ``hidden_size`` 64;
  :data:`common.REFERENCE_CONFIG`), trained the same way;
* ``cuda_ppo`` (issue 15): the ``stage`` settings trained by the ``cuda_ppo`` plugin, a
  lean PPO in plain torch whose environment, rollout and update stay on the device;
* the SB3 ``baseline``: ``PPO("MlpPolicy", env)`` with default hyperparameters over
  ``DummyVecEnv`` of 4 per-step gymnasium envs (``bench/gym_portfolio.py``).

``--envs 1024,4096,…`` measures the selected configurations (not the baseline) at each
environment count instead, one at a time, and records the peak GPU memory of each
(``torch.cuda.max_memory_allocated``): the table of docs/performance.md's GPU section.

Each model is built and warmed up (one rollout and one update, untimed), then
timed ``--repeats`` times, round-robin over all models so that load from other
processes hits every configuration alike; the table shows medians. The split
between rollout collection and the PPO update is measured in every repeat. The
peak RSS of a real ``ploutos run stage stage3`` (a short one) is measured in a
child process. Results go to ``bench/results/throughput-<host>-<device>.json``;
ratios are against the SB3 baseline. Files recorded before 2026-11-25 21:00 UTC
name the reference settings ``stage`` and the current defaults ``fast``.

Usage::

    python bench/throughput.py                 # default: 3 repeats, ~4 min on 2 cores
    python bench/throughput.py --assets 1,3,5  # + the whole-curriculum time estimate
    python bench/throughput.py --quick         # 1 repeat, small slices, ~2 min
    python bench/throughput.py --device cuda   # on a GPU machine
    python bench/throughput.py --configs stage,cuda_ppo,baseline --quick   # issue 15, CPU
    python bench/throughput.py --device cuda --assets 1,3,5 --configs gpu --no-rss \
        --variant gpu:algorithm=cuda_ppo,env_builder=torch_portfolio,batch_size=65536 \
        --envs 1024,4096,16384,65536 --steps 4194304   # the GPU table over env counts
    python bench/throughput.py --source csv --data-dir ../shared/market-data/daily
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import attrs

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    REFERENCE_CONFIG,
    SHARED_DATA,
    STAGE_CONFIG,
    STAGE_FOR_ASSETS,
    Config,
    Trainer,
    baseline_trainer,
    load_panel,
    ploutos_trainer,
    registry,
    select_configs,
    train_market,
)

RESULTS = Path(__file__).resolve().parent / "results"
#: runs the ``ploutos`` CLI with the arguments after ``-c``, then prints the process's own
#: peak RSS. VmHWM, not getrusage: Linux carries ``ru_maxrss`` across fork and exec, so a
#: child of this (large) benchmark process would report the parent's size. The CLI starts
#: no child processes of its own.
RSS_WRAPPER = (
    "import resource, sys\n"
    "from ploutos_core.cli import main\n"
    "code = main(sys.argv[1:])\n"
    "try:\n"
    "    status = open('/proc/self/status').read().split('VmHWM:')[1]\n"
    "    peak = int(status.split()[0])\n"
    "except (OSError, IndexError):\n"
    "    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
    "print(f'peak_rss_kib={peak}')\n"
    "sys.exit(code)\n"
)
CONFIG_NAMES = ("reference", "stage", "cuda_ppo", "baseline")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=None,
                        help="timed steps per repeat and configuration, rounded up to whole "
                             "rollouts (default 32768; --quick 8192)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed repeats per configuration (default 3; --quick 1)")
    parser.add_argument("--quick", action="store_true",
                        help="one short repeat per configuration; RSS probe of the stage "
                             "settings only, on a shorter run")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"),
                        help="torch device of both sides (default cpu)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads of both sides; 0 keeps torch's default "
                             "(one per core). Default 1, like 'ploutos --threads': see "
                             "docs/performance.md")
    parser.add_argument("--assets", default="1,5",
                        help="asset counts to measure: 1 → stage1, 3 → stage2, 5 → stage3 (default "
                             "1,5; 1,3,5 adds a whole-curriculum time estimate)")
    parser.add_argument("--configs", default=",".join(CONFIG_NAMES),
                        help=f"configurations to measure (default {','.join(CONFIG_NAMES)})")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME:K=V,…",
                        help="an extra configuration to name in --configs: changes to the "
                             "stage files' settings, e.g. 'f3:n_envs=64,n_epochs=3' "
                             "(repeatable)")
    parser.add_argument("--source", default="synthetic", choices=("synthetic", "csv"),
                        help="data source plugin (default synthetic)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help=f"directory of TICKER.csv for --source csv (e.g. {SHARED_DATA})")
    parser.add_argument("--seed", type=int, default=0, help="seed of data, envs and networks")
    parser.add_argument("--no-rss", action="store_true", help="skip the peak-RSS probes")
    parser.add_argument("--envs", default=None, metavar="N,N,…",
                        help="environment counts to sweep: every selected configuration but "
                             "the baseline is measured at each, one after the other, with "
                             "its peak GPU memory (docs/performance.md, GPU)")
    parser.add_argument("--out", type=Path, default=None,
                        help="JSON path (default bench/results/throughput-<host>-<device>.json)")
    args = parser.parse_args(argv)
    args.steps = args.steps or (8192 if args.quick else 32768)
    args.repeats = args.repeats or (1 if args.quick else 3)
    if args.source == "csv" and args.data_dir is None:
        args.data_dir = SHARED_DATA
    return args


def machine(device: str) -> dict[str, Any]:
    """What the numbers were measured on."""
    import numpy as np
    import stable_baselines3
    import torch

    info: dict[str, Any] = {
        "host": socket.gethostname(), "platform": platform.platform(),
        "python": platform.python_version(), "cpus": os.cpu_count(),
        "cpu_model": _cpu_model(), "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(), "numpy": np.__version__,
        "stable_baselines3": stable_baselines3.__version__, "device": device,
        "load_average_at_start": list(os.getloadavg()),
    }
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def build_trainers(args: argparse.Namespace, device: str) -> dict[tuple[int, str], Trainer]:
    """Every (asset count, configuration) model, built and warmed up."""
    reg = registry()
    configs = select_configs(args.configs, args.variant)
    wanted = args.configs.split(",")
    trainers: dict[tuple[int, str], Trainer] = {}
    for n_assets in (int(a) for a in args.assets.split(",")):
        stage = reg.stage(STAGE_FOR_ASSETS[n_assets])
        panel = load_panel(reg, stage, args.source, args.data_dir, args.seed)
        for name in wanted:
            if name == "baseline":
                trainer = baseline_trainer(train_market(reg, stage, panel), stage,
                                           seed=args.seed, device=device)
            else:
                trainer = ploutos_trainer(reg, stage, panel, configs[name], seed=args.seed,
                                          device=device)
            started = time.perf_counter()
            trainer.train(1)  # warm-up: one rollout and one update, not timed
            print(f"  built and warmed up {stage.name} {name:9s} "
                  f"({time.perf_counter() - started:.1f} s)", flush=True)
            trainers[(n_assets, name)] = trainer
    return trainers


def sweep(args: argparse.Namespace, device: str) -> list[dict[str, Any]]:
    """Every (asset count, configuration, environment count), built, warmed up and timed
    alone, with its peak device memory; rows like :func:`summarize`'s plus ``n_envs`` and
    ``peak_gpu_memory_mib``."""
    import gc

    import torch

    reg = registry()
    configs = select_configs(args.configs, args.variant)
    rows = []
    for n_assets in (int(a) for a in args.assets.split(",")):
        stage = reg.stage(STAGE_FOR_ASSETS[n_assets])
        panel = load_panel(reg, stage, args.source, args.data_dir, args.seed)
        for name, config in configs.items():
            for n_envs in (int(n) for n in args.envs.split(",")):
                swept = attrs.evolve(config, name=f"{name}@{n_envs}", n_envs=n_envs)
                if device.startswith("cuda"):
                    torch.cuda.empty_cache()
                    torch.cuda.reset_peak_memory_stats()
                try:
                    trainer = ploutos_trainer(reg, stage, panel, swept, seed=args.seed,
                                              device=device)
                    trainer.train(1)  # warm-up: one rollout and one update, not timed
                    repeats = [trainer.train(args.steps) for _ in range(args.repeats)]
                except Exception as exc:  # a refusal (DeviceError) is a result too
                    rows.append({"assets": n_assets, "stage": stage.name, "config": name,
                                 "n_envs": n_envs, "error": f"{type(exc).__name__}: {exc}"})
                    print(f"  {stage.name} {name} {n_envs:>6} envs: {exc}", flush=True)
                    continue
                peak = (torch.cuda.max_memory_allocated() / 2**20
                        if device.startswith("cuda") else None)
                for run in repeats:
                    run["load_average"] = os.getloadavg()[0]
                rates = [r["steps_per_second"] for r in repeats]
                row = {"assets": n_assets, "stage": stage.name, "config": name,
                       "n_envs": n_envs, "settings": trainer.settings,
                       "steps_per_second_median": statistics.median(rates),
                       "steps_per_second_min": min(rates), "steps_per_second_max": max(rates),
                       "update_fraction_median": statistics.median(
                           r["update_fraction"] for r in repeats),
                       "peak_gpu_memory_mib": None if peak is None else round(peak, 1),
                       "repeats": repeats}
                rows.append(row)
                print(f"  {stage.name} {name} {n_envs:>6} envs: "
                      f"{row['steps_per_second_median']:>12,.0f} steps/s, update "
                      f"{row['update_fraction_median']:.0%}"
                      + (f", peak GPU memory {peak:,.0f} MiB" if peak is not None else ""),
                      flush=True)
                del trainer
                gc.collect()
    return rows


def measure(trainers: dict[tuple[int, str], Trainer], steps: int, repeats: int
            ) -> dict[tuple[int, str], list[dict[str, float]]]:
    """Timed repeats, round-robin over the models."""
    runs: dict[tuple[int, str], list[dict[str, float]]] = {key: [] for key in trainers}
    for repeat in range(repeats):
        for key, trainer in trainers.items():
            run = trainer.train(steps)
            run["load_average"] = os.getloadavg()[0]
            runs[key].append(run)
            print(f"  repeat {repeat + 1}/{repeats} {key[0]} asset(s) {key[1]:9s} "
                  f"{run['steps_per_second']:9,.0f} steps/s  update "
                  f"{run['update_fraction']:.0%}  load {run['load_average']:.1f}", flush=True)
    return runs


def summarize(runs: dict[tuple[int, str], list[dict[str, float]]],
              trainers: dict[tuple[int, str], Trainer]) -> list[dict[str, Any]]:
    """Medians per model and ratios to the baseline of the same asset count."""
    rows = []
    for (n_assets, name), repeats in runs.items():
        rates = [r["steps_per_second"] for r in repeats]
        baseline = runs.get((n_assets, "baseline"))
        row: dict[str, Any] = {
            "assets": n_assets, "stage": STAGE_FOR_ASSETS[n_assets], "config": name,
            "settings": trainers[(n_assets, name)].settings,
            "steps_per_second_median": statistics.median(rates),
            "steps_per_second_min": min(rates), "steps_per_second_max": max(rates),
            "update_fraction_median": statistics.median(r["update_fraction"] for r in repeats),
            "repeats": repeats,
        }
        if baseline and name != "baseline":
            base_rates = [r["steps_per_second"] for r in baseline]
            row["ratio_to_baseline"] = row["steps_per_second_median"] / statistics.median(
                base_rates)
            # Paired ratios (same round of the round-robin) are less sensitive to load drift.
            row["ratio_paired_median"] = statistics.median(
                a / b for a, b in zip(rates, base_rates, strict=False))
        rows.append(row)
    return rows


def curriculum_minutes(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Minutes to train the default curriculum's steps (3 M + 5 M + 10 M) per configuration,
    from the measured medians; only when stages 1, 2 and 3 were all measured."""
    reg = registry()
    timesteps = {name: reg.stage(name).timesteps for name in STAGE_FOR_ASSETS.values()}
    estimate = {}
    for config in {row["config"] for row in rows}:
        rates = {row["stage"]: row["steps_per_second_median"] for row in rows
                 if row["config"] == config}
        if set(rates) == set(timesteps):
            estimate[config] = round(sum(timesteps[s] / rates[s] for s in rates) / 60, 1)
    return estimate


def rss_probe(stage_name: str, config: Config, args: argparse.Namespace, scale: float
              ) -> dict[str, Any]:
    """Peak RSS of a real ``ploutos run stage`` (training, checkpoints, evaluation, reports).

    The ``stage`` configuration runs the built-in stage; any other runs a copy of it with
    the configuration's settings, through ``--stage-file``.
    """
    from ploutos_core.config.stage import stage_to_toml

    reg = registry()
    stage = reg.stage(stage_name)
    with tempfile.TemporaryDirectory(prefix="ploutos-rss-") as tmp:
        name, extra = stage.name, []
        if not config.is_stage_default:
            variant = attrs.evolve(stage, name=f"{stage.name}-{config.name}", curriculum="bench",
                                   batch_envs=config.envs(stage),
                                   hyperparameters=config.hyperparameters(stage, stage.timesteps))
            stage_file = Path(tmp) / "stage.toml"
            stage_file.write_text(stage_to_toml(variant))
            name, extra = variant.name, ["--stage-file", str(stage_file)]
        if args.data_dir is not None:
            extra += ["--data-dir", str(args.data_dir)]
        # --threads as in the timed runs (0: torch's default); the CLI's own default is 1.
        cli_args = ["--threads", str(args.threads), "run", "stage", name, "--out", tmp,
                    "--source", args.source, "--seed", str(args.seed), "--scale", str(scale),
                    "--ignore-gates", "--no-progress", "--device", args.device, *extra]
        env = {**os.environ, "WANDB_MODE": "disabled", "MPLBACKEND": "Agg"}
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", RSS_WRAPPER, *cli_args],
                              capture_output=True, text=True, env=env, cwd=tmp, check=False)
    if done.returncode != 0:
        return {"stage": stage_name, "config": config.name, "error": done.stderr[-2000:]}
    peak_kib = int(done.stdout.strip().splitlines()[-1].removeprefix("peak_rss_kib="))
    timesteps = max(1, round(stage.timesteps * scale))
    return {"stage": stage_name, "config": config.name, "timesteps": timesteps,
            "n_envs": config.envs(stage), "command": " ".join(["ploutos", *cli_args]),
            "seconds": round(time.perf_counter() - started, 1),
            "peak_rss_mib": round(peak_kib / 1024, 1)}


def print_table(rows: list[dict[str, Any]], rss: list[dict[str, Any]]) -> None:
    """The human-readable summary."""
    print()
    print(f"{'assets':>6} {'config':9} {'n_envs':>6} {'steps/s (median)':>17} "
          f"{'min–max':>17} {'update share':>12} {'× baseline':>10}")
    for row in rows:
        ratio = row.get("ratio_to_baseline")
        print(f"{row['assets']:>6} {row['config']:9} {row['settings']['n_envs']:>6} "
              f"{row['steps_per_second_median']:>17,.0f} "
              f"{row['steps_per_second_min']:>8,.0f}–{row['steps_per_second_max']:<8,.0f} "
              f"{row['update_fraction_median']:>12.0%} "
              f"{(f'{ratio:.1f}×' if ratio else '—'):>10}")
    for probe in rss:
        if "error" in probe:
            print(f"peak RSS {probe['stage']} {probe['config']}: failed: {probe['error']}")
        else:
            print(f"peak RSS of 'ploutos run stage {probe['stage']}' ({probe['config']}, "
                  f"{probe['timesteps']:,} steps): {probe['peak_rss_mib']:,.0f} MiB")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; write JSON; print the table."""
    args = parse_args(argv)
    import torch

    from ploutos_core.agents.device import resolve_device

    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    info = machine(device)
    print(f"Ploutos throughput benchmark on {info['cpus']} CPUs ({info['cpu_model']}), "
          f"device {device}, torch threads {info['torch_threads']}, load "
          f"{info['load_average_at_start'][0]:.1f}", flush=True)
    started = time.perf_counter()
    if args.envs:
        rows, rss = sweep(args, device), []
    else:
        trainers = build_trainers(args, device)
        runs = measure(trainers, args.steps, args.repeats)
        rows = summarize(runs, trainers)
        rss = []
    if not args.no_rss and not args.envs:
        print("  measuring peak RSS of a short stage-3 run in a child process", flush=True)
        rss.append(rss_probe("stage3", STAGE_CONFIG, args, scale=0.001 if args.quick else 0.01))
        if not args.quick:
            rss.append(rss_probe("stage3", REFERENCE_CONFIG, args, scale=0.01))
    result = {
        "benchmark": "throughput", "issues": [8, 15],
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]),
        "machine": info, "source": args.source,
        "data_dir": str(args.data_dir) if args.data_dir else None, "seed": args.seed,
        "steps_per_repeat": args.steps, "repeats": args.repeats,
        "wall_seconds": round(time.perf_counter() - started, 1),
        "load_average_at_end": list(os.getloadavg()),
        "results": rows, "peak_rss": rss,
        "curriculum_minutes": {} if args.envs else curriculum_minutes(rows),
        "notes": "medians over repeats; warm-up excluded; steps/s counts environment steps "
                 "(all envs together) of training, rollout and update included",
    }
    from ploutos_core.runfiles.atomic import write_json

    out = args.out or RESULTS / f"throughput-{socket.gethostname()}-{device}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json(out, result)
    if args.envs:
        print(f"\nwrote {out}")
        return 0
    print_table(rows, rss)
    for config, minutes in sorted(result["curriculum_minutes"].items()):
        print(f"default curriculum (18 M steps) with {config}: {minutes:,.0f} min at these rates")
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
