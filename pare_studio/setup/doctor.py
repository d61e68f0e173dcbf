"""``pare-studio doctor`` as data: what is installed, what is missing, and what to do about it.

:func:`run_doctor` returns a list of :class:`Check`; the CLI prints it with :func:`format_report`
and the window's setup dialog shows the same list. A check is *required* when ``pare-studio demo``
cannot run without it; :func:`demo_ready` is True when no required check failed.

OpenGL and Qt are tried in child processes with a timeout (:mod:`pare_studio.setup.probes`), so a
broken driver can neither hang nor crash the doctor (or the window that asks it).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pare_studio.assets import (
    DATA_ROOT_ENV,
    DEFAULT_MODEL,
    MODELS,
    PARE_DATA_DRIVE_URL,
    SETUP_CMD,
    SMPL_NEUTRAL_URL,
    SMPL_SUPPORT_FILES,
    SMPL_URL,
    AssetStore,
    candidate_stores,
    checkpoint_rel,
    config_rel,
    resolve_yolo_weights,
)
from pare_studio.errors import AssetError, PareStudioError

OK, WARN, FAIL = "ok", "warn", "fail"
#: Lines a probe prints start with this, then JSON (see :mod:`pare_studio.setup.probes`; that module
#: is only ever run in a child process, so nothing here imports it and its PySide6 import).
PROBE_PREFIX = "PROBE "


@dataclass(frozen=True)
class Check:
    """One line of the doctor's report.

    key : stable identifier (``"pare_data"``, ``"smpl_neutral"``, ``"gl_offscreen"``, ...).
    title : what is checked, for people.
    status : ``"ok"``, ``"warn"`` (works, with a remark) or ``"fail"``.
    message : what was found.
    next_step : the exact command or URL that fixes a warn/fail ("" when nothing to do).
    required : ``pare-studio demo`` needs it (a failed required check makes the doctor exit 1).
    """

    key: str
    title: str
    status: str
    message: str
    next_step: str = ""
    required: bool = True

    @property
    def blocking(self) -> bool:
        return self.required and self.status == FAIL


def demo_ready(checks: Sequence[Check]) -> bool:
    """True when nothing ``pare-studio demo`` needs is missing or broken."""
    return not any(c.blocking for c in checks)


# -- assets ---------------------------------------------------------------------------------
def _where(label: str, s: AssetStore) -> str:
    return f"{label} ({s.root})"


_PARE_NEXT = (
    f"`{SETUP_CMD}` (downloads PARE's data, ~1.3 GB); or download pare-github-data.zip from "
    f"{PARE_DATA_DRIVE_URL} and run `{SETUP_CMD} --from-zip pare-github-data.zip`"
)


def check_pare_data(store: AssetStore) -> Check:
    """Configs and checkpoints of both released models, regressors and mean parameters."""
    cands = candidate_stores(store)
    found: dict[str, str] = {}
    for model in MODELS:
        for label, s in cands:
            if s.has_model(model):
                found[model] = _where(label, s)
                break
    side = next(
        (_where(lb, s) for lb, s in cands if all(s.path(r).is_file() for r in SMPL_SUPPORT_FILES)),
        None,
    )
    missing = [r for m in MODELS if m not in found for r in (config_rel(m), checkpoint_rel(m))]
    if side is None:
        missing += [r for r in SMPL_SUPPORT_FILES if not store.path(r).is_file()]
    if not missing:
        places = sorted(set(found.values()) | {side or ""})
        return Check(
            "pare_data",
            "PARE data",
            OK,
            f"{', '.join(MODELS)} checkpoints and configs, joint regressors, mean parameters in "
            + " and ".join(places),
        )
    needed = DEFAULT_MODEL not in found or side is None
    looked = " and ".join(str(s.root) for _, s in cands)
    nothing = not found and side is None
    return Check(
        "pare_data",
        "PARE data",
        FAIL if needed else WARN,
        f"not installed (looked in {looked})"
        if nothing
        else f"missing {', '.join(missing)} in {looked}",
        _PARE_NEXT,
    )


def check_manifest(store: AssetStore) -> Check:
    """Recorded files still present with their recorded size (sha256: ``setup --verify``)."""
    from pare_studio.setup.manifest import Manifest

    title = "Installed files"
    try:
        manifest = Manifest.load(store)
    except AssetError as exc:
        return Check("manifest", title, FAIL, str(exc), f"`{SETUP_CMD} --force`")
    if not manifest.files:
        return Check(
            "manifest",
            title,
            WARN,
            f"no manifest in {store.root}: nothing there was installed by `{SETUP_CMD}`, so files "
            "cannot be checked against their recorded sha256",
            f"`{SETUP_CMD}`",
            required=False,
        )
    bad = []
    for rel, entry in sorted(manifest.files.items()):
        p = store.path(rel)
        if not p.is_file():
            bad.append(f"{rel} (missing)")
        elif p.stat().st_size != entry["size"]:
            bad.append(f"{rel} (size changed)")
    if bad:
        return Check(
            "manifest",
            title,
            FAIL,
            f"{len(bad)} of {len(manifest.files)} recorded files changed: " + ", ".join(bad),
            f"`{SETUP_CMD} --verify` for details; `{SETUP_CMD} --force` reinstalls PARE's data",
        )
    return Check(
        "manifest",
        title,
        OK,
        f"{len(manifest.files)} recorded files present with their recorded sizes",
        f"`{SETUP_CMD} --verify` re-checks every sha256",
        required=False,
    )


def check_smpl(store: AssetStore, gender: str) -> Check:
    """The SMPL model of ``gender`` in the store or ``./data`` (``.npz`` or ``.pkl``)."""
    title = f"SMPL {gender} model"
    for label, s in candidate_stores(store):
        p = s.smpl_model_path(gender)
        if p is not None:
            if p.suffix == ".pkl":
                return Check(
                    f"smpl_{gender}",
                    title,
                    OK,
                    f"{p} (a pickle: read without chumpy on every start)",
                    f"`{SETUP_CMD} --smpl{'' if gender == 'neutral' else '-' + gender} {p}` stores "
                    "a clean pickle-free copy",
                    required=gender == "neutral",
                )
            return Check(
                f"smpl_{gender}", title, OK, f"{p} ({label})", required=gender == "neutral"
            )
    flag = "--smpl" if gender == "neutral" else f"--smpl-{gender}"
    if gender == "neutral":
        return Check(
            "smpl_neutral",
            title,
            FAIL,
            f"not found in {store.smpl_models_dir} (SMPL is licensed separately)",
            f"register and download the neutral model from {SMPL_NEUTRAL_URL} "
            f"(basicModel_neutral_lbs_10_207_0_v1.0.0.pkl), then `{SETUP_CMD} {flag} FILE`",
        )
    return Check(
        f"smpl_{gender}",
        title,
        WARN,
        "not found (only needed for evaluation with gendered ground truth)",
        f"register and download SMPL from {SMPL_URL}, then `{SETUP_CMD} {flag} FILE`",
        required=False,
    )


def check_yolo(store: AssetStore) -> Check:
    """``yolov3.weights``: present, a Darknet file, and the COCO YOLOv3 size."""
    from pare_studio.setup.install import check_darknet_weights

    title = "YOLOv3 weights"
    try:
        path = resolve_yolo_weights(store=store)
    except AssetError:
        return Check(
            "yolo",
            title,
            FAIL,
            f"yolov3.weights not found in {store.root}, ./data or ~/.torch/models",
            f"`{SETUP_CMD}` (the weights are part of PARE's data)",
        )
    try:
        remark = check_darknet_weights(path)
    except (PareStudioError, ValueError, OSError) as exc:
        remark = f"not a Darknet weights file: {exc}"
    if remark:
        return Check("yolo", title, FAIL, f"{path}: {remark}", f"`{SETUP_CMD} --force`")
    return Check("yolo", title, OK, str(path))


# -- system ---------------------------------------------------------------------------------
def check_torch() -> list[Check]:
    """torch importable (required) and CUDA (optional: the demo runs on CPU)."""
    try:
        import torch
    except Exception as exc:  # noqa: BLE001 - a broken install raises anything
        return [
            Check(
                "torch",
                "PyTorch",
                FAIL,
                f"cannot import torch: {type(exc).__name__}: {exc}",
                "install PyTorch for your platform (https://pytorch.org/get-started/locally/)",
            )
        ]
    out = [Check("torch", "PyTorch", OK, f"torch {torch.__version__}")]
    try:
        cuda = torch.cuda.is_available()
        name = torch.cuda.get_device_name(0) if cuda else ""
    except Exception as exc:  # noqa: BLE001
        cuda, name = False, f"({type(exc).__name__}: {exc})"
    if cuda:
        out.append(Check("cuda", "CUDA", OK, f"{name} (CUDA {torch.version.cuda})", required=False))
    else:
        out.append(
            Check(
                "cuda",
                "CUDA",
                WARN,
                f"not available{' ' + name if name else ''}: PARE runs on the CPU (several seconds "
                "per batch of 16 crops)",
                "for a GPU, install a CUDA build of PyTorch (https://pytorch.org/get-started/locally/)",
                required=False,
            )
        )
    return out


def check_video() -> list[Check]:
    """PyAV can encode H.264 (libx264) and decode it back: a 4-frame round trip in memory."""
    try:
        import av
    except Exception as exc:  # noqa: BLE001
        return [Check("video", "Video (PyAV)", FAIL, f"cannot import av: {exc}", "pip install av")]
    import io

    import numpy as np

    out = []
    buf = io.BytesIO()
    try:
        with av.open(buf, "w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=25)
            stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
            for i in range(4):
                img = np.full((48, 64, 3), 40 * i, np.uint8)
                for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        out.append(Check("video_encode", "H.264 encoder", OK, f"libx264 (PyAV {av.__version__})"))
    except Exception as exc:  # noqa: BLE001
        out.append(
            Check(
                "video_encode",
                "H.264 encoder",
                FAIL,
                f"cannot write H.264 with libx264: {type(exc).__name__}: {exc}",
                "pip install --force-reinstall av (its wheels bundle libx264)",
            )
        )
        return out
    try:
        buf.seek(0)
        with av.open(buf, "r") as container:
            frames = sum(1 for _ in container.decode(video=0))
        if frames != 4:
            raise ValueError(f"decoded {frames} of 4 frames")
        out.append(Check("video_decode", "H.264 decoder", OK, "h264 decodes"))
    except Exception as exc:  # noqa: BLE001
        out.append(
            Check(
                "video_decode",
                "H.264 decoder",
                FAIL,
                f"cannot decode H.264: {type(exc).__name__}: {exc}",
                "pip install --force-reinstall av",
            )
        )
    return out


def probe_command(kind: str) -> list[str]:
    """The child-process command that runs probe ``kind`` of :mod:`pare_studio.setup.probes`."""
    root = str(Path(__file__).resolve().parents[2])
    code = (
        f"import sys; sys.path.insert(0, {root!r}); "
        "from pare_studio.setup.probes import main; main()"
    )
    return [sys.executable, "-c", code, kind]


def _stderr_gist(stderr: str) -> str:
    """The telling lines of a crashed probe's stderr: Qt's ``qt.qpa`` lines, else the last line."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    qpa = list(dict.fromkeys(ln for ln in lines if ln.startswith("qt.qpa")))
    picked = qpa[:3] or lines[-1:]
    return " / ".join(ln[:160] for ln in picked) or "no message"


