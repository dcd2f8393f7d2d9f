"""Shared pieces of the benchmarks: data, configurations, and how each side is built and trained.

Configurations: ``stage`` (the stage files as they are, what ``ploutos run`` trains),
``reference`` (the design's reference setup, the stages' settings before issue 8) and
``baseline`` (stable-baselines3 defaults); ``--variant`` adds more. Result files
recorded before 2026-11-25 21:00 UTC name the reference settings ``stage`` and the
current defaults ``fast``; every result row records its full settings.

Ploutos configurations are built with the runner's own pieces (registry, env
builder, algorithm plugin, :func:`ploutos_core.training.runner.fit_to_budget`) and trained
through :meth:`Agent.learn` with a :class:`~ploutos_core.training.StageMonitor`,
as ``ploutos run`` trains them (minus checkpoint files and progress bars). The
SB3 baseline is ``PPO("MlpPolicy", env)`` with every default, over
``make_vec_env(PortfolioGymEnv, n_envs=4)`` (``DummyVecEnv`` + ``Monitor``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
from gym_portfolio import PortfolioGymEnv

from ploutos_core import Registry, StageSpec, get_plugin_manager
from ploutos_core.agents.contract import Agent, TrainingSetup
from ploutos_core.config.stage import Hyperparameters
from ploutos_core.data.panel import Panel
from ploutos_core.data.stage_data import DataOptions, load_stage_panel
from ploutos_core.env.base import EnvRequest
from ploutos_core.env.market import MarketArrays
from ploutos_core.training.builder import fit_to_budget
from ploutos_core.training.monitor import StageMonitor

os.environ.setdefault("WANDB_MODE", "disabled")

#: asset count → the built-in stage measured for it.
STAGE_FOR_ASSETS = {1: "stage1", 3: "stage2", 5: "stage3"}
#: environments of the SB3 baseline (issue 8: "DummyVecEnv with 4 envs").
BASELINE_ENVS = 4
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "market-data" / "daily"


@attrs.frozen
class Config:
    """One Ploutos training configuration, as changes to a stage.

    :param name: label in tables and JSON.
    :param n_envs: environments (``ploutos run --n-envs``); ``None``: what ``ploutos run``
        steps for the stage (:meth:`StageSpec.environments`: ``batch_envs``, else ``n_envs``).
    :param design_envs: with ``n_envs`` ``None``, run the stage's ``n_envs`` (the design's
        reference figure, 4 / 8 / 16) instead of its ``batch_envs``.
    :param changes: ``(name, value)`` hyperparameters replacing the stage's (empty: the
        stage's own).
    :param algorithm: the algorithm plugin instead of the stage's (``ppo``).
    :param env_builder: the env builder instead of the stage's (``portfolio``).
    """

    name: str
    n_envs: int | None = None
    design_envs: bool = False
    changes: tuple[tuple[str, Any], ...] = ()
    algorithm: str | None = None
    env_builder: str | None = None

    def hyperparameters(self, stage: StageSpec, timesteps: int) -> Hyperparameters:
        """The stage's hyperparameters with :attr:`changes`, fitted to ``timesteps``
        exactly as the runner fits them."""
        hp = attrs.evolve(stage.hyperparameters, **dict(self.changes))
        return fit_to_budget(hp, timesteps, self.envs(stage))

    def envs(self, stage: StageSpec) -> int:
        """Environments this configuration runs for ``stage``."""
        if self.n_envs is None and self.design_envs:
            return stage.n_envs
        return stage.environments(self.n_envs)

    @property
    def is_stage_default(self) -> bool:
        """Whether this is exactly what ``ploutos run`` trains (no changes to the stage)."""
        return (self.n_envs is None and not self.design_envs and not self.changes
                and self.algorithm is None and self.env_builder is None)


#: the stage files as they are, what ``ploutos run`` trains: ``batch_envs`` (128)
#: environments, ``n_steps`` 64, ``batch_size`` 1024, ``n_epochs`` 4, ``hidden_size`` 32.
#: Results recorded before 2026-11-25T21:00Z call these settings ``fast``.
STAGE_CONFIG = Config("stage")
#: the design's reference setup (the stages' settings before issue 8): the stage's
#: ``n_envs`` (4 / 8 / 16), ``n_steps`` 512, ``batch_size`` 256, ``n_epochs`` 10,
#: ``hidden_size`` 64. Results recorded before 2026-11-25T21:00Z call these ``stage``.
REFERENCE_CONFIG = Config("reference", design_envs=True,
                          changes=(("n_steps", 512), ("batch_size", 256), ("n_epochs", 10),
                                   ("hidden_size", 64)))
#: issue 15: the stage files' settings trained by the ``cuda_ppo`` plugin (plain torch,
#: environment and rollout on the device) instead of SB3's ``ppo``; the NumPy env the
#: stage builds moves to the device when training starts, as in ``ploutos run``.
CUDA_PPO_CONFIG = Config("cuda_ppo", algorithm="cuda_ppo")
#: the configurations known by name (besides ``baseline`` and ``--variant``s).
CONFIGS = {c.name: c for c in (REFERENCE_CONFIG, STAGE_CONFIG, CUDA_PPO_CONFIG)}
#: ``--variant`` keys whose values are names, not numbers.
NAMED_CHANGES = ("algorithm", "env_builder")


def parse_variant(spec: str) -> Config:
    """``NAME:key=value,key=value`` → a :class:`Config` (``n_envs``, any hyperparameter,
    ``algorithm`` and ``env_builder``).

    Changes apply to the stage files' current settings (:data:`STAGE_CONFIG`). For
    exploring alternatives from the command line (``--variant``) without editing code,
    e.g. ``gpu:algorithm=cuda_ppo,env_builder=torch_portfolio,batch_size=65536``.
    """
    name, _, body = spec.partition(":")
    values: dict[str, Any] = {}
    named: dict[str, str] = {}
    for item in filter(None, body.split(",")):
        key, _, raw = item.partition("=")
        key = key.strip()
        if key in NAMED_CHANGES:
            named[key] = raw.strip()
        else:
            values[key] = float(raw) if any(c in raw for c in ".e") else int(raw)
    n_envs = values.pop("n_envs", None)
    return Config(name, n_envs=n_envs, changes=tuple(values.items()), **named)


def select_configs(names: str, variants: list[str]) -> dict[str, Config]:
    """The configurations named in ``names`` (``reference``, ``stage`` or a ``--variant``'s
    name; ``baseline`` is left to the caller).

    :raises SystemExit: for an unknown name (``fast`` was renamed ``stage`` when the stages
        adopted it).
    """
    known = dict(CONFIGS)
    known.update((c.name, c) for c in map(parse_variant, variants))
    selected = {}
    for name in names.split(","):
        if name == "baseline":
            continue
        if name not in known:
            hint = (" ('fast' is now the stage files' default: use 'stage'; the old stage "
                    "settings are 'reference')" if name == "fast" else "")
            raise SystemExit(f"unknown configuration {name!r}; known: "
                             f"{', '.join([*known, 'baseline'])}{hint}")
        selected[name] = known[name]
    return selected


def registry() -> Registry:
    """A registry over a fresh plugin manager, as the CLI builds it."""
    return Registry(get_plugin_manager())


def load_panel(reg: Registry, stage: StageSpec, source: str, data_dir: Path | None,
               seed: int) -> Panel:
    """The stage's prices through the validation split, as the runner loads them."""
    options = DataOptions(source=source, data_dir=data_dir, seed=seed,
                          cache_dir=Path(os.environ.get("TMPDIR", "/tmp")) / "ploutos-bench")
    return load_stage_panel(reg.data_source(source), stage, options, through="validation")


