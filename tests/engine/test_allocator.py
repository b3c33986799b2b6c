"""keep_freed_memory: applied on glibc Linux, skipped when switched off."""

from __future__ import annotations

import ctypes.util
import sys

import pytest

from engine.allocator import keep_freed_memory


def test_switched_off_by_the_environment(monkeypatch):
    monkeypatch.setenv("JATSR_KEEP_FREED_MEMORY", "0")
    assert keep_freed_memory() is False


@pytest.mark.skipif(not sys.platform.startswith("linux") or ctypes.util.find_library("c") is None,
                    reason="glibc's mallopt only")
def test_applied_on_linux(monkeypatch):
    monkeypatch.delenv("JATSR_KEEP_FREED_MEMORY", raising=False)
    assert keep_freed_memory() is True
