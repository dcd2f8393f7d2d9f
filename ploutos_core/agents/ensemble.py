"""Seed ensembles: an agent made of K policies whose target weights are averaged.

An ensemble file is a zip holding ``ploutos.json`` (``"algorithm": "ensemble"``, the
stage, each member's algorithm and metadata) and the members' own model files under
``members/<i>.zip``, so it is one self-contained file that ``ploutos evaluate``,
``compare`` and ``--load-model`` accept wherever a model file goes. Transferring
from an ensemble copies its first member's weights (one network cannot hold the
average of K independently trained ones).
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ploutos_core.agents.contract import Agent, TrainingMonitor, TransferReport
from ploutos_core.agents.model_files import (
    METADATA_MEMBER,
    open_archive,
    read_metadata,
    resolve_model_path,
)
from ploutos_core.env.actions import ActionMap
from ploutos_core.errors import ModelError
from ploutos_core.runfiles.atomic import atomic_path

ENSEMBLE = "ensemble"


def is_ensemble(metadata: Mapping[str, Any]) -> bool:
    """Whether a model file's metadata describes an ensemble."""
    return metadata.get("algorithm") == ENSEMBLE


def write_ensemble(members: Sequence[str | Path], target: Path,
                   extra: Mapping[str, Any] | None = None) -> Path:
    """Combine model files into one ensemble file, atomically.

    :param members: model files of the same stage (``.zip`` optional).
    :param extra: more metadata to record (e.g. the seeds).
    :raises ModelError: for fewer than two members, a missing file, an ensemble as a
        member, or members of different stages or observation layouts.
    """
    paths = [resolve_model_path(m) for m in members]
    if len(paths) < 2:
        raise ModelError(f"an ensemble needs at least two models, got {len(paths)}")
    metadata = [read_metadata(p) for p in paths]
    for path, meta in zip(paths, metadata, strict=True):
        if is_ensemble(meta):
            raise ModelError(f"{path} is an ensemble itself; combine its members instead")
    stages = {meta.get("stage") for meta in metadata}
    shapes = {tuple(meta.get("observation_shape", ())[1:]) for meta in metadata}
    if len(stages) > 1 or len(shapes) > 1:
        raise ModelError(f"ensemble members must share a stage and an observation layout; got "
                         f"stages {sorted(map(str, stages))}, feature widths {sorted(shapes)}")
    actions = {json.dumps(meta.get("actions"), sort_keys=True) for meta in metadata}
    if len(actions) > 1:
        raise ModelError(f"ensemble members must share an action map; got "
                         f"{sorted(actions)}")
    record = {"format": 1, "algorithm": ENSEMBLE, "stage": metadata[0].get("stage"),
              "tickers": metadata[0].get("tickers"),
              "observation_shape": metadata[0].get("observation_shape"),
              "benchmark": metadata[0].get("benchmark"),
              "actions": metadata[0].get("actions"),
              "num_timesteps": sum(int(m.get("num_timesteps", 0)) for m in metadata),
              "selection_trials": max(int(m.get("selection_trials") or 1) for m in metadata),
              "members": [{"file": f"members/{i}.zip", "source": str(path),
                           "algorithm": meta.get("algorithm"), "seed": meta.get("seed"),
                           "num_timesteps": meta.get("num_timesteps")}
                          for i, (path, meta) in enumerate(zip(paths, metadata, strict=True))],
              **(extra or {})}
    with atomic_path(target) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(METADATA_MEMBER, json.dumps(record, indent=2, default=str))
        for i, path in enumerate(paths):
            archive.write(path, f"members/{i}.zip")
    return target


@contextlib.contextmanager
def unpacked_members(path: Path) -> Iterator[list[tuple[Path, dict[str, Any]]]]:
    """The member files of an ensemble, extracted to a temporary folder for the block.

    :raises ModelError: for a file that is not a readable ensemble.
    """
    metadata = read_metadata(path)
    members = metadata.get("members")
    if not is_ensemble(metadata) or not isinstance(members, list) or not members:
        raise ModelError(f"{path} is not an ensemble file (no members recorded)")
    with tempfile.TemporaryDirectory(prefix="ploutos-ensemble-") as tmp, \
            open_archive(path) as archive:
        unpacked = []
        for i, member in enumerate(members):
            name = member.get("file") if isinstance(member, dict) else None
            if not isinstance(name, str) or name not in archive.namelist():
                raise ModelError(f"{path}: member {i} ({name!r}) is missing from the file")
            target = Path(tmp) / f"{i}.zip"
            target.write_bytes(archive.read(name))
            unpacked.append((target, read_metadata(target)))
        yield unpacked


class EnsembleAgent(Agent):
    """Averages the members' target weights and acts on the average.

    :param members: the loaded member agents.
    :param action_map: the stage's map from actions to target weights (and back).
    :param metadata: the ensemble file's metadata.
    """

    def __init__(self, members: Sequence[Agent], action_map: ActionMap,
                 metadata: Mapping[str, Any]) -> None:
        self.members = list(members)
        self.action_map = action_map
        self._metadata = dict(metadata)

    @property
    def num_timesteps(self) -> int:
        """Steps the members trained, together."""
        return sum(member.num_timesteps for member in self.members)

    def learn(self, total_timesteps: int, monitor: TrainingMonitor) -> None:
        """An ensemble is assembled from trained models, never trained itself.

        :raises ModelError: always.
        """
        raise ModelError("an ensemble cannot be trained; train its members and combine them "
                         "with 'ploutos ensemble make'")

    def predict(self, observation: NDArray[np.float32], deterministic: bool = True
                ) -> NDArray[np.float32]:
        """The action whose target weights are the mean of the members' targets."""
        targets = [self.action_map.target_weights(member.predict(observation, deterministic))
                   for member in self.members]
        return self.action_map.action_for(np.mean(targets, axis=0))

    def reset_state(self) -> None:
        """Reset every member's memory."""
        for member in self.members:
            member.reset_state()

    def save(self, path: Path, metadata: Mapping[str, Any]) -> None:
        """Ensembles are written by :func:`write_ensemble` from their members' files.

        :raises ModelError: always.
        """
        raise ModelError("an ensemble file is written from its members' files "
                         "('ploutos ensemble make'), not saved from memory")

    def transfer_from(self, path: Path) -> TransferReport:
        """Not supported: an ensemble is assembled, not initialised.

        :raises ModelError: always.
        """
        raise ModelError("weights cannot be transferred into an ensemble")
