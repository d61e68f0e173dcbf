"""Install PARE's data zip into the asset store: unpack, verify, then move into place.

``pare-github-data.zip`` holds one top folder ``data/`` laid out like the store (checkpoints and
configs of both released models, the SMPL mean parameters, the two joint regressors and the
YOLOv3 weights; the SMPL models themselves are licensed separately and are not in it). Extra files
are tolerated and installed too (the store mirrors the reference's ``data/``).

The steps, each of which leaves the store untouched when it fails:

1. open the archive and check that every file of :data:`EXPECTED_FILES` is listed and that no
   entry escapes the folder;
2. unpack into ``<store>/.staging-*`` (same file system), hashing while writing; the zip's CRC-32
   of every member is checked on the way, so a corrupted or truncated archive stops here;
3. check the contents: array shapes, the Darknet header, ``load_config`` on both yamls and a strict
   load of both checkpoints into the network the yaml describes;
4. ``os.replace`` every file into place (restoring the previous files if a move fails), then record
   sha256 and size of each in ``manifest.json``.

The YOLOv3 weights are checked for their header and size only: loading them needs the 248 MB
Darknet network, which the detector builds anyway and which would double the check time.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import struct
import time
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from pare_studio.assets import (
    CHECKPOINTS_DIR,
    J_REGRESSOR_EXTRA,
    J_REGRESSOR_H36M,
    MANIFEST,
    MODELS,
    PARE_DATA_DRIVE_URL,
    SMPL_MEAN_PARAMS,
    YOLO_WEIGHTS,
    AssetStore,
    checkpoint_rel,
    config_rel,
)
from pare_studio.cancel import CancelToken
from pare_studio.errors import ArchiveError, AssetError, PareStudioError
from pare_studio.results import Progress
from pare_studio.setup.manifest import Manifest, now_iso

#: Manifest ``installs`` key and per-file ``source`` of PARE's data.
SOURCE = "pare-data"
_CHUNK = 1 << 20
#: Store entries an archive may not overwrite.
_RESERVED = {MANIFEST, "downloads"}


@dataclass(frozen=True)
class ExpectedFile:
    """A file PARE's data zip must contain (path relative to its ``data/`` folder = the store)."""

    rel: str
    kind: str  # "config" | "checkpoint" | "regressor" | "mean_params" | "darknet"
    what: str


EXPECTED_FILES: tuple[ExpectedFile, ...] = (
    *(
        f
        for m in MODELS
        for f in (
            ExpectedFile(config_rel(m), "config", f"{m} configuration"),
            ExpectedFile(checkpoint_rel(m), "checkpoint", f"{m} checkpoint"),
        )
    ),
    ExpectedFile(SMPL_MEAN_PARAMS, "mean_params", "SMPL mean parameters"),
    ExpectedFile(J_REGRESSOR_EXTRA, "regressor", "extra-joint regressor (9, 6890)"),
    ExpectedFile(J_REGRESSOR_H36M, "regressor", "H36M joint regressor (17, 6890)"),
    ExpectedFile(YOLO_WEIGHTS, "darknet", "YOLOv3 weights (Darknet, COCO)"),
)


@dataclass
class InstallReport:
    """What :func:`install_pare_zip` did.

    installed : store-relative paths written (expected files and extras).
    extras : the installed files that are not in :data:`EXPECTED_FILES`.
    ignored : archive entries outside the data folder (e.g. ``__MACOSX/...``).
    warnings : checks that passed with a remark (e.g. an unusual YOLOv3 file size).
    """

    source: str
    installed: list[str] = field(default_factory=list)
    extras: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _corrupt(zip_path: Path, detail: object, downloaded: bool) -> ArchiveError:
    again = (
        "run `pare-studio setup` again to download it afresh"
        if downloaded
        else f"download it again from {PARE_DATA_DRIVE_URL}"
    )
    return ArchiveError(
        f"{zip_path} is damaged (a truncated download or a corrupted file): {detail}. "
        f"Nothing was installed; {again}."
    )


def _find_prefix(names: list[str]) -> str | None:
    """The folder inside the archive that plays ``data/`` (usually ``data/``; ``""`` if flat)."""
    marker = f"{CHECKPOINTS_DIR}/"
    prefixes = sorted({n[: n.index(marker)] for n in names if marker in n}, key=len)
    for p in prefixes:
        if p == "" or p.endswith("/"):
            return p
    return None


