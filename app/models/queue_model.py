"""The processing queue: one row per input file (QAbstractTableModel shared by the views)."""

from __future__ import annotations

import enum
import itertools
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
)
from PySide6.QtWidgets import QApplication, QStyle

ModelIndex = QModelIndex | QPersistentModelIndex


class Status(enum.Enum):
    PROBING = "Reading…"
    READY = "Ready"
    QUEUED = "Queued"
    PROCESSING = "Processing"
    CANCELLING = "Cancelling…"
    DONE = "Done"
    CANCELLED = "Cancelled"
    FAILED = "Error"  # processing failed: can be retried
    INVALID = "Bad file"  # the input itself is unusable


PROCESSABLE = frozenset({Status.READY, Status.CANCELLED, Status.FAILED, Status.DONE})
ACTIVE = frozenset({Status.QUEUED, Status.PROCESSING, Status.CANCELLING})
SETTLED = frozenset({Status.DONE, Status.FAILED, Status.CANCELLED, Status.INVALID})  # ended


@dataclass(frozen=True)
class QueueItem:
    """What the queue knows about one input file."""

    job_id: int
    path: Path
    status: Status = Status.PROBING
    sample_rate: int | None = None
    channels: int | None = None
    duration_s: float | None = None
    cutoff_hz: float | None = None
    progress: float = 0.0  # 0..1
    step_text: str = ""  # e.g. "chunk 2/5 · step 7/16"
    message: str = ""  # error reason or result note (tooltip)
    output_path: Path | None = None
    request_id: int = 0  # the latest processing request (stale messages are ignored)


def format_duration(seconds: float) -> str:
    minutes, secs = divmod(seconds, 60.0)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours}:{minutes:02d}:{secs:04.1f}" if hours else f"{minutes}:{secs:04.1f}"


class QueueModel(QAbstractTableModel):
    """Rows of `QueueItem`; updates go through `update(job_id, **fields)`."""

    COLUMNS = ("Name", "Rate", "Cutoff", "Ch", "Duration", "Status", "Progress")
    NAME, RATE, CUTOFF, CHANNELS, DURATION, STATUS, PROGRESS = range(7)
    ProgressRole = Qt.ItemDataRole.UserRole + 1  # float 0..1 for the progress delegate
    JobIdRole = Qt.ItemDataRole.UserRole + 2

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._items: list[QueueItem] = []
        self._ids = itertools.count(1)

    # ---- Qt model interface ----
    def rowCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._items)

    def columnCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if (orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole
                and 0 <= section < len(self.COLUMNS)):
            return self.COLUMNS[section]
        return None

    def flags(self, index: ModelIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._items):
            return None
        item, col = self._items[index.row()], index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(item, col)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(item, col)
        if role == Qt.ItemDataRole.DecorationRole and col == self.STATUS:
            return self._icon(item.status)
        if role == Qt.ItemDataRole.TextAlignmentRole and col in (self.RATE, self.CUTOFF,
                                                                 self.CHANNELS, self.DURATION):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == self.ProgressRole and col == self.PROGRESS:
            return item.progress
        if role == self.JobIdRole:
            return item.job_id
        return None

    def _display(self, item: QueueItem, col: int) -> str | None:
        if col == self.NAME:
            return item.path.name
        if col == self.RATE:
            return f"{item.sample_rate / 1000:g} kHz" if item.sample_rate else ""
        if col == self.CUTOFF:
            return f"{item.cutoff_hz / 1000:.1f} kHz" if item.cutoff_hz else ""
        if col == self.CHANNELS:
            return str(item.channels) if item.channels else ""
        if col == self.DURATION:
            return format_duration(item.duration_s) if item.duration_s is not None else ""
        if col == self.STATUS:
            return item.status.value
        if col == self.PROGRESS:
            return item.step_text or (f"{item.progress:.0%}" if item.progress else "")
        return None

    def _tooltip(self, item: QueueItem, col: int) -> str:
        lines = [str(item.path)]
        if item.message:
            lines.append(item.message)
        if item.output_path is not None:
            lines.append(f"→ {item.output_path}")
        return "\n".join(lines)

    @staticmethod
    def _icon(status: Status) -> Any:
        style = QApplication.style() if QApplication.instance() else None
        pixmap = {
            Status.DONE: QStyle.StandardPixmap.SP_DialogApplyButton,
            Status.FAILED: QStyle.StandardPixmap.SP_MessageBoxCritical,
            Status.INVALID: QStyle.StandardPixmap.SP_MessageBoxWarning,
            Status.CANCELLED: QStyle.StandardPixmap.SP_DialogCancelButton,
            Status.PROCESSING: QStyle.StandardPixmap.SP_MediaPlay,
        }.get(status)
        return style.standardIcon(pixmap) if style is not None and pixmap is not None else None

    # ---- our interface ----
    def add_paths(self, paths: list[Path]) -> list[int]:
        """Append rows for files not already queued (paths as resolved by the scan job)."""
        queued = {item.path for item in self._items}
        fresh: list[Path] = []
        for path in paths:
            if path not in queued:
                queued.add(path)
                fresh.append(path)
        if not fresh:
            return []
        first = len(self._items)
        self.beginInsertRows(QModelIndex(), first, first + len(fresh) - 1)
        new = [QueueItem(next(self._ids), path) for path in fresh]
        self._items.extend(new)
        self.endInsertRows()
        return [item.job_id for item in new]

    def remove(self, job_ids: list[int]) -> None:
        for job_id in job_ids:
            row = self.row_of(job_id)
            if row is not None:
                self.beginRemoveRows(QModelIndex(), row, row)
                del self._items[row]
                self.endRemoveRows()

    def row_of(self, job_id: int) -> int | None:
        for row, item in enumerate(self._items):
            if item.job_id == job_id:
                return row
        return None

    def item(self, job_id: int) -> QueueItem | None:
        row = self.row_of(job_id)
        return None if row is None else self._items[row]

    def item_at(self, row: int) -> QueueItem:
        return self._items[row]

    def items(self) -> list[QueueItem]:
        return list(self._items)

    def update(self, job_id: int, **changes: Any) -> QueueItem | None:
        """Replace fields of one item; emits dataChanged for its row."""
        row = self.row_of(job_id)
        if row is None:
            return None
        self._items[row] = replace(self._items[row], **changes)
        self.dataChanged.emit(self.index(row, 0), self.index(row, len(self.COLUMNS) - 1))
        return self._items[row]
