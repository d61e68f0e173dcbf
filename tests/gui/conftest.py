"""GUI test fixtures: a display, the app, isolated settings, a demo clip and ``make_main_window``.

GUI tests drive real widgets. Without a ``DISPLAY`` an Xvfb server is started for the session
(``xvfb-run -a pytest tests/gui`` works as well). The 3D viewport renders through a headless EGL
context (Mesa llvmpipe here), so no GPU is needed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

_XVFB: subprocess.Popen[bytes] | None = None


def _die_with_parent() -> None:
    """In the Xvfb child: get SIGTERM when pytest dies, even from a crash (Linux)."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _start_xvfb() -> None:
    """Start Xvfb on a free display number when no display is set."""
    global _XVFB
    if os.environ.get("DISPLAY") or os.environ.get("QT_QPA_PLATFORM"):
        return
    exe = shutil.which("Xvfb")
    if exe is None:
        return  # Qt then fails with its own message naming the missing display
    read_fd, write_fd = os.pipe()
    _XVFB = subprocess.Popen(
        [exe, "-displayfd", str(write_fd), "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
        pass_fds=(write_fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=_die_with_parent,
    )
    os.close(write_fd)
    with os.fdopen(read_fd) as fh:
        number = fh.readline().strip()
    os.environ["DISPLAY"] = f":{number}"


_start_xvfb()
if not os.environ.get("XDG_RUNTIME_DIR"):
    _runtime = tempfile.mkdtemp(prefix="xdg-runtime-")
    os.chmod(_runtime, 0o700)
    os.environ["XDG_RUNTIME_DIR"] = _runtime


def pytest_unconfigure(config: pytest.Config) -> None:
    if _XVFB is not None:
        _XVFB.terminate()
        _XVFB.wait(timeout=10)


@pytest.fixture(scope="session")
def qapp(qapp_args: list[str]) -> Iterator[object]:
    """The application, created like the real one (library options, PySide workaround)."""
    from pare_studio.gui.app import create_app

    yield create_app(qapp_args or [sys.argv[0]])


@pytest.fixture(autouse=True)
def _discard_unanswered_save_prompts(qapp: object) -> Iterator[None]:
    """A "Save changes?" box nobody answers within 0.5 s gets "Discard": a window left with
    unsaved edits must not block pytest-qt's closing of the widgets (before fixture teardown)."""
    from tests.gui.prompts import PromptAnswerer

    answerer = PromptAnswerer("Discard", delay_s=0.5)
    yield
    answerer.stop()


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """QSettings, the asset store and ./data point into the test's temp folder."""
    from PySide6.QtCore import QSettings

    folder = tmp_path / "settings"
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(folder))
    monkeypatch.setenv("PARE_STUDIO_DATA", str(tmp_path / "empty_store"))
    monkeypatch.chdir(tmp_path)
    return folder


@pytest.fixture(scope="session")
def demo_clip(tmp_path_factory: pytest.TempPathFactory, parity_dir: Path) -> Path:
    """A 6-frame synthetic clip (``clip.mp4``, ``boxes.txt``, ``truth.json``): two people."""
    out = tmp_path_factory.mktemp("demo_clip")
    subprocess.run(
        [sys.executable, str(parity_dir / "make_demo_fixture.py"), str(out), "--frames", "6"],
        check=True,
        capture_output=True,
    )
    return out


@pytest.fixture(scope="session")
def model_assets(cfg_path: Path, ckpt_path: Path, smpl_dir: Path) -> object:
    from pare_studio.gui.engine_jobs import ModelAssets

    return ModelAssets(cfg=cfg_path, ckpt=ckpt_path, smpl_dir=smpl_dir)


@pytest.fixture(scope="session")
def shared_predictor_loader() -> Callable[[object], object]:
    """Loads the synthetic predictor once per session (in whichever engine thread asks first)."""
    from pare_studio.gui.engine import load_predictor_for

    cache: dict[object, object] = {}
    lock = threading.Lock()

    def loader(assets: object) -> object:
        with lock:
            if assets not in cache:
                cache[assets] = load_predictor_for(assets)  # type: ignore[arg-type]
            return cache[assets]

    return loader


@pytest.fixture
def make_main_window(
    qtbot: object, model_assets: object, shared_predictor_loader: Callable[[object], object]
) -> Iterator[Callable[..., object]]:
    """Factory: ``make_main_window(assets="synthetic" | None | ModelAssets, **kwargs)``.

    The window is shown and registered with qtbot. At teardown it is closed, its engine thread
    must have finished, and no window or Python thread may be left behind.
    """
    from PySide6.QtCore import QCoreApplication, QEvent
    from PySide6.QtWidgets import QApplication

    from pare_studio.gui.main_window import QtMainWindow

    threads_before = set(threading.enumerate())
    made: list[tuple[QtMainWindow, object]] = []

    def factory(assets: object = "synthetic", show: bool = True, **kwargs: object) -> QtMainWindow:
        if assets == "synthetic":
            assets = model_assets
            kwargs.setdefault("predictor_loader", shared_predictor_loader)
        window = QtMainWindow(assets=assets, **kwargs)  # type: ignore[arg-type]
        qtbot.addWidget(window)  # type: ignore[attr-defined]
        made.append((window, window.engine.thread))
        if show:
            window.show()
            qtbot.waitExposed(window)  # type: ignore[attr-defined]
        return window

    yield factory

    for window, thread in made:
        try:
            if window.isVisible():
                window.close()
        except RuntimeError:  # already deleted by qtbot's teardown
            pass
        assert thread.wait(60000), "the engine thread did not stop"
        assert thread.isFinished()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    QCoreApplication.processEvents()
    visible = [w for w in QApplication.topLevelWidgets() if w.isVisible()]
    assert not visible, f"windows left open: {visible}"
    leaked = [
        t
        for t in threading.enumerate()
        if t not in threads_before and t.is_alive() and not isinstance(t, threading._DummyThread)  # noqa: SLF001
    ]
    assert not leaked, f"threads left running: {leaked}"
