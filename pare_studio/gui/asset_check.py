"""Validate the model assets for the setup dialog with the core's loaders (no Qt).

``find_assets`` resolves what the user gave (or nothing) like the command line does;
``check_assets`` opens each file with the loader the predictor will use and says, per file,
what is wrong and where to get it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pare_studio.errors import PareStudioError
from pare_studio.gui.engine_jobs import ModelAssets
from pare_studio.gui.settings import AssetPaths


@dataclass(frozen=True)
class AssetLine:
    """One line of the dialog's report.

    name : "SMPL folder", "Checkpoint", "Config" or a doctor check's title.
    ok : False for a problem that stops a run.
    message : what was found, or what is wrong and what to do.
    """

    name: str
    ok: bool
    message: str


def find_assets(paths: AssetPaths) -> ModelAssets:
    """Resolve explicit paths, then the asset store and ``./data`` (as ``pare-studio demo`` does).

    Raises
    ------
    AssetError
        Listing every missing file and how to install it.
    """
    from pare_studio.assets import resolve_model_paths

    found = resolve_model_paths(cfg=paths.cfg, ckpt=paths.ckpt, smpl_dir=paths.smpl_dir)
    return ModelAssets(cfg=found.cfg, ckpt=Path(found.ckpt), smpl_dir=Path(found.smpl_dir))


def _line(name: str, fn: object) -> AssetLine:
    try:
        return AssetLine(name, True, str(fn()))  # type: ignore[operator]
    except PareStudioError as exc:
        return AssetLine(name, False, str(exc))
    except (OSError, ValueError) as exc:
        return AssetLine(name, False, f"{type(exc).__name__}: {exc}")


def check_assets(
    paths: AssetPaths, deep: bool = True
) -> tuple[ModelAssets | None, list[AssetLine]]:
    """Resolve and open the assets; returns the usable assets (or None) and the report lines.

    Parameters
    ----------
    paths : what the user chose (None fields are searched for).
    deep : also load the SMPL model and the checkpoint (seconds: the checkpoint is ~190 MB).
    """
    try:
        assets = find_assets(paths)
    except PareStudioError as exc:
        return None, [AssetLine("Model files", False, str(exc))]

    def smpl() -> str:
        from pare_studio.core.smpl_io import SmplFiles, load_smpl_model

        files = SmplFiles.from_dir(assets.smpl_dir)
        if deep:
            arrays = load_smpl_model(files.model)
            nv, nf = arrays["v_template"].shape[0], arrays["f"].shape[0]
            return f"{files.model} ({nv} vertices, {nf} faces)"
        return str(files.model)

    def config() -> str:
        from pare_studio.core.config import load_config

        load_config(assets.cfg)
        return (
            str(assets.cfg) if assets.cfg is not None else "released configuration (no yaml given)"
        )

    def checkpoint() -> str:
        size = assets.ckpt.stat().st_size if assets.ckpt.is_file() else 0
        if deep:
            from pare_studio.core.checkpoint import read_state_dict

            n = len(read_state_dict(assets.ckpt))
            return f"{assets.ckpt} ({size / 1e6:.0f} MB, {n} tensors)"
        if not size:
            raise FileNotFoundError(f"{assets.ckpt} is missing or empty")
        return f"{assets.ckpt} ({size / 1e6:.0f} MB)"

    lines = [_line("SMPL folder", smpl), _line("Config", config), _line("Checkpoint", checkpoint)]
    ok = all(line.ok for line in lines)
    return (assets if ok else None), lines


def doctor_lines() -> list[AssetLine]:
    """The file checks of ``pare-studio doctor`` (no system probes), as report lines."""
    try:
        from pare_studio.setup.doctor import run_doctor

        checks = run_doctor(system=False)
    except Exception as exc:  # the doctor is advisory here; never block the dialog on it
        return [AssetLine("pare-studio doctor", True, f"not available: {exc}")]
    out = []
    for c in checks:
        msg = c.message + (f" — {c.next_step}" if c.next_step else "")
        out.append(AssetLine(c.title, c.status != "fail" or not c.required, f"[{c.status}] {msg}"))
    return out
