"""The queue table: file rows with a painted progress bar; emits intent signals only."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QPoint, Qt, Signal, Slot
from PySide6.QtGui import QAction, QPainter
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QHeaderView,
    QMenu,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionProgressBar,
    QStyleOptionViewItem,
    QTableView,
    QWidget,
)

from app.models.queue_model import QueueModel


class ProgressDelegate(QStyledItemDelegate):
    """Paints `QueueModel.ProgressRole` as a thin progress bar with the step text on it."""

    def paint(self, painter: QPainter, option: QStyleOptionViewItem,
              index: QModelIndex | QPersistentModelIndex) -> None:
        fraction = index.data(QueueModel.ProgressRole)
        if not fraction:
            super().paint(painter, option, index)
            return
        bar = QStyleOptionProgressBar()
        bar.rect = option.rect.adjusted(3, 4, -3, -4)  # type: ignore[attr-defined]
        bar.minimum, bar.maximum = 0, 1000
        bar.progress = round(float(fraction) * 1000)
        bar.text = str(index.data(Qt.ItemDataRole.DisplayRole) or "")
        bar.textVisible = True
        bar.state = option.state  # type: ignore[attr-defined]
        style = option.widget.style() if option.widget else QApplication.style()  # type: ignore
        style.drawControl(QStyle.ControlElement.CE_ProgressBar, bar, painter)


class QueueView(QTableView):
    """Shows a QueueModel; asks for processing/cancelling/removal through signals."""

    process_requested = Signal(list)  # job ids
    cancel_requested = Signal(list)
    remove_requested = Signal(list)
    current_changed = Signal(int)  # job id, 0 when nothing is selected

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setTabKeyNavigation(False)  # Tab toggles A/B
        self.setAlternatingRowColors(True)
        self.setShowGrid(False)
        self.setWordWrap(False)
        self.verticalHeader().hide()
        self.verticalHeader().setDefaultSectionSize(24)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(self._on_self_context_menu)
        self.setItemDelegateForColumn(QueueModel.PROGRESS, ProgressDelegate(self))

    def setModel(self, model: QueueModel) -> None:  # type: ignore[override]  # Qt override
        super().setModel(model)
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(QueueModel.NAME, QHeaderView.ResizeMode.Stretch)
        for col, width in ((QueueModel.RATE, 80), (QueueModel.CUTOFF, 80),
                           (QueueModel.CHANNELS, 40), (QueueModel.DURATION, 80),
                           (QueueModel.STATUS, 120), (QueueModel.PROGRESS, 200)):
            self.setColumnWidth(col, width)
        self.selectionModel().currentRowChanged.connect(self._on_selection_current_row_changed)

    def selected_job_ids(self) -> list[int]:
        rows = sorted({index.row() for index in self.selectionModel().selectedRows()})
        return [self.model().index(row, 0).data(QueueModel.JobIdRole) for row in rows]

    def select_job(self, job_id: int) -> None:
        model = self.model()
        for row in range(model.rowCount()):
            if model.index(row, 0).data(QueueModel.JobIdRole) == job_id:
                self.selectRow(row)
                return

    @Slot(QModelIndex, QModelIndex)
    def _on_selection_current_row_changed(self, current: QModelIndex,
                                          previous: QModelIndex) -> None:
        self.current_changed.emit(int(current.data(QueueModel.JobIdRole) or 0))

    @Slot(QPoint)
    def _on_self_context_menu(self, pos: QPoint) -> None:
        ids = self.selected_job_ids()
        if not ids:
            return
        menu = QMenu(self)
        for text, signal in (("Process", self.process_requested),
                             ("Cancel", self.cancel_requested),
                             ("Remove from queue", self.remove_requested)):
            action = QAction(text, menu)
            action.triggered.connect(lambda _=False, s=signal: s.emit(ids))
            menu.addAction(action)
        menu.exec(self.viewport().mapToGlobal(pos))
