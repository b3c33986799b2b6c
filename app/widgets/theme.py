"""Colours and the dark Fusion palette of the app (one place for the look)."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPalette, QPixmap, QPolygonF
from PySide6.QtWidgets import QApplication

BACKGROUND = "#17181b"  # plots
WINDOW = "#232428"
BASE = "#1c1d20"
ALT_BASE = "#222327"
BUTTON = "#2d2e33"
TEXT = "#e3e3e6"
TEXT_DIM = "#a0a2a8"
ACCENT = "#f5a524"  # amber: selection, play state, B
ACCENT_B = "#4cc2ff"  # cyan: the original (A)
CURSOR = "#ffffff"
CUTOFF = "#7fd7ff"
ERROR = "#ff6b6b"
OK = "#7bd88f"
REGION_BRUSH = pg.mkBrush(245, 165, 36, 40)

STYLESHEET = f"""
QToolBar {{ border: 0; spacing: 4px; padding: 3px; }}
QToolButton {{ padding: 4px 8px; border-radius: 4px; }}
QToolButton:checked {{ background: {ACCENT}; color: #111; }}
QToolButton#abButton:checked {{ background: {ACCENT}; color: #111; font-weight: bold; }}
QGroupBox {{ font-weight: bold; border: 1px solid #3a3b40; border-radius: 5px;
             margin-top: 14px; padding-top: 6px; }}
QGroupBox::title {{ subcontrol-origin: margin; left: 8px; padding: 0 3px; color: {TEXT_DIM}; }}
QLabel#timeLabel {{ font-family: monospace; font-size: 13pt; color: {TEXT}; padding: 0 8px; }}
QLabel#errorLabel {{ color: {ERROR}; }}
QLabel#okLabel {{ color: {OK}; }}
QLabel#dimLabel {{ color: {TEXT_DIM}; }}
QLabel#placeholder {{ color: {TEXT_DIM}; font-size: 14pt; }}
QHeaderView::section {{ background: {BUTTON}; padding: 4px; border: 0;
                        border-right: 1px solid #3a3b40; }}
QTableView {{ selection-background-color: #5a4215; gridline-color: #333; }}
QProgressBar {{ border: 1px solid #3a3b40; border-radius: 3px; text-align: center;
                background: {BASE}; }}
QProgressBar::chunk {{ background: {ACCENT}; border-radius: 2px; }}
QTabWidget::pane {{ border: 0; }}
"""


def apply_theme(app: QApplication) -> None:
    """Fusion with a dark palette and the amber accent; pyqtgraph on the same background."""
    app.setStyle("Fusion")
    palette = QPalette()
    roles = {
        QPalette.ColorRole.Window: WINDOW, QPalette.ColorRole.WindowText: TEXT,
        QPalette.ColorRole.Base: BASE, QPalette.ColorRole.AlternateBase: ALT_BASE,
        QPalette.ColorRole.ToolTipBase: BUTTON, QPalette.ColorRole.ToolTipText: TEXT,
        QPalette.ColorRole.Text: TEXT, QPalette.ColorRole.Button: BUTTON,
        QPalette.ColorRole.ButtonText: TEXT, QPalette.ColorRole.BrightText: ERROR,
        QPalette.ColorRole.Highlight: ACCENT, QPalette.ColorRole.HighlightedText: "#111111",
        QPalette.ColorRole.Link: ACCENT_B, QPalette.ColorRole.PlaceholderText: TEXT_DIM,
    }
    for role, colour in roles.items():
        palette.setColor(role, QColor(colour))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText,
                 QPalette.ColorRole.WindowText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor("#6b6d73"))
    app.setPalette(palette)
    app.setStyleSheet(STYLESHEET)
    pg.setConfigOptions(background=BACKGROUND, foreground=TEXT_DIM, antialias=False)


def transport_icon(kind: str, colour: str = TEXT, size: int = 18) -> QIcon:
    """A flat play/pause/stop glyph (the style's standard media icons are too dark here)."""
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(QColor(colour))
    m = size * 0.18
    if kind == "play":
        painter.drawPolygon(QPolygonF([QPointF(m * 1.3, m), QPointF(size - m, size / 2),
                                       QPointF(m * 1.3, size - m)]))
    elif kind == "pause":
        bar = (size - 2 * m) / 3
        painter.drawRect(QRectF(m, m, bar, size - 2 * m))
        painter.drawRect(QRectF(size - m - bar, m, bar, size - 2 * m))
    else:
        painter.drawRect(QRectF(m, m, size - 2 * m, size - 2 * m))
    painter.end()
    return QIcon(pixmap)
