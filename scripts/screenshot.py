#!/usr/bin/env python3
"""Make ``docs/screenshot.png``: the real PARE Studio window with a result loaded.

Run under a display with OpenGL (Xvfb + Mesa)::

    xvfb-run -a -s "-screen 0 1600x1000x24" python3 scripts/screenshot.py \
        [--out docs/screenshot.png] [--smpl-dir DIR] [--frames 60] [--frame 30] \
        [--size 1440x900]

No licensed file is involved. The clip is ``shared/parity/make_demo_fixture.py``'s (two stick
figures crossing); the result is a ``pare_output.pkl`` whose two people follow the clip's boxes with
the *synthetic* SMPL mesh (``shared/parity/make_synthetic_smpl.py``), saved beside the clip and
opened the way a user opens a pkl made elsewhere: File ▸ Open results, in viewer mode, with the SMPL
folder set in the settings. Without ``--smpl-dir`` (or ``PARE_STUDIO_TEST_ASSETS``) the synthetic
SMPL folder is generated into a temporary folder.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
PARITY = REPO.parent / "shared" / "parity"


def synthetic_smpl(work: Path) -> Path:
    fixed = os.environ.get("PARE_STUDIO_TEST_ASSETS")
    out = Path(fixed) / "smpl" if fixed else work / "smpl"
    if not (out / "smpl_mean_params.npz").is_file():
        subprocess.run(
            [sys.executable, str(PARITY / "make_synthetic_smpl.py"), str(out)], check=True
        )
    return out


def pump(app: object, seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        app.processEvents()  # type: ignore[attr-defined]
        time.sleep(0.01)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "screenshot.png")
    ap.add_argument("--smpl-dir", type=Path, default=None)
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--frame", type=int, default=30, help="frame shown")
    ap.add_argument("--size", default="1440x900", help="window size WxH")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="pare_screenshot_"))
    smpl_dir = args.smpl_dir or synthetic_smpl(work)
    clip = work / "demo"
    subprocess.run(
        [
            sys.executable,
            str(PARITY / "make_demo_fixture.py"),
            str(clip),
            "--frames",
            str(args.frames),
        ],
        check=True,
    )

    from PySide6.QtCore import QSettings

    from pare_studio.gui import settings as st
    from pare_studio.gui.app import create_app
    from pare_studio.pipeline.pkl_io import save_pare_output
    from tests.gui.synthetic import make_result_for_truth

    pkl = save_pare_output(
        clip / "pare_output.pkl", make_result_for_truth(smpl_dir, clip / "truth.json")
    )
    app = create_app()
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(work / "settings"))
    os.environ["PARE_STUDIO_DATA"] = str(
        work / "no_store"
    )  # the window must not pick up real assets
    st.save_asset_paths(st.AssetPaths(smpl_dir=smpl_dir))

    from pare_studio.gui.main_window import QtMainWindow

    w = QtMainWindow(assets=None)
    width, height = (int(v) for v in args.size.split("x"))
    w.resize(width, height)
    w.show()
    pump(app, 0.5)
    if not w.open_path(pkl):
        raise SystemExit(f"could not open {pkl}: {w.last_error}")
    deadline = time.perf_counter() + 120
    while (
        w.state.faces is None and time.perf_counter() < deadline
    ):  # SMPL faces load in the background
        pump(app, 0.1)
    w.state.set_display(show_joints3d=False, wireframe=False)
    w.state.set_frame(args.frame)
    w.track_list.selectRow(w.track_list.row_of(1))
    w.mesh_view.reset_view()
    w.mesh_view.draw_now()
    pump(app, 1.0)  # the full-resolution refine of the 3D view and the overlay
    w.mesh_view.draw_now()
    pump(app, 0.3)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(f".{args.out.name}.tmp.png")
    if not w.grab().save(str(tmp)):
        raise SystemExit(f"could not write {tmp}")
    os.replace(tmp, args.out)
    w.close()
    print(f"wrote {args.out} ({width}x{height}, frame {args.frame} of {w.state.n_frames})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
