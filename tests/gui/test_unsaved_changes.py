"""Unsaved track edits: the "Save changes to the project?" prompt, the title's mark, File ▸ Open.

Real windows on small synthetic results (a 4-frame image folder, two people). The prompt is a
modal QMessageBox; :func:`save_prompt` clicks one of its buttons as soon as it shows (a polling
timer), and records its text — so a prompt that should not appear is answered "Cancel" and
recorded instead of blocking the test.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from pare_studio.gui.window_editing import SAVE_CHANGES_TEXT
from pare_studio.project import load_project
from pare_studio.results import VideoResult
from tests.gui.prompts import save_prompt

N_FRAMES, WIDTH, HEIGHT = 4, 96, 64


@pytest.fixture
def frames_dir(tmp_path: Path) -> Path:
    """A folder of 4 tiny PNG frames (the window's "video")."""
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(N_FRAMES):
        img = np.full((HEIGHT, WIDTH, 3), 40 * i, np.uint8)
        assert cv2.imwrite(str(folder / f"{i + 1:06d}.png"), img)
    return folder


@pytest.fixture(scope="module")
def result(smpl_dir: Path) -> VideoResult:
    from tests.gui.synthetic import make_video_result

    return make_video_result(smpl_dir, n_frames=N_FRAMES, width=WIDTH, height=HEIGHT)


def _window(make_main_window, frames_dir: Path, result: VideoResult, **kwargs: object):  # noqa: ANN001, ANN202
    """A window showing ``frames_dir`` with ``result`` (no model: viewer mode, unless asked)."""
    kwargs.setdefault("assets", None)
    w = make_main_window(**kwargs)
    with save_prompt("Cancel") as seen:
        assert w.open_path(frames_dir)
    w.state.set_result(result)
    assert seen == [] and w.editing.is_clean() and not w.isWindowModified()
    return w


def _rename(w, track_id: int, name: str) -> None:  # noqa: ANN001
    w.state.select_track(track_id)
    assert w.editing.rename_selected(name)


def _shown_title(w) -> str:  # noqa: ANN001
    """The title as the window system gets it ([*] replaced by "*" or nothing)."""
    return w.windowHandle().title()


def test_close_with_edits_asks_cancel_keeps_the_window_discard_closes(
    make_main_window, frames_dir: Path, result: VideoResult
) -> None:  # noqa: ANN001
    w = _window(make_main_window, frames_dir, result)
    assert not _shown_title(w).endswith("*")
    _rename(w, 1, "Alice")
    assert w.isWindowModified() and _shown_title(w).endswith("*")
    assert "[*]" in w.windowTitle()

    with save_prompt("Cancel") as seen:
        assert not w.close()
    assert seen == [SAVE_CHANGES_TEXT]
    assert w.isVisible() and w.editing.session.state.name(1) == "Alice"
    assert w.engine.thread.isRunning()  # nothing was shut down
    assert w.isWindowModified()

    with save_prompt("Discard") as seen:
        assert w.close()
    assert seen == [SAVE_CHANGES_TEXT] and not w.isVisible()


def test_save_from_the_prompt_writes_a_project_that_reopens_clean(
    make_main_window, frames_dir: Path, result: VideoResult, tmp_path: Path, qtbot
) -> None:  # noqa: ANN001
    from PySide6.QtWidgets import QFileDialog

    w = _window(make_main_window, frames_dir, result)
    _rename(w, 2, "Bob")
    w.state.select_track(1)
    w.state.set_frame(2)
    assert w.editing.split_selected()  # #1: frames 0-1, #3: frames 2-3
    answers = iter(["", str(tmp_path / "blocked.pareproj"), str(tmp_path / "edited")])
    asked: list[str] = []

    def dialog(*_a: object, **_k: object) -> tuple[str, str]:
        asked.append("save as")
        return next(answers), ""

    (tmp_path / "blocked.pareproj").mkdir()  # a folder there: the write fails
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(QFileDialog, "getSaveFileName", staticmethod(dialog))
        # Save, then Cancel in the Save As dialog: the close is cancelled
        with save_prompt("Save") as seen:
            assert not w.close()
        assert seen == [SAVE_CHANGES_TEXT] and asked == ["save as"] and w.isVisible()
        # Save to a path that cannot be written: an error, the window stays, still modified
        with save_prompt("Save") as seen, qtbot.waitSignal(w.error_shown, timeout=30000):
            assert not w.close()
        assert w.isVisible() and w.isEnabled() and w.isWindowModified()
        assert "Saving the project failed" in w.last_error
        w.error_box.close()
        # Save to a good path: written, then the window closes
        with save_prompt("Save") as seen:
            assert w.close()
        assert seen == [SAVE_CHANGES_TEXT] and asked == ["save as"] * 3
    assert not w.isVisible()
    path = tmp_path / "edited.pareproj"
    project = load_project(path)
    assert project.state.track_ids() == [1, 2, 3] and project.state.name(2) == "Bob"

    w2 = make_main_window(assets=None)
    with qtbot.waitSignal(w2.editing.project_opened, timeout=30000):
        assert w2.open_path(path)
    st = w2.editing.session.state
    assert st.track_ids() == [1, 2, 3] and st.name(2) == "Bob"
    assert list(st.tracks[3].frame_ids) == [2, 3]
    assert w2.editing.is_clean() and not w2.isWindowModified()
    assert _shown_title(w2) == "PARE Studio — edited.pareproj"
    with save_prompt("Cancel") as seen:
        assert w2.close()  # an opened project, untouched: no question
    assert seen == []


def test_no_prompt_when_saved_exported_or_undone_to_the_saved_state(
    make_main_window, frames_dir: Path, result: VideoResult, tmp_path: Path, qtbot
) -> None:  # noqa: ANN001
    w = _window(make_main_window, frames_dir, result)
    ed = w.editing
    stack = ed.session.undo_stack

    # saved project: clean; one more edit: modified; undo it: clean again
    _rename(w, 1, "Alice")
    with qtbot.waitSignal(ed.project_saved, timeout=30000):
        assert ed.save_project(tmp_path / "p.pareproj")
    assert ed.is_clean() and not w.isWindowModified()
    assert _shown_title(w) == "PARE Studio — p.pareproj"
    _rename(w, 2, "Bob")
    assert w.isWindowModified() and _shown_title(w) == "PARE Studio — p.pareproj*"
    stack.undo()
    assert ed.is_clean() and not w.isWindowModified()
    stack.undo()  # before the save: modified
    assert not ed.is_clean() and w.isWindowModified()
    stack.redo()

    # a pkl export of the edit state counts as saving it
    _rename(w, 2, "Bob")
    assert not ed.is_clean()
    with qtbot.waitSignal(ed.export_finished, timeout=60000):
        assert ed.export(ed.export_job("pkl", tmp_path / "out.pkl"))
    assert ed.is_clean() and not w.isWindowModified()
    _rename(w, 1, "Carol")
    with qtbot.waitSignal(w.engine.export_finished, timeout=60000):
        assert w.export_pkl(tmp_path / "out2.pkl")  # File ▸ Export pare_output.pkl
    assert ed.is_clean() and (tmp_path / "out2.pkl").is_file()

    # other exports do not
    _rename(w, 1, "Dora")
    with qtbot.waitSignal(ed.export_finished, timeout=60000):
        assert ed.export(ed.export_job("npz", tmp_path / "out.npz"))
    assert not ed.is_clean()
    stack.undo()

    with save_prompt("Cancel") as seen:
        assert w.open_path(frames_dir)  # replaces the result: clean, so no question
        assert w.state.result is None and ed.is_clean()
        w.state.set_result(result)  # fresh results: clean
        assert w.close()
    assert seen == [] and not w.isVisible()


def test_opening_another_file_or_running_asks_first(
    make_main_window, frames_dir: Path, result: VideoResult, tmp_path: Path, qtbot
) -> None:  # noqa: ANN001
    w = _window(make_main_window, frames_dir, result, assets="synthetic", preload=False)
    ed = w.editing
    with qtbot.waitSignal(ed.project_saved, timeout=30000):
        assert ed.save_project(tmp_path / "saved.pareproj")
    _rename(w, 1, "Alice")

    with save_prompt("Cancel") as seen:
        assert not w.open_path(tmp_path / "saved.pareproj")
        assert not w.open_results(tmp_path / "any.pkl")
        assert not w.open_video(frames_dir)
        assert not ed.open_project(tmp_path / "saved.pareproj")
        assert not w.start_run()  # a run replaces the result too
    assert seen == [SAVE_CHANGES_TEXT] * 5
    assert not w.engine.is_busy and ed.session.state.name(1) == "Alice" and w.isWindowModified()

    with save_prompt("Discard") as seen, qtbot.waitSignal(ed.project_opened, timeout=30000):
        assert w.open_path(tmp_path / "saved.pareproj")
    assert seen == [SAVE_CHANGES_TEXT]  # asked once (open_path → open_project → open_video)
    assert ed.session.state.name(1) == "Person 1" and ed.is_clean()
    assert not w.isWindowModified()


def test_file_open_lists_and_dispatches_projects_frames_and_results(
    make_main_window, frames_dir: Path, result: VideoResult, tmp_path: Path, qtbot
) -> None:  # noqa: ANN001
    from PySide6.QtWidgets import QFileDialog

    from pare_studio.pipeline.pkl_io import save_pare_output

    w = _window(make_main_window, frames_dir, result)
    ed = w.editing
    _rename(w, 2, "Bob")
    with qtbot.waitSignal(ed.project_saved, timeout=30000):
        assert ed.save_project(tmp_path / "proj.pareproj")
    save_pare_output(tmp_path / "pare_output.pkl", result)
    (tmp_path / "broken.pareproj").write_bytes(b"not a zip")

    picked: list[str] = []
    filters: list[str] = []

    def dialog(_parent: object, _title: str, _start: str, flt: str, *_a: object) -> tuple[str, str]:
        filters.append(flt)
        return picked.pop(0), ""

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(QFileDialog, "getOpenFileName", staticmethod(dialog))
        assert w.actions_.open_file.shortcut().toString() == "Ctrl+O"

        picked.append(str(frames_dir / "000003.png"))  # a frame: its folder opens
        with save_prompt("Cancel") as seen:
            w.actions_.open_file.trigger()
        assert seen == [] and w.state.video_path == frames_dir and w.state.result is None

        picked.append(str(tmp_path / "pare_output.pkl"))
        with save_prompt("Cancel") as seen:
            w.actions_.open_file.trigger()
        assert seen == [] and w.state.result_path == tmp_path / "pare_output.pkl"
        assert sorted(w.state.result.tracks) == [1, 2]
        _rename(w, 1, "Alice")

        picked.append(str(tmp_path / "proj.pareproj"))
        with save_prompt("Discard") as seen, qtbot.waitSignal(ed.project_opened, timeout=30000):
            w.actions_.open_file.trigger()
        assert seen == [SAVE_CHANGES_TEXT]
        assert ed.project_path == tmp_path / "proj.pareproj"
        assert ed.session.state.name(2) == "Bob" and ed.session.state.name(1) == "Person 1"

        picked.append(str(tmp_path / "broken.pareproj"))  # named .pareproj: the project's error
        with qtbot.waitSignal(w.error_shown, timeout=5000) as blocker:
            w.actions_.open_file.trigger()
        assert "broken.pareproj" in blocker.args[0] and "video" not in blocker.args[0].lower()
        w.error_box.close()
        assert ed.project_path == tmp_path / "proj.pareproj"  # nothing changed

    first, *kinds = filters[0].split(";;")
    for pattern in ("*.mp4", "*.mkv", "*.png", "*.jpg", "*.pkl", "*.pareproj"):
        assert pattern in first
    assert any("*.pareproj" in k and "*.mp4" not in k for k in kinds)
    assert any("*.png" in k and "*.pkl" not in k for k in kinds)
    assert kinds[-1] == "All files (*)"