def _safe_rel(rel: str) -> bool:
    p = PurePosixPath(rel)
    return (
        bool(rel)
        and not p.is_absolute()
        and ".." not in p.parts
        and "\\" not in rel
        and ":" not in rel
    )


def _plan(zf: zipfile.ZipFile, zip_path: Path) -> tuple[dict[str, zipfile.ZipInfo], list[str]]:
    """Map store-relative path -> member for every file under the data folder; list the rest."""
    ignored: list[str] = []
    infos = []
    for info in zf.infolist():
        if info.filename.startswith("__MACOSX/") or PurePosixPath(info.filename).name.startswith(
            "._"
        ):
            ignored.append(info.filename)  # macOS archive metadata
        elif not info.is_dir():
            infos.append(info)
    prefix = _find_prefix([i.filename for i in infos])
    if prefix is None:
        raise ArchiveError(
            f"{zip_path} is not PARE's data archive: it has no {CHECKPOINTS_DIR}/ folder "
            f"(expected data/{checkpoint_rel(MODELS[0])} and the rest; get pare-github-data.zip "
            f"from {PARE_DATA_DRIVE_URL})"
        )
    members: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        name = info.filename
        if not name.startswith(prefix):
            ignored.append(name)
            continue
        rel = name[len(prefix) :]
        if not _safe_rel(rel):
            raise ArchiveError(f"{zip_path} has an unsafe entry {name!r}; refusing to unpack it")
        top = rel.split("/")[0]
        if top in _RESERVED or top.startswith(".staging-"):
            ignored.append(name)
            continue
        members[rel] = info
    missing = [f"{prefix}{e.rel}" for e in EXPECTED_FILES if e.rel not in members]
    if missing:
        raise ArchiveError(
            f"{zip_path} lacks {', '.join(missing)}; is it PARE's data archive "
            f"(pare-github-data.zip from {PARE_DATA_DRIVE_URL})? Nothing was installed."
        )
    return members, ignored


def _check_space(root: Path, needed: int) -> None:
    probe = root
    while not probe.exists():
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if free < needed + (64 << 20):
        raise AssetError(
            f"not enough disk space in {root}: PARE's data needs {needed / 1e9:.2f} GB, "
            f"{free / 1e9:.2f} GB are free. Free some space or choose another --data-root."
        )


def _process_gone(pid: int) -> bool:
    """True when no process ``pid`` runs (POSIX only: on Windows ``os.kill`` would terminate it)."""
    if os.name != "posix":
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # alive but not ours (EPERM)
    return False


def _remove_stale_staging(root: Path) -> None:
    """Delete ``.staging-<pid>-*`` folders left by a setup process that no longer runs (or, where
    that cannot be asked, that are over a day old)."""
    if not root.is_dir():
        return
    for d in root.glob(".staging-*"):
        try:
            pid = int(d.name.split("-")[1])
            age = time.time() - d.stat().st_mtime
        except (IndexError, ValueError, OSError):
            continue
        if pid != os.getpid() and (_process_gone(pid) or age > 86400):
            shutil.rmtree(d, ignore_errors=True)