def run_probes(
    commands: Mapping[str, Sequence[str]], timeout: float, env: Mapping[str, str] | None = None
) -> dict[str, dict[str, Any]]:
    """Run probe commands in parallel; each result merges its ``PROBE {json}`` lines.

    A probe that prints no ``ok`` (it crashed) gets ``ok=False`` and the end of its stderr; one
    that runs past ``timeout`` seconds is killed and gets ``ok=False, error="timed out ..."``.
    """
    procs = {
        name: subprocess.Popen(
            list(cmd),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            env=dict(env) if env is not None else None,
        )
        for name, cmd in commands.items()
    }
    deadline = time.monotonic() + timeout
    results: dict[str, dict[str, Any]] = {}
    for name, proc in procs.items():
        info: dict[str, Any] = {}
        try:
            stdout, stderr = proc.communicate(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            if proc.poll() is None:  # still running at the deadline
                proc.kill()
                info["timed_out"] = True
            stdout, stderr = proc.communicate()
        for line in stdout.splitlines():
            if line.startswith(PROBE_PREFIX):
                try:
                    info.update(json.loads(line[len(PROBE_PREFIX) :]))
                except ValueError:
                    pass
        if info.pop("timed_out", False):
            info.update(ok=False, error=f"timed out after {timeout:.0f} s (killed)")
        elif "ok" not in info:
            rc = proc.returncode
            how = f"killed by {signal.Signals(-rc).name}" if rc < 0 else f"exited with code {rc}"
            info.update(ok=False, error=f"{how}: {_stderr_gist(stderr)}")
        results[name] = info
    return results


def check_gl_and_qt(timeout: float = 30.0) -> list[Check]:
    """OpenGL for the renderer (EGL headless, else VisPy's app) and for the window, and Qt."""
    res = run_probes({k: probe_command(k) for k in ("gl-egl", "gl-app", "qt")}, timeout)
    egl, app, qt = res["gl-egl"], res["gl-app"], res["qt"]
    display = os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    out = []
    if egl.get("ok"):
        out.append(
            Check(
                "gl_offscreen",
                "OpenGL offscreen (EGL)",
                OK,
                f"{egl.get('renderer')}, {egl.get('version')}",
            )
        )
    elif app.get("ok"):
        out.append(
            Check(
                "gl_offscreen",
                "OpenGL offscreen (EGL)",
                WARN,
                f"headless EGL failed ({egl.get('error')}); rendering uses the display instead "
                f"({app.get('backend')}, {app.get('renderer')})",
                "for headless rendering install Mesa's EGL (Debian/Ubuntu: apt install libegl1 "
                "libgl1-mesa-dri)",
                required=True,
            )
        )
    else:
        out.append(
            Check(
                "gl_offscreen",
                "OpenGL offscreen (EGL)",
                FAIL,
                f"no OpenGL context: EGL: {egl.get('error')}; VisPy app: {app.get('error')}",
                "install Mesa's EGL (Debian/Ubuntu: apt install libegl1 libgl1-mesa-dri), or run "
                "under a display / `xvfb-run -a`; `pare-studio demo --no-render` skips rendering",
            )
        )
    no_display = sys.platform.startswith("linux") and not display
    headless = "no display (DISPLAY / WAYLAND_DISPLAY unset): the window cannot open here"
    window_next = (
        "the window needs a display with OpenGL (or run it under `xvfb-run -a pare-studio`)"
    )
    if app.get("ok"):
        out.append(
            Check(
                "gl_window",
                "OpenGL in a window",
                OK,
                f"{app.get('backend')}: {app.get('renderer')}",
                required=False,
            )
        )
    else:
        out.append(
            Check(
                "gl_window",
                "OpenGL in a window",
                WARN if no_display else FAIL,
                headless if no_display else f"cannot make a VisPy canvas: {app.get('error')}",
                window_next,
                required=False,
            )
        )
    platforms = ", ".join(qt.get("platforms", [])) or "none found"
    imports = f"PySide6 {qt['version']} (platform plugins: {platforms})" if "version" in qt else ""
    if qt.get("ok"):
        out.append(
            Check(
                "qt",
                "Qt (PySide6)",
                OK,
                f"{imports}, running on {qt.get('platform')!r}",
                required=False,
            )
        )
    elif no_display and imports:
        out.append(
            Check("qt", "Qt (PySide6)", WARN, f"{imports}; {headless}", window_next, required=False)
        )
    else:
        out.append(
            Check(
                "qt",
                "Qt (PySide6)",
                FAIL,
                (f"{imports} imports, but " if imports else "")
                + f"Qt cannot start: {qt.get('error')}",
                "pip install PySide6-Essentials; on Linux also the xcb libraries "
                "(apt install libxcb-cursor0 libxkbcommon-x11-0 libegl1)",
                required=False,
            )
        )
    return out


def run_doctor(
    store: AssetStore | None = None, *, system: bool = True, probe_timeout: float = 30.0
) -> list[Check]:
    """Everything the doctor checks, in display order.

    Parameters
    ----------
    store : the asset store (default :meth:`AssetStore.default`).
    system : also check torch/CUDA, video codecs, OpenGL and Qt (the last two in child processes).
    probe_timeout : seconds the OpenGL / Qt probes may take together.
    """
    store = store if store is not None else AssetStore.default()
    checks = [
        check_pare_data(store),
        check_manifest(store),
        check_smpl(store, "neutral"),
        check_smpl(store, "male"),
        check_smpl(store, "female"),
        check_yolo(store),
    ]
    if system:
        checks += check_torch()
        checks += check_video()
        checks += check_gl_and_qt(probe_timeout)
    return checks


def store_origin(data_root: object = None) -> str:
    """Why the store is where it is: the flag, the environment variable, or the default."""
    if data_root:
        return "--data-root"
    if os.environ.get(DATA_ROOT_ENV):
        return f"${DATA_ROOT_ENV}"
    return f"default; set ${DATA_ROOT_ENV} or pass --data-root to move it"


def format_report(checks: Sequence[Check], store: AssetStore, origin: str = "") -> str:
    """The one-screen text report of :func:`run_doctor`."""
    lines = [f"Asset store: {store.root}" + (f"  ({origin})" if origin else ""), ""]
    width = max((len(c.title) for c in checks), default=0)
    for c in checks:
        tag = {OK: "ok  ", WARN: "warn", FAIL: "FAIL"}[c.status]
        lines.append(f"  {tag}  {c.title:<{width}}  {c.message}")
        if c.next_step and c.status != OK:
            lines.append(f"        {'':<{width}}  -> {c.next_step}")
    lines.append("")
    blocking = [c for c in checks if c.blocking]
    if blocking:
        lines.append(
            f"Not ready for `pare-studio demo`: fix {', '.join(c.title for c in blocking)} "
            "(see -> above)."
        )
    else:
        lines.append("Ready: `pare-studio demo` has everything it needs.")
    return "\n".join(lines)
