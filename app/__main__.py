"""Entry point: `python -m app [FILES...]`, and `jatsr` with no arguments."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.main_window import MainWindow

log = logging.getLogger(__name__)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="jatsr", description="JaT-SR desktop app")
    parser.add_argument("paths", nargs="*", help="audio files or folders to queue")
    parser.add_argument("--process", action="store_true", help="start processing at once")
    parser.add_argument("--debug", action="store_true", help="log at DEBUG level")
    parser.add_argument("--quit-after", type=int, default=0, metavar="MS",
                        help=argparse.SUPPRESS)  # headless smoke tests
    parser.add_argument("--quit-when-done", action="store_true",
                        help=argparse.SUPPRESS)  # smoke tests: close once every file is settled
    return parser.parse_args(list(argv))


def main(argv: list[str] | None = None) -> int:
    """Build the QApplication, logging and error dialog, open the main window; returns exit code."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    import engine

    engine.keep_freed_memory()  # restores reuse their big buffers (engine/allocator.py)
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from app import __version__
    from app.diagnostics import ErrorReporter, install_qt_message_handler, log_dir, setup_logging
    from app.main_window import MainWindow
    from app.settings import APPLICATION, ORGANIZATION, Settings
    from app.widgets.theme import apply_theme

    app = QApplication.instance() or QApplication([sys.argv[0]])
    assert isinstance(app, QApplication)
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationVersion(__version__)
    directory = log_dir()
    handler = setup_logging(directory, logging.DEBUG if args.debug else logging.INFO)
    install_qt_message_handler()
    reporter = ErrorReporter(show_dialogs=not args.quit_after)
    reporter.install()
    log.info("JaT-SR %s starting; log in %s", __version__, directory)
    try:
        apply_theme(app)
        window = MainWindow(Settings.open_default(), log_dir=directory)
        window.show()
        window.add_paths(args.paths)
        if args.process:
            window.controller.model.rowsInserted.connect(window.controller.process_all)
            window.controller.model.dataChanged.connect(window.controller.process_all)
        if args.quit_after:
            QTimer.singleShot(args.quit_after, window.close)
        if args.quit_when_done:
            window.controller.model.dataChanged.connect(
                lambda *_: _close_when_settled(window))
        code = app.exec()
        log.info("JaT-SR exiting with code %d", code)
        return int(code)
    finally:
        reporter.uninstall()
        logging.getLogger().removeHandler(handler)
        handler.close()


def _close_when_settled(window: MainWindow) -> None:
    """Close the window (later, outside the model's signal) once every queued file has ended:
    restored, failed, cancelled or unreadable."""
    from PySide6.QtCore import QTimer

    from app.models.queue_model import SETTLED

    items = window.controller.model.items()
    if items and all(i.status in SETTLED for i in items):
        QTimer.singleShot(0, window.close)


if __name__ == "__main__":
    sys.exit(main())
