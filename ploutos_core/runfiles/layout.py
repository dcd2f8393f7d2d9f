"""The run layout under ``--out``: one owner for every path a run reads or writes.

::

    models/<stage>/ploutos_<stage>_<steps>_steps.zip   checkpoints
    models/<stage>/best.zip                            best periodic validation Sharpe
    models/<stage>/optimized_params.json               with --auto-optimize
    models/<stage>/optuna.db                           the tuning study
    models/<stage>_final.zip                           final model of the stage
    logs/<stage>/                                      TensorBoard
    reports/<stage>/                                   metrics, evaluation JSON/MD/PNG
    reports/run.json                                   run manifest
    trading/<stage>/<broker>.sqlite                    a paper ledger (ploutos trade)
    trading/<stage>/<broker>_cycles/<day>.json         one snapshot per recorded cycle
    trading/<stage>/<broker>_status.{json,png}         ploutos trade status
    walkforward/<stage>/fold_<k>/                      one run directory per fold
    production/<stage>/                                ploutos retrain: current.zip, lineage
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import attrs

from ploutos_core.runfiles.atomic import atomic_path

_CHECKPOINT = re.compile(r"^ploutos_(?P<stage>.+)_(?P<steps>\d+)_steps\.zip$")


@attrs.frozen
class RunLayout:
    """Paths of one run directory.

    :param root: the ``--out`` directory.
    """

    root: Path

    def stage_dir(self, stage: str) -> Path:
        """``models/<stage>/``: checkpoints, best model, tuning files."""
        return self.root / "models" / stage

    def checkpoint(self, stage: str, steps: int) -> Path:
        """``models/<stage>/ploutos_<stage>_<steps>_steps.zip``."""
        return self.stage_dir(stage) / f"ploutos_{stage}_{steps}_steps.zip"

    def checkpoints(self, stage: str) -> list[tuple[int, Path]]:
        """Existing checkpoints of ``stage`` as ``(steps, path)``, oldest first."""
        found = []
        directory = self.stage_dir(stage)
        if directory.is_dir():
            for path in directory.iterdir():
                match = _CHECKPOINT.match(path.name)
                if match and match["stage"] == stage:
                    found.append((int(match["steps"]), path))
        return sorted(found)

    def newest_checkpoint(self, stage: str) -> Path | None:
        """The checkpoint with the most steps, if any."""
        found = self.checkpoints(stage)
        return found[-1][1] if found else None

    def final_model(self, stage: str) -> Path:
        """``models/<stage>_final.zip``."""
        return self.root / "models" / f"{stage}_final.zip"

    def best_model(self, stage: str) -> Path:
        """``models/<stage>/best.zip``."""
        return self.stage_dir(stage) / "best.zip"

    def optimized_params(self, stage: str) -> Path:
        """``models/<stage>/optimized_params.json``."""
        return self.stage_dir(stage) / "optimized_params.json"

    def log_dir(self, stage: str) -> Path:
        """``logs/<stage>/`` (TensorBoard)."""
        return self.root / "logs" / stage

    def report_dir(self, stage: str) -> Path:
        """``reports/<stage>/``."""
        return self.root / "reports" / stage

    def manifest(self) -> Path:
        """``reports/run.json``."""
        return self.root / "reports" / "run.json"

    def trading_dir(self, stage: str) -> Path:
        """``trading/<stage>/``: ledgers, cycle snapshots, status reports."""
        return self.root / "trading" / stage

    def ledger(self, stage: str, broker: str) -> Path:
        """``trading/<stage>/<broker>.sqlite``: the account of ``broker`` (a paper ledger)."""
        return self.trading_dir(stage) / f"{broker}.sqlite"

    def walkforward_dir(self, stage: str) -> Path:
        """``walkforward/<stage>/``: the folds of ``ploutos walkforward``."""
        return self.root / "walkforward" / stage

    def production_dir(self, stage: str) -> Path:
        """``production/<stage>/``: the model ``ploutos retrain`` promotes, and its lineage."""
        return self.root / "production" / stage

    def has_outputs(self, stage: str) -> bool:
        """Whether an earlier run left checkpoints or a final model for ``stage``."""
        return bool(self.checkpoints(stage)) or self.final_model(stage).exists()

    def stage_outputs(self, stage: str) -> list[Path]:
        """Every file or folder a run of ``stage`` writes that exists now."""
        paths = [self.stage_dir(stage), self.final_model(stage), self.report_dir(stage),
                 self.log_dir(stage)]
        return [path for path in paths if path.exists()]

    def move_aside(self, stages: list[str], stamp: str) -> Path | None:
        """Move the outputs of ``stages`` to ``previous/<stamp>/`` (``--overwrite``), keeping
        their relative paths; ``None`` when there were none.
        """
        moved = None
        for stage in stages:
            for path in self.stage_outputs(stage):
                target = self.root / "previous" / stamp / path.relative_to(self.root)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(str(path), str(target))
                moved = self.root / "previous" / stamp
        return moved

    def quarantine(self, checkpoint: Path) -> Path:
        """Rename an unreadable checkpoint to ``<name>.corrupt`` (kept for inspection)."""
        target = checkpoint.with_name(checkpoint.name + ".corrupt")
        checkpoint.replace(target)
        return target

    def promote(self, checkpoint: Path, target: Path) -> Path:
        """Copy ``checkpoint`` to ``target`` atomically (e.g. the stage's final model)."""
        with atomic_path(target) as tmp:
            shutil.copyfile(checkpoint, tmp)
        return target
