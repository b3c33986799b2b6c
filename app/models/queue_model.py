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
from PySide6.QtGui import QFont
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
    cutoff_hz: float | None = None  # detected
    cutoff_set_hz: float | None = None  # the user's, for this file: used instead of any other
    cutoff_used_hz: float | None = None  # the one the latest output was restored with
    progress: float = 0.0  # 0..1
    step_text: str = ""  # e.g. "chunk 2/5 · step 7/16"
    message: str = ""  # error reason or result note (tooltip)
    output_path: Path | None = None
    subdir: Path = Path()  # its folder under a dropped folder: mirrored in an output folder
    request_id: int = 0  # the latest processing request (stale messages are ignored)


MIN_CUTOFF_HZ = 1000.0  # a cutoff set by hand: at least this, at most the file's Nyquist
EDITABLE = frozenset({Status.READY, Status.DONE, Status.CANCELLED, Status.FAILED})


def parse_cutoff(text: str) -> float | None:
    """A typed cutoff in Hz: "11025", "11025 Hz", "11.025", "11 kHz" (numbers under 100 are
    kHz); "" or "auto" -> None (back to the detected one). Raises ValueError otherwise."""
    t = text.strip().lower().replace(",", ".")
    if t in ("", "auto"):
        return None
    scale = 1.0
    for suffix, factor in (("khz", 1000.0), ("hz", 1.0), ("k", 1000.0)):
        if t.endswith(suffix):
            t, scale = t[: -len(suffix)].strip(), factor
            break
    value = float(t) * scale
    if value < 100:  # "11" means 11 kHz
        value *= 1000.0
    if not value > 0 or value != value:
        raise ValueError(f"not a frequency: {text!r}")
    return value


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
        flags = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        if (index.column() == self.CUTOFF and 0 <= index.row() < len(self._items)
                and self._items[index.row()].status in EDITABLE):
            flags |= Qt.ItemFlag.ItemIsEditable  # double-click: this file's own cutoff
        return flags

    def setData(self, index: ModelIndex, value: Any,
                role: int = Qt.ItemDataRole.EditRole) -> bool:
        """The Cutoff cell takes a cutoff typed by hand (`parse_cutoff`), within 1 kHz and the
        file's Nyquist (and 22.05 kHz); empty or "auto" clears it. Anything else is refused."""
        if (role != Qt.ItemDataRole.EditRole or not index.isValid()
                or index.column() != self.CUTOFF or not self.flags(index)
                & Qt.ItemFlag.ItemIsEditable):
            return False
        item = self._items[index.row()]
        try:
            hz = parse_cutoff(str(value))
        except ValueError:
            return False
        if hz is not None:
            top = min(22050.0, (item.sample_rate or 44100) / 2)
            if not MIN_CUTOFF_HZ <= hz <= top:
                return False
        self.update(item.job_id, cutoff_set_hz=hz)
        return True

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._items):
            return None
        item, col = self._items[index.row()], index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(item, col)
        if role == Qt.ItemDataRole.EditRole and col == self.CUTOFF:
            hz = item.cutoff_set_hz or item.cutoff_hz
            return f"{hz / 1000:g} kHz" if hz else ""
        if role == Qt.ItemDataRole.FontRole and col == self.CUTOFF and item.cutoff_set_hz:
            font = QFont()
            font.setItalic(True)
            return font
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
            hz = item.cutoff_set_hz or item.cutoff_hz
            return f"{hz / 1000:.1f} kHz" if hz else ""
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
        if col == self.CUTOFF and item.cutoff_set_hz:
            detected = f"{item.cutoff_hz / 1000:.1f} kHz" if item.cutoff_hz else "not measured"
            lines.append(f"Cutoff set by hand (detected: {detected}); clear the cell to use "
                         "the detected one")
        elif col == self.CUTOFF and item.status in EDITABLE:
            lines.append("Double-click to set this file's cutoff by hand")
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
    def add_paths(self, paths: list[Path], subdirs: list[Path] | None = None) -> list[int]:
        """Append rows for files not already queued (paths as resolved by the scan job), each
        with its folder under the dropped folder (`subdirs`, default none)."""
        queued = {item.path for item in self._items}
        fresh: list[tuple[Path, Path]] = []
        for path, subdir in zip(paths, subdirs or [Path()] * len(paths), strict=True):
            if path not in queued:
                queued.add(path)
                fresh.append((path, subdir))
        if not fresh:
            return []
        first = len(self._items)
        self.beginInsertRows(QModelIndex(), first, first + len(fresh) - 1)
        new = [QueueItem(next(self._ids), path, subdir=subdir) for path, subdir in fresh]
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
