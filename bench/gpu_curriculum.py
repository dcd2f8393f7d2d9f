"""The whole default curriculum trained by ``cuda_ppo``, timed end to end (issue 15).

The issue's GPU target: the default curriculum's 18 M steps (stage 1: 3 M, stage 2: 5 M,
stage 3: 10 M) in at most 3 minutes of wall time on one H100/H200, data loading and
validation included. This script writes the built-in stages as a curriculum ``gpu``
(``gpu-stage1`` … ``gpu-stage3``: the same tickers, splits, costs, steps and
hyperparameters, trained by ``cuda_ppo`` over the ``torch_portfolio`` environment, with
``--n-envs`` environments and a minibatch of ``--batch-size``), then times, in a child
process::

    ploutos run curriculum --curriculum gpu --stage-file … --device cuda --ignore-gates \\
        --no-progress --source csv --data-dir ../shared/market-data/daily

It records the wall time, each stage's steps/s (the CLI's "trained … steps at … steps/s"
lines) and validation Sharpe, and the GPU's name, in
``bench/results/gpu-curriculum-<host>-<device>.json``.

Usage::

    python bench/gpu_curriculum.py                       # on the GPU machine (defaults)
    python bench/gpu_curriculum.py --n-envs 65536 --batch-size 131072
    python bench/gpu_curriculum.py --device cpu --n-envs 128 --batch-size 1024 \\
        --scale 0.01 --source synthetic                 # a check of the script on a CPU
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import attrs

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import SHARED_DATA, STAGE_FOR_ASSETS, registry

RESULTS = Path(__file__).resolve().parent / "results"
TRAINED = re.compile(r"(\S+): trained ([\d,]+) steps at ([\d,]+) steps/s")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu", "auto"))
    parser.add_argument("--n-envs", type=int, default=16384,
                        help="environments stepped at once (default 16384)")
    parser.add_argument("--batch-size", type=int, default=65536,
                        help="PPO minibatch (default 65536; the stages' 1024 leaves a GPU "
                             "launch-bound: thousands of tiny optimiser steps per rollout)")
    parser.add_argument("--n-steps", type=int, default=None,
                        help="rollout length per environment (default: the stages' 64)")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiply every stage's timesteps (default 1: 18 M steps)")
    parser.add_argument("--source", default="csv", choices=("csv", "synthetic"))
    parser.add_argument("--data-dir", type=Path, default=None,
                        help=f"TICKER.csv directory for --source csv (default {SHARED_DATA})")
    parser.add_argument("--precision", default="float32", choices=("float32", "bfloat16"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None,
                        help="JSON path (default bench/results/gpu-curriculum-<host>-<device>"
                             ".json)")
    args = parser.parse_args(argv)
    if args.source == "csv" and args.data_dir is None:
        args.data_dir = SHARED_DATA
    return args


def write_stage_files(args: argparse.Namespace, folder: Path) -> list[Path]:
    """The built-in stages as the curriculum ``gpu``, one stage file each."""
    from ploutos_core.config.stage import stage_to_toml

    reg = registry()
    files = []
    for name in STAGE_FOR_ASSETS.values():
        stage = reg.stage(name)
        hp = attrs.evolve(stage.hyperparameters, batch_size=args.batch_size,
                          n_steps=args.n_steps or stage.hyperparameters.n_steps)
        gpu = attrs.evolve(stage, name=f"gpu-{stage.name}", curriculum="gpu",
                           algorithm="cuda_ppo", env_builder="torch_portfolio",
                           batch_envs=args.n_envs, hyperparameters=hp,
                           algorithm_options={"precision": args.precision})
        path = folder / f"gpu-{stage.name}.toml"
        path.write_text(stage_to_toml(gpu))
        files.append(path)
    return files


def machine(device: str) -> dict[str, Any]:
    """What the run was measured on."""
    import torch

    info: dict[str, Any] = {"host": socket.gethostname(), "cpus": os.cpu_count(),
                            "torch": torch.__version__, "device": device,
                            "load_average_at_start": list(os.getloadavg())}
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["gpu_memory_gib"] = round(torch.cuda.get_device_properties(0).total_memory
                                       / 2**30, 1)
    return info


def main(argv: list[str] | None = None) -> int:
    """Write the stage files, time the curriculum, write JSON."""
    args = parse_args(argv)
    from ploutos_core.agents.device import resolve_device

    device = resolve_device(args.device)
    info = machine(device)
    with tempfile.TemporaryDirectory(prefix="ploutos-gpu-curriculum-") as tmp:
        folder = Path(tmp)
        stage_files = write_stage_files(args, folder)
        cli = ["run", "curriculum", "--curriculum", "gpu", "--out", str(folder / "run"),
               "--device", device, "--source", args.source, "--seed", str(args.seed),
               "--scale", str(args.scale), "--ignore-gates", "--no-progress",
               "--logger", "jsonl"]
        for path in stage_files:
            cli += ["--stage-file", str(path)]
        if args.data_dir is not None:
            cli += ["--data-dir", str(args.data_dir)]
        env = {**os.environ, "WANDB_MODE": "disabled", "MPLBACKEND": "Agg"}
        print("ploutos " + " ".join(cli), flush=True)
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "ploutos_core.cli", *cli], env=env,
                              capture_output=True, text=True, check=False, cwd=tmp)
        wall = time.perf_counter() - started
        stages = []
        for match in TRAINED.finditer(done.stdout):
            name = match.group(1)
            report = folder / "run" / "reports" / name / "validation.json"
            sharpe = None
            if report.is_file():
                sharpe = json.loads(report.read_text())["agent"]["sharpe"]
            stages.append({"stage": name, "steps": int(match.group(2).replace(",", "")),
                           "steps_per_second": int(match.group(3).replace(",", "")),
                           "validation_sharpe": sharpe})
        toml = {path.name: path.read_text() for path in stage_files}
    result = {
        "benchmark": "gpu-curriculum", "issue": 15,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]),
        "cli": "ploutos " + " ".join(cli), "machine": info, "exit_code": done.returncode,
        "wall_seconds": round(wall, 1), "stages": stages,
        "steps_total": sum(s["steps"] for s in stages),
        "load_average_at_end": list(os.getloadavg()), "stage_files": toml,
        "stdout_tail": done.stdout[-4000:], "stderr_tail": done.stderr[-4000:],
    }
    from ploutos_core.runfiles.atomic import write_json

    out = args.out or RESULTS / f"gpu-curriculum-{socket.gethostname()}-{device}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json(out, result)
    for stage in stages:
        print(f"{stage['stage']}: {stage['steps']:,} steps at {stage['steps_per_second']:,} "
              f"steps/s, validation Sharpe {stage['validation_sharpe']}")
    print(f"exit code {done.returncode}; wall time {wall:,.1f} s for "
          f"{result['steps_total']:,} steps (data, training, validation, reports)")
    if done.returncode:
        print(done.stderr[-2000:])
    print(f"wrote {out}")
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
