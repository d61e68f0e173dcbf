"""QtTrackList: a row per track (colour, id, frames, range); tick = show, click = select.

The Export column ticks the tracks to export (``export_toggled``); the context menu comes from
a provider the window installs (``set_context_menu_provider``: rename, delete, merge, split).
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QContextMenuEvent, QIcon, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QMenu,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

from pare_studio.gui.state import ViewerState
from pare_studio.gui.track_utils import track_color_255

_HEADERS = ("Track", "Frames", "Range", "Export")
_EXPORT_COL = 3


def _label(track_id: int, name: str) -> str:
    return f"#{track_id}  {name}" if name else f"#{track_id}"


def _check(on: bool) -> Qt.CheckState:
    return Qt.CheckState.Checked if on else Qt.CheckState.Unchecked


def _swatch(track_id: int) -> QIcon:
    pix = QPixmap(12, 12)
    pix.fill(QColor(*track_color_255(track_id)))
    return QIcon(pix)


class QtTrackList(QTableWidget):
    """The tracks of the current result, kept in sync with :class:`ViewerState`.

    Signals
    -------
    export_toggled(int, bool) : the user ticked / unticked a track's Export box.
    """

    export_toggled = Signal(int, bool)

    def __init__(self, state: ViewerState, parent: QWidget | None = None) -> None:
        super().__init__(0, len(_HEADERS), parent)
        self._state = state
        self._updating = False
        self._menu_provider: Callable[[int], QMenu | None] | None = None
        self.setObjectName("trackList")
        self.setHorizontalHeaderLabels(list(_HEADERS))
        self.verticalHeader().setVisible(False)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.horizontalHeader().setStretchLastSection(True)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setFocusPolicy(Qt.FocusPolicy.ClickFocus)

        self.itemChanged.connect(self._on_item_changed)
        self.itemSelectionChanged.connect(self._on_selection)
        state.result_changed.connect(self._rebuild)
        state.track_added.connect(self._upsert)
        state.selection_changed.connect(self._show_selection)
        state.visibility_changed.connect(self._show_visibility)
        state.labels_changed.connect(self._show_labels)
        self._rebuild()

    # -- public -------------------------------------------------------------------------------

    def track_ids(self) -> list[int]:
        """Track ids in row order."""
        return [self._row_id(r) for r in range(self.rowCount())]

    def row_of(self, track_id: int) -> int:
        for r in range(self.rowCount()):
            if self._row_id(r) == int(track_id):
                return r
        return -1

    def set_checked(self, track_id: int, checked: bool) -> None:
        """Tick / untick a track's box, as a click would."""
        r = self.row_of(track_id)
        if r >= 0:
            self.item(r, 0).setCheckState(
                Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked
            )

    def is_checked(self, track_id: int) -> bool:
        r = self.row_of(track_id)
        return r >= 0 and self.item(r, 0).checkState() == Qt.CheckState.Checked

    def set_exported(self, track_id: int, on: bool) -> None:
        """Tick / untick a track's Export box, as a click would."""
        r = self.row_of(track_id)
        if r >= 0:
            self.item(r, _EXPORT_COL).setCheckState(_check(on))

    def is_exported(self, track_id: int) -> bool:
        r = self.row_of(track_id)
        return r >= 0 and self.item(r, _EXPORT_COL).checkState() == Qt.CheckState.Checked

    def set_context_menu_provider(self, provider: Callable[[int], QMenu | None] | None) -> None:
        """``provider(track_id)`` builds the context menu of a row (None: no menu)."""
        self._menu_provider = provider

    def context_menu_for(self, track_id: int) -> QMenu | None:
        """The context menu of ``track_id``'s row (not shown), or None."""
        if self._menu_provider is None or self.row_of(track_id) < 0:
            return None
        return self._menu_provider(int(track_id))

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:  # noqa: N802
        item = self.itemAt(event.pos())
        menu = self.context_menu_for(self._row_id(item.row())) if item is not None else None
        if menu is not None:
            menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
            menu.popup(event.globalPos())
            event.accept()

    # -- internals ----------------------------------------------------------------------------

    def _row_id(self, row: int) -> int:
        return int(self.item(row, 0).data(Qt.ItemDataRole.UserRole))

    def _rebuild(self) -> None:
        self._updating = True
        try:
            self.setRowCount(0)
            for tid in self._state.track_ids:
                self._write_row(self.rowCount(), tid, insert=True)
        finally:
            self._updating = False
        self._show_selection(self._state.selected_track)

    def _upsert(self, track_id: int) -> None:
        self._updating = True
        try:
            r = self.row_of(track_id)
            if r >= 0:
                self._write_row(r, track_id, insert=False)
            else:
                ids = self.track_ids()
                pos = sum(1 for t in ids if t < track_id)
                self._write_row(pos, track_id, insert=True)
        finally:
            self._updating = False
        self._show_selection(self._state.selected_track)

    def _write_row(self, row: int, track_id: int, insert: bool) -> None:
        track = self._state.track(track_id)
        if track is None:
            return
        if insert:
            self.insertRow(row)
        name = self._state.track_name(track_id)
        first = QTableWidgetItem(_swatch(track_id), _label(track_id, name))
        first.setData(Qt.ItemDataRole.UserRole, int(track_id))
        first.setFlags(first.flags() | Qt.ItemFlag.ItemIsUserCheckable)
        first.setCheckState(
            Qt.CheckState.Checked if self._state.is_visible(track_id) else Qt.CheckState.Unchecked
        )
        first.setToolTip("Tick to show this person; click the row to select")
        n = len(track)
        span = f"{int(track.frame_ids[0])}–{int(track.frame_ids[-1])}" if n else "–"
        frames = QTableWidgetItem()
        frames.setData(Qt.ItemDataRole.DisplayRole, n)
        self.setItem(row, 0, first)
        self.setItem(row, 1, frames)
        self.setItem(row, 2, QTableWidgetItem(span))
        export = QTableWidgetItem()
        flags = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsUserCheckable
        export.setFlags(flags | Qt.ItemFlag.ItemIsSelectable)
        export.setCheckState(_check(self._state.is_exported(track_id)))
        export.setToolTip("Tick to include this person in exports")
        self.setItem(row, _EXPORT_COL, export)

    def _on_item_changed(self, item: QTableWidgetItem) -> None:
        if self._updating:
            return
        if item.column() == _EXPORT_COL:
            tid = self._row_id(item.row())
            self.export_toggled.emit(tid, item.checkState() == Qt.CheckState.Checked)
            return
        if item.column() != 0:
            return
        tid = int(item.data(Qt.ItemDataRole.UserRole))
        self._state.set_track_visible(tid, item.checkState() == Qt.CheckState.Checked)

    def _on_selection(self) -> None:
        if self._updating:
            return
        rows = {i.row() for i in self.selectedItems()}
        if rows:
            self._state.select_track(self._row_id(min(rows)))

    def _show_selection(self, track_id: int) -> None:
        r = self.row_of(track_id) if track_id >= 0 else -1
        self._updating = True
        try:
            if r >= 0:
                self.selectRow(r)
            else:
                self.clearSelection()
        finally:
            self._updating = False

    def _show_visibility(self, track_id: int, visible: bool) -> None:
        r = self.row_of(track_id)
        if r < 0:
            return
        self._updating = True
        try:
            self.item(r, 0).setCheckState(
                Qt.CheckState.Checked if visible else Qt.CheckState.Unchecked
            )
        finally:
            self._updating = False

    def _show_labels(self) -> None:
        """Names and Export boxes from the state (after an edit, undo or redo)."""
        self._updating = True
        try:
            for r in range(self.rowCount()):
                tid = self._row_id(r)
                self.item(r, 0).setText(_label(tid, self._state.track_name(tid)))
                self.item(r, _EXPORT_COL).setCheckState(_check(self._state.is_exported(tid)))
        finally:
            self._updating = False
