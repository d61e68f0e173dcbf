"""``pare-studio setup``: get PARE's data, import the user's SMPL files, verify the asset store.

    pare-studio setup                              download + install PARE's data (resumable)
    pare-studio setup --from-zip pare-github-data.zip
    pare-studio setup --smpl SMPL_NEUTRAL.pkl [--smpl-male M.pkl] [--smpl-female F.pkl]
    pare-studio setup --verify                     re-hash every installed file (exit 1 if changed)

``--data-root DIR`` (or ``$PARE_STUDIO_DATA``) chooses the store; ``--url`` (or
``$PARE_STUDIO_DATA_URL``) a mirror of the zip.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import Any


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "setup",
        help="download PARE's data, import your SMPL files, verify the asset store",
        description="Install what PARE needs into the asset store (default: the user data folder; "
        "override with --data-root or $PARE_STUDIO_DATA). With no options: download PARE's data "
        "zip (checkpoints, configs, regressors, mean parameters, YOLOv3 weights), check it and "
        "install it. An interrupted download resumes when run again.",
    )
    p.add_argument("--data-root", type=Path, default=None, help="asset store folder")
    src = p.add_mutually_exclusive_group()
    src.add_argument(
        "--url",
        default=None,
        help="where to download pare-github-data.zip from (default: $PARE_STUDIO_DATA_URL, "
        "else PARE's Google Drive file)",
    )
    src.add_argument(
        "--from-zip",
        type=Path,
        default=None,
        metavar="FILE",
        help="install a pare-github-data.zip you already have",
    )
    p.add_argument(
        "--smpl",
        type=Path,
        default=None,
        metavar="FILE",
        help="your neutral SMPL model (SMPL_NEUTRAL.pkl or "
        "basicModel_neutral_lbs_10_207_0_v1.0.0.pkl); stored as a clean, pickle-free .npz",
    )
    p.add_argument("--smpl-male", type=Path, default=None, metavar="FILE", help="male SMPL model")
    p.add_argument(
        "--smpl-female", type=Path, default=None, metavar="FILE", help="female SMPL model"
    )
    p.add_argument(
        "--verify",
        action="store_true",
        help="re-check the sha256 of every installed file (exit 1 if any changed)",
    )
    p.add_argument(
        "--force", action="store_true", help="reinstall PARE's data even if it is installed"
    )
    p.add_argument(
        "--keep-zip", action="store_true", help="keep the downloaded zip after installing it"
    )
    p.set_defaults(func=run)


class _Bars:
    """tqdm bars for :class:`~pare_studio.results.Progress` reports, one bar per stage."""

    UNITS = {"download": "B", "unpack": "B", "verify": "B", "check": "model"}

    def __init__(self) -> None:
        self.bar: Any = None
        self.stage: str | None = None

    def __call__(self, p: Any) -> None:
        from tqdm import tqdm

        if p.stage != self.stage:
            self.close()
            self.stage = p.stage
            unit = self.UNITS.get(p.stage, "it")
            self.bar = tqdm(
                total=p.total or None,
                initial=p.done,
                desc=p.stage,
                unit=unit,
                unit_scale=unit == "B",
                unit_divisor=1024 if unit == "B" else 1000,
                file=sys.stderr,
                disable=None,
                leave=True,
            )
        elif self.bar is not None:
            if p.total and self.bar.total != p.total:
                self.bar.total = p.total
            self.bar.update(p.done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
            self.stage = None


def _discard(download: Path) -> None:
    """Delete a downloaded zip, and its folder when that is left empty."""
    download.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        download.parent.rmdir()


def _install_pare_data(args: argparse.Namespace, store: Any, bars: _Bars) -> None:
    from pare_studio.errors import ArchiveError
    from pare_studio.setup.download import DATA_ZIP_NAME, data_url, download
    from pare_studio.setup.install import install_pare_zip, pare_data_installed

    if args.from_zip is not None:
        print(f"Installing {args.from_zip} into {store.root} ...")
        report = install_pare_zip(args.from_zip, store, progress=bars)
    else:
        if pare_data_installed(store) and not args.force:
            print(f"PARE's data is already installed in {store.root} (--force reinstalls it).")
            return
        url = data_url(args.url)
        dest = store.downloads_dir / DATA_ZIP_NAME
        if dest.is_file():
            print(f"Using the download already in {dest}.")
        else:
            print(f"Downloading PARE's data from {url}\n  to {dest} (resumable) ...")
            download(url, dest, progress=bars)
            bars.close()
        try:
            report = install_pare_zip(dest, store, source=url, downloaded=True, progress=bars)
        except ArchiveError:
            _discard(dest)  # damaged: the next run downloads afresh
            raise
        if not args.keep_zip:
            _discard(dest)
    bars.close()
    print(
        f"Installed {len(report.installed)} files of PARE's data into {store.root}"
        + (f" ({len(report.extras)} besides the expected ones)" if report.extras else "")
        + "; recorded in manifest.json."
    )
    if report.ignored:
        print(f"Ignored {len(report.ignored)} archive entries outside its data folder.")
    for w in report.warnings:
        print(f"warning: {w}")


def _import_smpl(args: argparse.Namespace, store: Any) -> None:
    from pare_studio.setup.smpl_import import import_smpl_models

    sources = {
        g: f
        for g, f in (("neutral", args.smpl), ("male", args.smpl_male), ("female", args.smpl_female))
        if f is not None
    }
    if not sources:
        return
    for gender, dest in import_smpl_models(sources, store).items():
        print(f"Imported SMPL {gender} model {sources[gender]} -> {dest} (pickle-free).")


def _verify(store: Any, bars: _Bars) -> int:
    from pare_studio.setup.manifest import verify_store

    report = verify_store(store, progress=bars)
    bars.close()
    for rel in report.missing:
        print(f"  MISSING   {rel}")
    for rel, why in report.modified:
        print(f"  MODIFIED  {rel}: {why}")
    if report.ok:
        print(f"All {len(report.checked)} installed files match manifest.json ({store.root}).")
        return 0
    print(
        f"{len(report.missing) + len(report.modified)} of "
        f"{len(report.checked) + len(report.missing) + len(report.modified)} installed files "
        "are missing or modified. Run `pare-studio setup --force` to reinstall PARE's data, "
        "`pare-studio setup --smpl FILE` for SMPL files."
    )
    return 1


def run(args: argparse.Namespace) -> int:
    from pare_studio.assets import AssetStore
    from pare_studio.setup.doctor import check_pare_data, check_smpl, check_yolo
    from pare_studio.setup.lock import store_lock

    store = AssetStore.default(args.data_root)
    smpl_given = any(f is not None for f in (args.smpl, args.smpl_male, args.smpl_female))
    want_pare = args.from_zip is not None or args.url is not None or not (smpl_given or args.verify)
    bars = _Bars()
    try:
        with store_lock(store):
            _import_smpl(args, store)  # local and quick: first, so a failed download keeps it
            if want_pare:
                _install_pare_data(args, store, bars)
    except KeyboardInterrupt:
        bars.close()
        print(
            "pare-studio setup: interrupted; PARE's data was not installed (a partial download "
            "is kept and resumes when you run the command again).",
            file=sys.stderr,
        )
        return 130
    finally:
        bars.close()
    rc = _verify(store, bars) if args.verify else 0

    todo = [
        c
        for c in (check_pare_data(store), check_smpl(store, "neutral"), check_yolo(store))
        if c.status != "ok"
    ]
    for c in todo:
        print(f"Not ready yet: {c.title}: {c.message}\n  -> {c.next_step}")
    if not todo and rc == 0:
        print(
            "Everything `pare-studio demo` needs from the asset store is there "
            "(`pare-studio doctor` checks the rest)."
        )
    return rc