def train_market(reg: Registry, stage: StageSpec, panel: Panel) -> MarketArrays:
    """The train split's arrays, built as the portfolio env builder builds them."""
    return MarketArrays.for_split(panel, stage, "train")


def _monitor(agent: Agent) -> StageMonitor:
    """The runner's monitor without checkpoint files or progress bar."""
    return StageMonitor(agent=agent, checkpoint_path=lambda steps: Path("unused"),
                        checkpoint_every=10**12, save=lambda agent, path: None,
                        on_checkpoint=lambda path, steps: None)


class Trainer:
    """One model being trained in timed slices; :attr:`model` is the SB3 algorithm.

    Every call of :meth:`train` continues the same model, so warm-up (first
    rollout, torch's lazy initialisation) is paid once, outside the timing.

    :param model: the SB3 algorithm (its ``train()`` is wrapped to time the update).
    :param learn: ``learn(target)`` trains until ``model.num_timesteps >= target``.
    :param settings: what is being measured, for the JSON.
    :param env: the training VecEnv.
    :param agent: the Ploutos :class:`Agent` wrapping ``model``, if any (for evaluation).
    """

    def __init__(self, model: Any, learn: Callable[[int], None], settings: dict[str, Any],
                 env: Any, agent: Agent | None = None) -> None:
        self.model = model
        self.agent = agent
        self._learn = learn
        self.settings = settings
        self.env = env
        self.update_seconds = 0.0
        self._time_updates()

    def _time_updates(self) -> None:
        """Wrap the SB3 model's ``train()`` to add each update's time to
        :attr:`update_seconds`."""
        original = self.model.train

        def timed_train() -> None:
            started = time.perf_counter()
            original()
            self.update_seconds += time.perf_counter() - started

        self.model.train = timed_train

    @property
    def rollout_size(self) -> int:
        """Steps collected between two updates."""
        return int(self.model.n_steps * self.model.n_envs)

    def train(self, steps: int) -> dict[str, float]:
        """Train at least ``steps`` more (whole rollouts); return steps, seconds, split."""
        start_steps = int(self.model.num_timesteps)
        self.update_seconds = 0.0
        target = start_steps + max(steps, 1)
        started = time.perf_counter()
        self._learn(target)
        seconds = time.perf_counter() - started
        done = int(self.model.num_timesteps) - start_steps
        return {"steps": done, "seconds": seconds, "steps_per_second": done / seconds,
                "update_fraction": self.update_seconds / seconds}


