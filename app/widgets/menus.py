"""Menus and the toolbar from a table: {menu title: [(text, shortcut, slot) | None, ...]}."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QIcon
from PySide6.QtWidgets import QMainWindow, QStyle

MenuEntry = tuple[str, str, Callable[[], object]] | None  # None: a separator
MenuTable = dict[str, list[MenuEntry]]


def install_menus(window: QMainWindow, menus: MenuTable,
                  toolbar: tuple[tuple[str, QStyle.StandardPixmap | QIcon], ...] = ()
                  ) -> dict[str, QAction]:
    """Add the menus (window-wide shortcuts) and a toolbar; returns actions by plain text."""
    actions: dict[str, QAction] = {}
    for title, entries in menus.items():
        menu = window.menuBar().addMenu(title)
        for entry in entries:
            if entry is None:
                menu.addSeparator()
                continue
            text, shortcut, slot = entry
            action = menu.addAction(text)
            action.setShortcut(shortcut)
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            action.triggered.connect(slot)
            actions[text.replace("&", "")] = action
    if toolbar:
        bar = window.addToolBar("Main")
        bar.setObjectName("mainToolbar")
        bar.setMovable(False)
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        for text, pixmap in toolbar:
            actions[text].setIcon(pixmap if isinstance(pixmap, QIcon)
                                  else window.style().standardIcon(pixmap))
            bar.addAction(actions[text])
    return actions
