"""JaT-SR desktop app: PySide6 + pyqtgraph front end over the `engine` package's public API."""

from __future__ import annotations

from importlib import metadata

try:
    __version__ = metadata.version("jatsr")
except metadata.PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.1.0+src"
