"""Persistent window settings (QSettings, INI format): recent files, asset paths, run options.

Tests isolate them with ``QSettings.setPath(QSettings.IniFormat, QSettings.UserScope, tmp)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QSettings

ORGANIZATION = "PARE Studio"
APPLICATION = "PARE Studio"
MAX_RECENT = 10

_K_RECENT = "recent/files"
_K_SMPL = "assets/smpl_dir"
_K_CKPT = "assets/ckpt"
_K_CFG = "assets/cfg"


def open_settings() -> QSettings:
    """The user's settings file (``<config>/PARE Studio/PARE Studio.ini``)."""
    return QSettings(
        QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANIZATION, APPLICATION
    )


def _as_list(value: object) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]  # type: ignore[union-attr]


def recent_files(settings: QSettings | None = None) -> list[str]:
    """Recently opened videos / results, newest first."""
    s = settings or open_settings()
    return _as_list(s.value(_K_RECENT, []))


def add_recent_file(path: str | Path, settings: QSettings | None = None) -> list[str]:
    """Put ``path`` first in the recent list (deduplicated, at most :data:`MAX_RECENT`)."""
    s = settings or open_settings()
    p = str(Path(path).expanduser().absolute())
    files = [p] + [f for f in recent_files(s) if f != p]
    files = files[:MAX_RECENT]
    s.setValue(_K_RECENT, files)
    s.sync()
    return files


def clear_recent_files(settings: QSettings | None = None) -> None:
    s = settings or open_settings()
    s.remove(_K_RECENT)
    s.sync()


@dataclass(frozen=True)
class AssetPaths:
    """What the user chose in the assets dialog; None = find it automatically."""

    smpl_dir: Path | None = None
    ckpt: Path | None = None
    cfg: Path | None = None


def load_asset_paths(settings: QSettings | None = None) -> AssetPaths:
    s = settings or open_settings()

    def get(key: str) -> Path | None:
        v = s.value(key, "")
        return Path(str(v)) if v else None

    return AssetPaths(smpl_dir=get(_K_SMPL), ckpt=get(_K_CKPT), cfg=get(_K_CFG))


def save_asset_paths(paths: AssetPaths, settings: QSettings | None = None) -> None:
    s = settings or open_settings()
    for key, value in ((_K_SMPL, paths.smpl_dir), (_K_CKPT, paths.ckpt), (_K_CFG, paths.cfg)):
        if value is None:
            s.remove(key)
        else:
            s.setValue(key, str(value))
    s.sync()


def get_value(key: str, default: object = None, settings: QSettings | None = None) -> object:
    """A plain setting (run options, window geometry)."""
    s = settings or open_settings()
    return s.value(key, default)


def set_value(key: str, value: object, settings: QSettings | None = None) -> None:
    s = settings or open_settings()
    s.setValue(key, value)