def _unpack(
    zf: zipfile.ZipFile,
    members: dict[str, zipfile.ZipInfo],
    staging: Path,
    zip_path: Path,
    downloaded: bool,
    progress: Callable[[Progress], None] | None,
    cancel: CancelToken | None,
) -> dict[str, tuple[str, int]]:
    """Extract ``members`` under ``staging``; returns rel -> (sha256, size). CRC-checked."""
    total = sum(i.file_size for i in members.values())
    done = 0
    digests: dict[str, tuple[str, int]] = {}
    for rel, info in sorted(members.items()):
        out = staging.joinpath(*rel.split("/"))
        out.parent.mkdir(parents=True, exist_ok=True)
        h = hashlib.sha256()
        size = 0
        try:
            with zf.open(info) as src, open(out, "wb") as dst:
                while chunk := src.read(_CHUNK):
                    if cancel is not None:
                        cancel.check()
                    dst.write(chunk)
                    h.update(chunk)
                    size += len(chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress(Progress("unpack", done, total))
        except (zipfile.BadZipFile, EOFError, zlib.error, struct.error, NotImplementedError) as exc:
            raise _corrupt(zip_path, f"{info.filename}: {exc}", downloaded) from exc
        if size != info.file_size:
            raise _corrupt(
                zip_path,
                f"{info.filename}: {size} bytes unpacked, {info.file_size} listed",
                downloaded,
            )
        digests[rel] = (h.hexdigest(), size)
    return digests


# -- content checks --------------------------------------------------------------------------------
def check_darknet_weights(path: Path) -> str | None:
    """Check a Darknet ``.weights`` header and length. Returns a remark (unusual size) or None.

    Raises DetectorError / ValueError when the file cannot be Darknet weights.
    """
    from pare_studio.pipeline.yolo import YOLOV3_NUM_WEIGHTS, read_darknet_header

    header = read_darknet_header(path)
    body = path.stat().st_size - header.header_bytes
    if body <= 0 or body % 4:
        raise ValueError(
            f"{body} bytes after the {header.header_bytes}-byte header are not whole float32s"
        )
    if body // 4 != YOLOV3_NUM_WEIGHTS:
        return (
            f"{YOLO_WEIGHTS} holds {body // 4:,} values, not the {YOLOV3_NUM_WEIGHTS:,} of the "
            "COCO YOLOv3-416 weights: the detector will refuse it (use a boxes file or "
            "whole-frame detection, or get the file again)"
        )
    return None


def _check_configs_and_checkpoints(
    staging: Path, progress: Callable[[Progress], None] | None, cancel: CancelToken | None
) -> None:
    """``load_config`` on both yamls; strict load of each checkpoint into its network."""
    from pare_studio.core.checkpoint import load_network_weights
    from pare_studio.core.config import load_config
    from pare_studio.core.network import build_network

    for i, model in enumerate(MODELS):
        if cancel is not None:
            cancel.check()
        if progress is not None:
            progress(Progress("check", i, len(MODELS)))
        cfg_rel, ckpt_rel = config_rel(model), checkpoint_rel(model)
        try:
            cfg = load_config(staging.joinpath(*cfg_rel.split("/")))
        except PareStudioError as exc:
            raise ArchiveError(f"data/{cfg_rel} in the archive does not load: {exc}") from exc
        try:
            load_network_weights(build_network(cfg), staging.joinpath(*ckpt_rel.split("/")))
        except PareStudioError as exc:
            raise ArchiveError(
                f"data/{ckpt_rel} in the archive does not load into the network of "
                f"data/{cfg_rel}: {exc}"
            ) from exc
    if progress is not None:
        progress(Progress("check", len(MODELS), len(MODELS)))


def check_contents(
    staging: Path,
    *,
    load_checkpoints: bool = True,
    progress: Callable[[Progress], None] | None = None,
    cancel: CancelToken | None = None,
) -> list[str]:
    """Check the expected files under ``staging`` (a folder laid out as the store).

    Returns remarks that do not block the install. Raises AssetError naming the bad file.
    """
    from pare_studio.core.smpl_io import (
        load_j_regressor_extra,
        load_j_regressor_h36m,
        load_mean_params,
    )

    loaders = {
        J_REGRESSOR_EXTRA: load_j_regressor_extra,
        J_REGRESSOR_H36M: load_j_regressor_h36m,
        SMPL_MEAN_PARAMS: load_mean_params,
    }
    warnings: list[str] = []
    for f in EXPECTED_FILES:
        path = staging.joinpath(*f.rel.split("/"))
        try:
            if f.rel in loaders:
                loaders[f.rel](path)
            elif f.kind == "darknet":
                remark = check_darknet_weights(path)
                if remark:
                    warnings.append(remark)
            elif path.stat().st_size == 0:
                raise ValueError("empty file")
        except (PareStudioError, ValueError, OSError) as exc:
            raise ArchiveError(
                f"data/{f.rel} ({f.what}) in the archive is not valid: {exc}"
            ) from exc
    if load_checkpoints:
        _check_configs_and_checkpoints(staging, progress, cancel)
    return warnings


# -- moving into place -----------------------------------------------------------------------------
def _move_into_place(staging: Path, store: AssetStore, rels: list[str]) -> None:
    """``os.replace`` each staged file into the store; on failure put everything back as it was."""
    backup = staging / ".previous"
    moved: list[tuple[str, bool]] = []
    try:
        for rel in rels:
            src = staging.joinpath(*rel.split("/"))
            dst = store.path(rel)
            dst.parent.mkdir(parents=True, exist_ok=True)
            had_old = dst.exists()
            if had_old:
                keep = backup.joinpath(*rel.split("/"))
                keep.parent.mkdir(parents=True, exist_ok=True)
                os.replace(dst, keep)
            moved.append((rel, had_old))
            os.replace(src, dst)
    except OSError as exc:
        for rel, had_old in reversed(moved):
            dst = store.path(rel)
            with contextlib.suppress(OSError):
                if dst.exists():
                    dst.unlink()
                if had_old:
                    os.replace(backup.joinpath(*rel.split("/")), dst)
        raise AssetError(
            f"could not move PARE's data into {store.root}: {exc}; the store is as before"
        ) from exc


def install_pare_zip(
    zip_path: Path,
    store: AssetStore,
    *,
    source: str | None = None,
    downloaded: bool = False,
    load_checkpoints: bool = True,
    progress: Callable[[Progress], None] | None = None,
    cancel: CancelToken | None = None,
) -> InstallReport:
    """Unpack and verify PARE's data zip, then move it into ``store`` and record it in the manifest.

    Parameters
    ----------
    zip_path : ``pare-github-data.zip`` (top folder ``data/``).
    store : the asset store to install into (created if needed).
    source : what to record as the origin (a URL); default the zip's path.
    downloaded : the zip came from our downloader (changes the advice when it is damaged).
    load_checkpoints : strict-load both checkpoints (slow: ~2 x 190 MB); False: files only.
    progress : called with ``Progress(stage, done, total)``, stages ``"unpack"`` (bytes) and
        ``"check"`` (models).
    cancel : checked between chunks; a cancel leaves the store as it was.

    Raises
    ------
    AssetError
        A damaged archive, a missing or invalid file, no disk space. The store is unchanged.
    """
    zip_path = Path(zip_path)
    if not zip_path.is_file():
        raise AssetError(
            f"{zip_path} does not exist (expected PARE's data archive pare-github-data.zip)"
        )
    root_existed = store.root.exists()
    report = InstallReport(source=source or str(zip_path.absolute()))
    staging: Path | None = None
    try:
        try:
            zf = zipfile.ZipFile(zip_path)
        except (zipfile.BadZipFile, EOFError, OSError) as exc:
            raise _corrupt(zip_path, exc, downloaded) from exc
        with zf:
            members, report.ignored = _plan(zf, zip_path)
            _check_space(store.root, sum(i.file_size for i in members.values()))
            store.root.mkdir(parents=True, exist_ok=True)
            _remove_stale_staging(store.root)
            staging = store.root / f".staging-{os.getpid()}-{os.urandom(4).hex()}"
            staging.mkdir()
            digests = _unpack(zf, members, staging, zip_path, downloaded, progress, cancel)
        report.warnings = check_contents(
            staging, load_checkpoints=load_checkpoints, progress=progress, cancel=cancel
        )
        if cancel is not None:
            cancel.check()
        manifest = Manifest.load(store)  # fail on a broken manifest before touching anything
        rels = sorted(digests)
        _move_into_place(staging, store, rels)
        for rel in rels:
            manifest.record(rel, *digests[rel], source=SOURCE)
        manifest.installs[SOURCE] = {"from": report.source, "at": now_iso(), "files": len(rels)}
        manifest.save(store)
        expected = {f.rel for f in EXPECTED_FILES}
        report.installed = rels
        report.extras = [r for r in rels if r not in expected]
        return report
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        if not root_existed and store.root.is_dir() and not any(store.root.iterdir()):
            store.root.rmdir()


def pare_data_installed(store: AssetStore) -> bool:
    """Every expected file is present with the size the manifest recorded for it."""
    try:
        manifest = Manifest.load(store)
    except AssetError:
        return False
    for f in EXPECTED_FILES:
        entry = manifest.files.get(f.rel)
        path = store.path(f.rel)
        if entry is None or not path.is_file() or path.stat().st_size != entry["size"]:
            return False
    return True
