"""Settings persist, carry a version key, and fall back to defaults on bad values."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings

from app.settings import DEFAULTS, SETTINGS_VERSION, Settings
from engine.config import SamplerConfig


def open_at(path: Path) -> Settings:
    return Settings(QSettings(str(path), QSettings.Format.IniFormat))


def test_defaults_and_version(tmp_path: Path) -> None:
    s = open_at(tmp_path / "s.ini")
    assert s.get("processing/model") == "default"
    assert s.get("processing/steps") == DEFAULTS["processing/steps"]
    assert DEFAULTS["processing/steps"] == SamplerConfig.steps  # the app's default is the CLI's
    assert s.store.value("version", type=int) == SETTINGS_VERSION
    opts = s.processing_options()
    assert opts.cutoff_hz is None and opts.fmt == "wav" and opts.subtype == "PCM_24"
    assert opts.warm_start is False and opts.keep_louder_input is True
    assert opts.fill_holes is False


def test_values_persist_across_instances(tmp_path: Path) -> None:
    s = open_at(tmp_path / "s.ini")
    s.set("processing/steps", 8)
    s.set("processing/cutoff_auto", False)
    s.set("processing/cutoff_hz", 4000.0)
    s.set("output/format", "flac")
    s.set("output/subtype", "PCM_16")
    s.set("finetune/folders", ["/a", "/b"])
    s.sync()
    again = open_at(tmp_path / "s.ini")
    opts = again.processing_options()
    assert (opts.steps, opts.cutoff_hz, opts.fmt, opts.subtype) == (8, 4000.0, "flac", "PCM_16")
    assert again.get("finetune/folders") == ["/a", "/b"]
    assert again.get("processing/cutoff_auto") is False


def test_invalid_values_fall_back(tmp_path: Path) -> None:
    s = open_at(tmp_path / "s.ini")
    s.set("processing/solver", "rk4")
    s.set("output/format", "mp3")
    s.set("output/subtype", "FLOAT")
    s.store.setValue("processing/steps", "many")
    opts = s.processing_options()
    assert opts.solver == "euler" and opts.fmt == "wav" and opts.subtype == "FLOAT"
    assert opts.steps >= 1


def test_output_rates_are_the_engines() -> None:
    from app.settings import OUTPUT_RATES
    from engine.config import OUTPUT_RATES as ENGINE_RATES

    assert OUTPUT_RATES == ENGINE_RATES