def ploutos_trainer(reg: Registry, stage: StageSpec, panel: Panel, config: Config, *,
                    seed: int, device: str, timesteps: int | None = None) -> Trainer:
    """A Ploutos agent for ``stage`` under ``config``, built as the runner builds it."""
    budget = timesteps or stage.timesteps
    n_envs = config.envs(stage)
    hp = config.hyperparameters(stage, budget)
    algorithm = config.algorithm or stage.algorithm
    builder = config.env_builder or stage.env_builder
    env = reg.env_builder(builder).build(EnvRequest(
        panel=panel, stage=stage, split="train", n_envs=n_envs, seed=seed, device=device))
    plugin = reg.algorithm(algorithm)
    agent: Agent = plugin.build(env, TrainingSetup(
        hyperparameters=hp, seed=seed, device=device,
        options=plugin.parse_options(stage.algorithm_options
                                     if algorithm == stage.algorithm else {})))
    monitor = _monitor(agent)
    settings = {"n_envs": n_envs, **attrs.asdict(hp), "algorithm": algorithm,
                "env_builder": builder, "policy": "AssetSetPolicy"}

    def learn(target: int) -> None:
        agent.learn(target, monitor)

    if hasattr(agent, "timings"):  # cuda_ppo's TorchPPOAgent times its own phases
        return TorchTrainer(agent, learn, settings, env, agent)
    model = agent.model  # type: ignore[attr-defined]  # SB3Agent
    return Trainer(model, learn, settings, env, agent)


def baseline_trainer(market: MarketArrays, stage: StageSpec, *, seed: int, device: str,
                     n_envs: int = BASELINE_ENVS, **ppo_kwargs: Any) -> Trainer:
    """SB3 PPO defaults with ``MlpPolicy`` over ``n_envs`` per-step gymnasium envs."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    def make() -> PortfolioGymEnv:
        return PortfolioGymEnv(market, stage.env.episode_length, stage.transaction_cost,
                               stage.env.action_scale)

    venv = make_vec_env(make, n_envs=n_envs, seed=seed)
    model = PPO("MlpPolicy", venv, seed=seed, device=device, verbose=0, **ppo_kwargs)

    def learn(target: int) -> None:
        model.learn(total_timesteps=target - model.num_timesteps, reset_num_timesteps=False)

    settings = {"n_envs": n_envs, "policy": "MlpPolicy", "vec_env": "DummyVecEnv",
                "n_steps": model.n_steps, "batch_size": model.batch_size,
                "n_epochs": model.n_epochs, "learning_rate": model.learning_rate,
                **{k: v for k, v in ppo_kwargs.items() if not callable(v)}}
    return Trainer(model, learn, settings, venv)


class TorchTrainer(Trainer):
    """A :class:`Trainer` of a ``cuda_ppo`` agent: no SB3 model to wrap; the agent times its
    rollouts and updates itself (each ends with a device synchronisation, so the times
    hold on a GPU too).

    ``model`` and ``agent`` are both the :class:`ploutos_core.torch.TorchPPOAgent`.
    """

    agent: Any  # a TorchPPOAgent, whose ``timings`` the Agent contract does not declare

    def _time_updates(self) -> None:
        """Nothing to wrap: the agent's ``timings`` hold its update time."""

    @property
    def rollout_size(self) -> int:
        """Steps collected between two updates."""
        return int(self.settings["n_steps"] * self.settings["n_envs"])

    def train(self, steps: int) -> dict[str, float]:
        """Train at least ``steps`` more (whole rollouts); return steps, seconds, split."""
        before = self.agent.timings["update"]
        result = super().train(steps)
        self.update_seconds = self.agent.timings["update"] - before
        result["update_fraction"] = self.update_seconds / result["seconds"]
        return result
