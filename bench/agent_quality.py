"""Agent quality of a curriculum configuration: 3 seeds, validation, against the benchmark.

Every configuration of ``bench/agent_quality.toml`` is the built-in curriculum with
some settings changed. For each seed it runs, through the real CLI,

    ploutos run curriculum --source csv --data-dir … --stage-file <config>.toml
        --curriculum <config> --seed S --ignore-gates

(and, with ``--scratch``, the last stage from scratch with the curriculum's total
steps; a configuration whose last stage is another's, ``scratch_from`` in the TOML,
takes that one's scratch arm from its result file instead of training it again), then
reads every stage's ``reports/<stage>/validation.json``. Per stage it
reports the median and spread over seeds of the agent's validation Sharpe, max
drawdown, daily turnover and costs paid, beside the benchmark (1/N rebalanced; SPY
buy-and-hold for one asset), the volatility-targeted 1/N and the *untrained* policy
of the same configuration — the question every learning benchmark answers is
"better than untrained and than 1/N?". Results go to
``bench/results/agent-quality/<config>.json``; ``--table`` prints the table of
``docs/agent-quality.md`` from every result file.

Usage::

    python bench/agent_quality.py --config shipped              # the stage files as shipped
    python bench/agent_quality.py --config tilt --scale 0.25    # a screening run
    python bench/agent_quality.py --config tilt --scratch --reuse  # add the scratch arm
    python bench/agent_quality.py --table
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime as dt
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = Path(__file__).resolve().parent / "agent_quality.toml"
RESULTS = Path(__file__).resolve().parent / "results" / "agent-quality"
SHARED_DATA = ROOT.parent / "shared" / "market-data" / "daily"
PLOUTOS = [sys.executable, "-m", "ploutos_core.cli"]
DEFAULT_SEEDS = "0,1,2"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", action="append", default=[],
                        help="configuration name in bench/agent_quality.toml (repeatable)")
    parser.add_argument("--seeds", default=DEFAULT_SEEDS,
                        help="comma-separated seeds (default 0,1,2)")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiply every stage's timesteps (1: the stages' full budgets)")
    parser.add_argument("--scratch", action="store_true",
                        help="also train the last stage from scratch with the curriculum's "
                             "total steps (the curriculum-vs-scratch question)")
    parser.add_argument("--jobs", type=int, default=2, help="runs at once (default 2)")
    parser.add_argument("--data-dir", type=Path, default=SHARED_DATA)
    parser.add_argument("--work", type=Path, default=Path("/tmp/ploutos-agent-quality"),
                        help="where the runs' directories go (not the repository)")
    parser.add_argument("--table", action="store_true", help="print the table of every result")
    parser.add_argument("--stages", type=int, default=None,
                        help="train only the first N stages (a quick screen; default: all)")
    parser.add_argument("--collect", action="store_true",
                        help="only read the reports of runs already in --work (no training)")
    parser.add_argument("--reuse", action="store_true",
                        help="keep the arms already finished in --work (their *_seconds file "
                             "exists) and train only the missing ones, e.g. add --scratch later")
    return parser.parse_args(argv)


# --- configurations ---------------------------------------------------------------------


def merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``changes`` merged in, tables recursively."""
    out = dict(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


#: the configuration that is the built-in stage files as shipped: trained without a stage
#: file, exactly as ``ploutos run curriculum`` trains them.
SHIPPED = "shipped"


#: what issue 11 changed in the built-in stages: every configuration but ``shipped``
#: starts from the built-in stages with these as they were before issue 11 — the whole
#: ``env`` table at the stage schema's defaults, no ``transfer`` or ``universe``, and the
#: seed's step budgets — so a configuration means the same whatever the stages ship today
#: (round 6 shipped ``exposure``; a field the stages ship later must not leak into the
#: configurations measured before it).
ISSUE_11_TABLES = ("env", "transfer", "universe")
FIRST_BUILD_TIMESTEPS = {"stage1": 3_000_000, "stage2": 5_000_000, "stage3": 10_000_000}


def base_table(stage: Any) -> dict[str, Any]:
    """A built-in stage as a TOML table, without issue 11's choices."""
    from ploutos_core.config.stage import StageSpec, stage_to_dict

    table = stage_to_dict(stage)
    defaults = stage_to_dict(StageSpec(name="x", tickers=("X",), timesteps=1))
    table.update({key: defaults[key] for key in ISSUE_11_TABLES})
    table["timesteps"] = FIRST_BUILD_TIMESTEPS[stage.name]
    return table


def stage_tables(name: str) -> list[dict[str, Any]]:
    """The built-in stages with configuration ``name``'s changes, as TOML tables
    (``shipped``: the built-in stages exactly as they are)."""
    from ploutos_core import get_plugin_manager
    from ploutos_core.config.stage import stage_to_dict
    from ploutos_core.pluginmanager.registry import Registry

    config = tomllib.loads(CONFIGS.read_text())["config"][name]
    registry = Registry(get_plugin_manager())
    tables = []
    for stage in registry.curriculum("default"):
        base = stage_to_dict(stage) if name == SHIPPED else base_table(stage)
        table = merge(base, config.get("all", {}))
        table = merge(table, config.get(stage.name, {}))
        if name != SHIPPED:
            table.update(name=f"{stage.name}-{name}", curriculum=f"aq-{name}")
        tables.append(table)
    return tables


#: what does not enter the scratch arm's training of a last stage: its names, and what it
#: takes from a previous stage's model (the scratch arm starts from a fresh policy)
NAMING_FIELDS = ("name", "curriculum", "description", "transfer")


def scratch_source(name: str) -> str | None:
    """The configuration whose scratch arm configuration ``name`` shares
    (``scratch_from`` in bench/agent_quality.toml), or None when it trains its own."""
    source: str | None = tomllib.loads(CONFIGS.read_text())["config"][name].get("scratch_from")
    return source


def check_scratch_source(name: str) -> str | None:
    """``scratch_source(name)``, after checking that its last stage trains exactly what
    ``name``'s does: the scratch arm trains only the last stage, from a fresh policy, so
    with the same table (what it would take from a previous stage aside), seed and total
    steps it is the same training and is taken from the source's results.

    :raises ValueError: when the two last stages or total step budgets differ.
    """
    source = scratch_source(name)
    if source is None:
        return None
    mine, theirs = stage_tables(name), stage_tables(source)

    def training(table: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in table.items() if k not in NAMING_FIELDS}

    if training(mine[-1]) != training(theirs[-1]):
        raise ValueError(f"{name}: scratch_from = {source!r}, but their last stages differ; "
                         "train its own scratch arm")
    if sum(t["timesteps"] for t in mine) != sum(t["timesteps"] for t in theirs):
        raise ValueError(f"{name}: scratch_from = {source!r}, but their curricula have "
                         "different total steps, so their scratch arms train different "
                         "budgets; train its own scratch arm")
    return source


def borrowed_scratch(source: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """Seed ``seed``'s scratch arm from configuration ``source``'s result file (same
    seeds option and scale), marked with where it came from.

    :raises RuntimeError: when that file or its scratch arm for ``seed`` is missing.
    """
    path = RESULTS / f"{label(args, source)}-x{args.scale:g}.json"
    runs = json.loads(path.read_text())["runs"] if path.exists() else []
    for record in runs:
        if record["seed"] == seed and "scratch" in record:
            return {**record["scratch"], "from": source}
    raise RuntimeError(f"no scratch arm for seed {seed} in {path}: run "
                       f"--config {source} --scratch first")


def write_stage_file(name: str, path: Path) -> list[dict[str, Any]]:
    """Write configuration ``name`` as a stage file; return its tables."""
    import tomli_w

    tables = stage_tables(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(tomli_w.dumps({"stage": tables}))
    return tables


# --- runs -------------------------------------------------------------------------------


def run(command: list[str], log: Path) -> float:
    """Run ``command``, logging to ``log``; return its wall time.

    :raises RuntimeError: when it fails.
    """
    started = time.perf_counter()
    env = {**os.environ, "WANDB_MODE": "disabled", "PYTHONUNBUFFERED": "1"}
    with log.open("w") as handle:
        code = subprocess.call(command, stdout=handle, stderr=subprocess.STDOUT, env=env,
                               cwd=ROOT)
    if code != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({code}); see {log}")
    return time.perf_counter() - started


def stage_record(report_dir: Path) -> dict[str, Any]:
    """The numbers of one stage's validation report."""
    report = json.loads((report_dir / "validation.json").read_text())
    baselines = {b["name"]: b for b in report["baselines"]}
    tickers = [n.removeprefix("buy_and_hold_") for n in baselines if n.startswith("buy_and_hold")]
    bench = baselines["equal_weight_rebalanced" if len(tickers) > 1
                      else f"buy_and_hold_{tickers[0]}"]
    agent = report["agent"]
    best_hold = max((b for n, b in baselines.items() if n.startswith("buy_and_hold")),
                    key=lambda b: b["sharpe"])
    return {
        "sharpe": agent["sharpe"], "max_drawdown": agent["max_drawdown"],
        "turnover": agent["average_daily_turnover"], "costs": agent["costs_paid"],
        "cagr": agent["cagr"],
        "benchmark_sharpe": bench["sharpe"], "benchmark_max_drawdown": bench["max_drawdown"],
        "vol_target_sharpe": baselines["volatility_targeted_equal_weight"]["sharpe"],
        "best_buy_and_hold": best_hold["name"], "best_buy_and_hold_sharpe": best_hold["sharpe"],
        "psr_vs_best": report["comparison"]["probabilistic_sharpe_vs_best_baseline"],
    }


# Seeding sets torch's global generator: two threads building policies at once would
# draw from each other's stream, so the untrained policies are built one at a time.
UNTRAINED_LOCK = threading.Lock()


def untrained_record(stage_file: Path, stage: str, seed: int, data_dir: Path) -> dict[str, Any]:
    """The untrained policy of the configuration, evaluated like a trained one."""
    with UNTRAINED_LOCK:
        return _untrained_record(stage_file, stage, seed, data_dir)


def _untrained_record(stage_file: Path, stage: str, seed: int, data_dir: Path
                      ) -> dict[str, Any]:
    from ploutos_core import get_plugin_manager
    from ploutos_core.agents.contract import TrainingSetup
    from ploutos_core.data.stage_data import DataOptions, load_stage_panel
    from ploutos_core.env.base import EnvRequest
    from ploutos_core.evaluation.evaluate import evaluate_agent
    from ploutos_core.pluginmanager.registry import Registry

    pm = get_plugin_manager()
    registry = Registry(pm)
    from ploutos_core.config.stage import StageSpec

    spec = (registry.stage(stage) if stage in registry.all("stages")
            else next(s for s in StageSpec.from_toml(stage_file) if s.name == stage))
    panel = load_stage_panel(registry.data_source("csv"), spec,
                             DataOptions(source="csv", data_dir=data_dir))
    env = registry.env_builder(spec.env_builder).build(
        EnvRequest(panel=panel, stage=spec, n_envs=2, seed=seed))
    agent = registry.algorithm(spec.algorithm).build(
        env, TrainingSetup(hyperparameters=spec.hyperparameters, seed=seed))
    result = evaluate_agent(agent, registry, spec, panel, "validation", model="untrained")
    return {"sharpe": result.agent.summary.sharpe,
            "turnover": result.agent.average_turnover}


POOL = Path(__file__).resolve().parent / "stock_pool.txt"


def verdict_record(model: Path, stage_files: list[Path], args: argparse.Namespace
                   ) -> dict[str, Any]:
    """The last stage's model on 20 sets of its size drawn from bench/stock_pool.txt over
    validation, each beside 1/N (issue 11's verdict with less noise); cached beside the
    model."""
    cache = model.with_suffix(".verdict.json")
    if cache.exists():
        cached: dict[str, Any] = json.loads(cache.read_text())
        if "share_won_vs_vol_target" in cached:  # older caches lack the rule's column
            return cached
    import ploutos
    from ploutos_core.cli.evaluate_cmd import parse_pool

    registry = ploutos.make_registry(stage_files=stage_files)
    verdict = ploutos.evaluate_universes(model, pool=parse_pool(f"@{POOL}"), sets=20,
                                         source="csv", data_dir=args.data_dir, out_dir=None,
                                         registry=registry)
    summary: dict[str, Any] = verdict.to_dict()["summary"]
    cache.write_text(json.dumps(summary))
    return summary


def label(args: argparse.Namespace, name: str) -> str:
    """The configuration's name, with ``-stagesN`` for a screen of the first N stages and
    ``-seedsA,B,C`` for seeds other than the default 0, 1, 2."""
    seeds = "" if args.seeds == DEFAULT_SEEDS else f"-seeds{args.seeds}"
    return name + (f"-stages{args.stages}" if args.stages else "") + seeds


def seed_dir(args: argparse.Namespace, name: str, seed: int) -> Path:
    """Where one seed's runs of a configuration go."""
    return args.work / label(args, name) / f"seed{seed}"


def run_seed(name: str, seed: int, args: argparse.Namespace, tables: list[dict[str, Any]],
             stage_file: Path) -> dict[str, Any]:
    """One seed of one configuration: the curriculum, and the scratch arm if asked."""
    out = seed_dir(args, name, seed)
    stage_file_option = [] if name == SHIPPED else ["--stage-file", str(stage_file)]
    common = ["--source", "csv", "--data-dir", str(args.data_dir), *stage_file_option,
              "--seed", str(seed), "--ignore-gates", "--no-progress", "--overwrite"]
    out.mkdir(parents=True, exist_ok=True)
    selection = ["--stages", f"1-{len(tables)}"]
    curriculum = "default" if name == SHIPPED else f"aq-{name}"
    if not (args.reuse and (out / "curriculum_seconds").exists()):
        seconds = run([*PLOUTOS, "run", "curriculum", "--curriculum", curriculum, *selection,
                       "--scale", str(args.scale), "--out", str(out / "curriculum"), *common],
                      out / "curriculum.log")
        (out / "curriculum_seconds").write_text(f"{seconds:.1f}")
    borrowed = scratch_source(name) is not None  # its scratch arm is another config's
    if args.scratch and not borrowed and not (args.reuse and (out / "scratch_seconds").exists()):
        last = tables[-1]
        total = sum(t["timesteps"] for t in tables)
        scale = args.scale * total / last["timesteps"]
        seconds = run([*PLOUTOS, "run", "stage", last["name"], "--scale", f"{scale:.6f}",
                       "--out", str(out / "scratch"), *common], out / "scratch.log")
        (out / "scratch_seconds").write_text(f"{seconds:.1f}")
    return collect_seed(name, seed, args, tables, stage_file)


def collect_seed(name: str, seed: int, args: argparse.Namespace,
                 tables: list[dict[str, Any]], stage_file: Path) -> dict[str, Any]:
    """The numbers of one seed's finished runs (and its untrained policies)."""
    out = seed_dir(args, name, seed)

    def seconds(arm: str) -> float | None:
        path = out / f"{arm}_seconds"
        return float(path.read_text()) if path.exists() else None

    record: dict[str, Any] = {"seed": seed, "curriculum_seconds": seconds("curriculum"),
                              "stages": {}}
    for table in tables:
        stage = table["name"]
        record["stages"][stage] = {
            **stage_record(out / "curriculum" / "reports" / stage),
            "untrained": untrained_record(stage_file, stage, seed, args.data_dir),
        }
    last = tables[-1]["name"]
    record["verdict"] = verdict_record(out / "curriculum" / "models" / f"{last}_final.zip",
                                       [] if name == SHIPPED else [stage_file], args)
    scratch = out / "scratch" / "reports" / tables[-1]["name"]
    source = scratch_source(name)
    if source is not None and args.scratch:
        record["scratch"] = borrowed_scratch(source, seed, args)
    elif (scratch / "validation.json").exists():
        scratch_model = out / "scratch" / "models" / f"{last}_final.zip"
        record["scratch"] = {**stage_record(scratch), "seconds": seconds("scratch"),
                             "verdict": verdict_record(
                                 scratch_model, [] if name == SHIPPED else [stage_file], args)}
    return record


# --- summaries --------------------------------------------------------------------------


def spread(values: list[float]) -> dict[str, Any]:
    """Median, min, max and the values."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "values": values}


def summarize(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Per stage, the median and spread over seeds of every number."""
    summary: dict[str, Any] = {}
    stages = list(records[0]["stages"])
    for stage in stages:
        rows = [r["stages"][stage] for r in records]
        keys = [k for k, v in rows[0].items() if isinstance(v, (int, float))]
        summary[stage] = {k: spread([float(r[k]) for r in rows]) for k in keys}
        summary[stage]["untrained_sharpe"] = spread([r["untrained"]["sharpe"] for r in rows])
        summary[stage]["beats_benchmark"] = sum(r["sharpe"] >= r["benchmark_sharpe"]
                                                for r in rows)
    if "verdict" in records[0]:
        summary["verdict_median_difference"] = spread(
            [r["verdict"]["median_difference"] for r in records])
        summary["verdict_share_won"] = spread([r["verdict"]["share_won"] for r in records])
        summary["verdict_vs_rule_median_difference"] = spread(
            [r["verdict"]["median_difference_vs_vol_target"] for r in records])
        summary["verdict_vs_rule_share_won"] = spread(
            [r["verdict"]["share_won_vs_vol_target"] for r in records])
    if "scratch" in records[0]:
        last = stages[-1]
        diffs = [r["stages"][last]["sharpe"] - r["scratch"]["sharpe"] for r in records]
        summary["curriculum_minus_scratch"] = spread(diffs)
        summary["scratch_sharpe"] = spread([r["scratch"]["sharpe"] for r in records])
        summary["scratch_verdict_median_difference"] = spread(
            [r["scratch"]["verdict"]["median_difference"] for r in records])
        summary["scratch_verdict_share_won"] = spread(
            [r["scratch"]["verdict"]["share_won"] for r in records])
        summary["scratch_verdict_vs_rule_median_difference"] = spread(
            [r["scratch"]["verdict"]["median_difference_vs_vol_target"] for r in records])
        summary["scratch_verdict_vs_rule_share_won"] = spread(
            [r["scratch"]["verdict"]["share_won_vs_vol_target"] for r in records])
    return summary


def fmt(cell: dict[str, Any], pct: bool = False) -> str:
    """``0.71 (0.55…0.90)``."""
    scale, unit = (100, " %") if pct else (1, "")
    return (f"{cell['median'] * scale:.2f}{unit} ({cell['min'] * scale:.2f}…"
            f"{cell['max'] * scale:.2f})")


def print_verdict(data: dict[str, Any], key: str, label: str) -> None:
    """The table row of a sub-universe verdict (``<key>_median_difference`` and
    ``<key>_share_won`` of the summary), when the result has one."""
    summary = data["summary"]
    if f"{key}_share_won" not in summary:
        return
    rule = ""  # against the volatility-targeted 1/N, where the result has it
    if f"{key}_vs_rule_share_won" in summary:
        rule = (f"Sharpe − it {fmt(summary[f'{key}_vs_rule_median_difference'])}, won "
                f"{fmt(summary[f'{key}_vs_rule_share_won'], pct=True)}")
    print(f"| {data.get('label', data['config'])} | {data['scale']} | {label} | "
          f"Sharpe − 1/N {fmt(summary[f'{key}_median_difference'])} | | | {rule} | | | | "
          f"sets won {fmt(summary[f'{key}_share_won'], pct=True)} |")


def print_table() -> None:
    """One Markdown row per configuration and stage, from every result file."""
    print("| config | scale | stage | agent Sharpe (min…max) | untrained | benchmark | "
          "vol-target 1/N | max DD agent / bench | turnover/day | costs | seeds ≥ bench |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for path in sorted(RESULTS.glob("*.json")):
        data = json.loads(path.read_text())
        for stage, row in data["summary"].items():
            if not isinstance(row, dict) or "sharpe" not in row:
                continue
            print(f"| {data.get('label', data['config'])} | {data['scale']} | "
                  f"{stage.split('-')[0]} | "
                  f"{fmt(row['sharpe'])} | {row['untrained_sharpe']['median']:.2f} | "
                  f"{row['benchmark_sharpe']['median']:.2f} | "
                  f"{row['vol_target_sharpe']['median']:.2f} | "
                  f"{row['max_drawdown']['median']:.2f} / "
                  f"{row['benchmark_max_drawdown']['median']:.2f} | "
                  f"{fmt(row['turnover'], pct=True)} | {fmt(row['costs'], pct=True)} | "
                  f"{row['beats_benchmark']}/{len(row['sharpe']['values'])} |")
        print_verdict(data, "verdict", "stage3 on 20 stock sets")
        if "curriculum_minus_scratch" in data["summary"]:
            diff = data["summary"]["curriculum_minus_scratch"]
            source = data["runs"][0]["scratch"].get("from")
            arm = f"curriculum − scratch (scratch arm: {source}'s)" if source else \
                "curriculum − scratch"
            print(f"| {data.get('label', data['config'])} | {data['scale']} | {arm} | "
                  f"{fmt(diff)} | | | | | | | "
                  f"{sum(v > 0 for v in diff['values'])}/{len(diff['values'])} |")
        print_verdict(data, "scratch_verdict", "scratch stage3 on 20 stock sets")


def main(argv: list[str] | None = None) -> int:
    """Run every (configuration, seed) in one pool; write each configuration's JSON."""
    args = parse_args(argv)
    if args.table:
        print_table()
        return 0
    seeds = [int(s) for s in args.seeds.split(",")]
    configs = tomllib.loads(CONFIGS.read_text())["config"]
    for name in args.config:
        check_scratch_source(name)  # before any training
    files = {name: args.work / name / "stages.toml" for name in args.config}
    tables = {name: write_stage_file(name, path)[:args.stages] for name, path in files.items()}
    jobs = [(name, seed) for name in args.config for seed in seeds]
    started = time.perf_counter()

    def one(job: tuple[str, int]) -> dict[str, Any]:
        name, seed = job
        if args.collect:
            return collect_seed(name, seed, args, tables[name], files[name])
        return run_seed(name, seed, args, tables[name], files[name])

    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        records = dict(zip(jobs, pool.map(one, jobs), strict=True))
    elapsed = round(time.perf_counter() - started, 1)
    for name in args.config:
        out = RESULTS / f"{label(args, name)}-x{args.scale:g}.json"
        wall: float | None = elapsed
        if args.collect:  # collecting times nothing: keep the wall time of the run itself
            wall = json.loads(out.read_text()).get("wall_seconds") if out.exists() else None
        result = {
            "benchmark": "agent-quality", "issue": 11, "config": name,
            "label": label(args, name),
            "description": configs[name].get("description", ""), "changes": configs[name],
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "host": socket.gethostname(), "cpus": os.cpu_count(), "scale": args.scale,
            "seeds": seeds, "wall_seconds": wall,
            "summary": summarize([records[(name, seed)] for seed in seeds]),
            "runs": [records[(name, seed)] for seed in seeds],
        }
        RESULTS.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2))
        print(f"wrote {out}")
    print_table()
    return 0


if __name__ == "__main__":
    sys.exit(main())
