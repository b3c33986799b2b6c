"""Logging to a rotating file, Qt messages into `logging`, and the unexpected-error dialog."""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
import threading
import traceback
from pathlib import Path
from types import TracebackType

from PySide6.QtCore import (
    QMessageLogContext,
    QObject,
    QStandardPaths,
    QtMsgType,
    Signal,
    Slot,
    qInstallMessageHandler,
)
from PySide6.QtWidgets import QApplication, QMessageBox

log = logging.getLogger(__name__)

LOG_DIR_ENV = "JATSR_LOG_DIR"
LOG_FILE = "jatsr.log"
LOG_FORMAT = "%(asctime)s %(levelname)-7s %(threadName)s %(name)s: %(message)s"
QT_LEVELS = {
    QtMsgType.QtDebugMsg: logging.DEBUG, QtMsgType.QtInfoMsg: logging.INFO,
    QtMsgType.QtWarningMsg: logging.WARNING, QtMsgType.QtCriticalMsg: logging.ERROR,
    QtMsgType.QtFatalMsg: logging.CRITICAL,
}
ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


def log_dir() -> Path:
    """`$JATSR_LOG_DIR`, else the platform's app-data folder + /logs."""
    env = os.environ.get(LOG_DIR_ENV)
    if env:
        return Path(env)
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppLocalDataLocation)
    return Path(base or Path.home() / ".jatsr") / "logs"


def setup_logging(directory: Path, level: int = logging.INFO) -> logging.Handler:
    """A rotating file handler (5 x 2 MB) plus stderr for warnings; returns the file handler."""
    directory.mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.RotatingFileHandler(directory / LOG_FILE, maxBytes=2_000_000,
                                                   backupCount=5, encoding="utf-8")
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)
    return handler


def qt_message_handler(mode: QtMsgType, context: QMessageLogContext, message: str) -> None:
    logging.getLogger("qt").log(QT_LEVELS.get(mode, logging.WARNING), "%s", message)


def install_qt_message_handler() -> None:
    qInstallMessageHandler(qt_message_handler)


class ErrorReporter(QObject):
    """`sys.excepthook`/`threading.excepthook` replacement: log, then one dialog at a time."""

    _report = Signal(str, str)  # title, details: queued to the GUI thread

    def __init__(self, show_dialogs: bool = True) -> None:
        super().__init__()
        self.show_dialogs = show_dialogs
        self._showing = False
        self._previous = (sys.excepthook, threading.excepthook)
        self._report.connect(self._on_self_report)

    def install(self) -> None:
        sys.excepthook = self.excepthook
        threading.excepthook = self._thread_hook

    def uninstall(self) -> None:
        sys.excepthook, threading.excepthook = self._previous

    def excepthook(self, exc_type: type[BaseException], exc: BaseException,
                   tb: TracebackType | None) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            QApplication.quit()
            return
        log.critical("unexpected error", exc_info=(exc_type, exc, tb))
        details = "".join(traceback.format_exception(exc_type, exc, tb))
        self._report.emit(f"{exc_type.__name__}: {exc}", details)

    def _thread_hook(self, args: threading.ExceptHookArgs) -> None:
        if args.exc_value is not None:
            self.excepthook(args.exc_type, args.exc_value, args.exc_traceback)

    @Slot(str, str)
    def _on_self_report(self, title: str, details: str) -> None:
        if self._showing or not self.show_dialogs:
            return
        self._showing = True
        try:
            box = QMessageBox(QMessageBox.Icon.Critical, "JaT-SR: unexpected error",
                              "Something went wrong that JaT-SR did not expect. The details are "
                              "in the log; the app keeps running.\n\n" + title)
            box.setDetailedText(details)
            box.exec()
        finally:
            self._showing = False
