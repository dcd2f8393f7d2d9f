"""Model files: find them and read their Ploutos metadata without importing torch."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

from ploutos_core.config.stage import EnvSettings, Hyperparameters
from ploutos_core.errors import ModelError, first_line

METADATA_MEMBER = "ploutos.json"


def resolve_model_path(path: str | Path) -> Path:
    """``path`` itself or ``path.zip``, whichever exists.

    :raises ModelError: when neither exists.
    """
    candidate = Path(path)
    if candidate.is_file():
        return candidate
    with_zip = candidate.with_name(candidate.name + ".zip")
    if with_zip.is_file():
        return with_zip
    raise ModelError(f"no model file at {candidate} (also tried {with_zip}); check the path, "
                     f"e.g. models/stage1_final")


def open_archive(path: Path) -> zipfile.ZipFile:
    """Open a model file as a zip archive.

    :raises ModelError: when it is not one.
    """
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ModelError(f"{path} is not a model file (not a readable zip archive): {exc}") from exc


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The ``ploutos.json`` of a model file (empty for a plain SB3 file), its fields checked.

    :raises ModelError: for a missing or unreadable file, or a field of the wrong type.
    """
    resolved = resolve_model_path(path)
    with open_archive(resolved) as archive:
        if METADATA_MEMBER not in archive.namelist():
            return {}
        try:
            data = json.loads(archive.read(METADATA_MEMBER))
        except (ValueError, zipfile.BadZipFile, OSError) as exc:
            raise ModelError(f"{resolved}: corrupt {METADATA_MEMBER} ({first_line(exc)})") \
                from exc
    if not isinstance(data, dict):
        raise ModelError(f"{resolved}: {METADATA_MEMBER} is not a JSON object")
    check_metadata(resolved, data)
    return data


def read_own_metadata(path: str | Path, algorithm: str) -> tuple[Path, dict[str, Any]]:
    """The resolved path and metadata of a file ``algorithm`` is about to restore.

    :raises ModelError: for a missing or damaged file, or one of another algorithm.
    """
    resolved = resolve_model_path(path)
    metadata = read_metadata(resolved)
    saved_algorithm = metadata.get("algorithm")
    if saved_algorithm is not None and saved_algorithm != algorithm:
        raise ModelError(f"{resolved} was trained with algorithm {saved_algorithm!r}, not "
                         f"{algorithm!r}; pass --algorithm {saved_algorithm}")
    return resolved, metadata


def check_metadata(path: Path, data: dict[str, Any]) -> None:
    """Refuse fields the core reads when they have the wrong type or range (a crafted or
    damaged file must be one clear error, never an internal one).

    :raises ModelError: naming the field and its value.
    """
    def bad(field: str, expected: str) -> ModelError:
        return ModelError(f"{path}: {METADATA_MEMBER} field {field} = {data[field]!r} is not "
                          f"{expected}; the file is damaged or was not written by Ploutos")

    for field, minimum in (("num_timesteps", 0), ("target_timesteps", 0), ("n_envs", 1),
                           ("selection_trials", 1), ("seed", 0)):
        value = data.get(field)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or value < minimum):
            raise bad(field, f"an integer >= {minimum}")
    for field in ("algorithm", "stage", "benchmark"):
        if data.get(field) is not None and not isinstance(data[field], str):
            raise bad(field, "a string")
    actions = data.get("actions")
    if actions is not None and not (isinstance(actions, dict)
                                    and actions.get("action") in ("softmax", "tilt")):
        raise bad("actions", "an action map ({'action': 'softmax' | 'tilt', ...})")
    shape = data.get("observation_shape")
    if shape is not None and (not isinstance(shape, list)
                              or not all(isinstance(v, int) and v > 0 for v in shape)):
        raise bad("observation_shape", "a list of positive integers")
    hyperparameters = data.get("hyperparameters")
    if hyperparameters is not None:
        if not isinstance(hyperparameters, dict):
            raise bad("hyperparameters", "a table of hyperparameters")
        try:
            Hyperparameters(**hyperparameters)
        except (TypeError, ValueError) as exc:
            raise ModelError(f"{path}: {METADATA_MEMBER} hyperparameters are invalid "
                             f"({first_line(exc)}); the file is damaged or was not written "
                             f"by Ploutos") from exc


def action_mismatch(path: Path, metadata: dict[str, Any], settings: EnvSettings,
                    stage: str) -> str | None:
    """Why the model's actions would mean other weights under ``settings``, or ``None``.

    A model file that records no action map (written before Ploutos recorded it) is not
    questioned.
    """
    recorded = metadata.get("actions")
    expected = settings.action_record()
    if recorded is None or recorded == expected:
        return None

    def describe(record: dict[str, Any]) -> str:
        scales = ", ".join(f"{k} {v:g}" for k, v in record.items()
                           if k != "action" and isinstance(v, (int, float)))
        return f"{record.get('action')} actions ({scales})"

    return (f"{path} was trained with {describe(recorded)}, stage {stage!r} uses "
            f"{describe(expected)}: the same actions would mean other weights")


def check_actions_fit(path: Path, metadata: dict[str, Any], settings: EnvSettings,
                      stage: str) -> None:
    """Refuse to read a model's actions under another action map.

    :raises ModelError: naming both maps and what to do.
    """
    problem = action_mismatch(path, metadata, settings, stage)
    if problem:
        raise ModelError(f"{problem}; pass a model of this stage, or a stage whose "
                         f"[stage.env] action settings match the model's")


def continues_itself(model: Path | None, stage_name: str) -> bool:
    """Whether ``model`` is a model of stage ``stage_name``: a stage starting from it
    continues it whole instead of transferring from it (``[stage.transfer]`` does not
    apply).

    :raises ModelError: for a file that is not a Ploutos model.
    """
    return model is not None and read_metadata(model).get("stage") == stage_name
