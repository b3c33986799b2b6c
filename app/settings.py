"""QSettings wrapper: typed keys with defaults, a version key and `migrate()`.

`Settings.open_default()` uses the platform store, or an INI file named by the environment
variable `JATSR_SETTINGS_FILE` (tests and the headless smoke run write only there).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QByteArray, QSettings

log = logging.getLogger(__name__)

SETTINGS_VERSION = 1
ORGANIZATION = "JaT-SR"
APPLICATION = "JaT-SR"
SETTINGS_FILE_ENV = "JATSR_SETTINGS_FILE"

SOLVERS = ("euler", "heun")
DEVICES = ("auto", "cuda", "cpu")
FORMATS = {"wav": ("PCM_16", "PCM_24", "FLOAT"), "flac": ("PCM_16", "PCM_24")}
OUTPUT_RATES = (44100, 48000, 88200, 96000)  # = engine.config.OUTPUT_RATES (a test checks)

DEFAULTS: dict[str, Any] = {
    "processing/model": "default",  # "default" = the shipped model, else a model file path
    "processing/steps": 2,  # = engine SamplerConfig.steps (not imported: keeps torch out)
    "processing/solver": "euler",
    # start from the DSP estimate for every input (the engine's SamplerConfig with
    # prior_min_flatness = 0 and prior_skip_one_shots off); False: the engine's default, which
    # leaves out one-shots, and inputs cut off at or below 6 kHz unless noise-like
    "processing/warm_start": False,
    # above the cutoff, keep input that is louder than the generated band (= the engine's
    # PipelineConfig.keep_louder_input); False: generate over everything above the cutoff
    "processing/keep_louder_input": True,
    # below the cutoff, fill the holes a lossy encoder left with generated content (= the
    # engine's PipelineConfig.fill_holes_db at HOLE_DEPTH_DB); False: the kept band untouched
    "processing/fill_holes": False,
    "processing/device": "auto",
    "processing/cutoff_auto": True,
    "processing/cutoff_hz": 8000.0,  # used when cutoff_auto is False
    "output/folder": "",  # "" = next to the input
    "output/format": "wav",
    "output/subtype": "PCM_24",
    "output/rate": 44100,  # the restoration is 44.1 kHz; 48000 etc. resample it (video work)
    "playback/loudness_match": True,
    "playback/device": -1,  # -1 = system default output
    "view/db_floor": -100.0,
    "view/db_ceiling": -10.0,
    "view/log_frequency": False,
    "view/show_difference": False,
    "finetune/folders": [],
    "finetune/base_model": "",
    "finetune/steps": 2000,
    "finetune/batch_size": 8,
    "finetune/max_minutes": 0,  # 0: no time limit; else stop then, LR decay fitted to it
    "finetune/out_dir": "",  # where runs go, each in a folder of its own ("" = ~/JaT-SR/finetune)
    "finetune/last_run": "",  # the folder of the run started last (Resume continues it)
    "window/geometry": QByteArray(),
    "window/state": QByteArray(),
}


@dataclass(frozen=True)
class ProcessingOptions:
    """What a restoration job needs from the settings (a snapshot, safe to send to workers)."""

    model: str
    steps: int
    solver: str
    warm_start: bool
    keep_louder_input: bool
    fill_holes: bool
    device: str
    cutoff_hz: float | None  # None: use the detected cutoff
    output_folder: str
    fmt: str
    subtype: str
    rate: int = 44100


class Settings:
    """Typed access to the app's persistent settings."""

    def __init__(self, store: QSettings) -> None:
        self.store = store
        self.migrate()

    @classmethod
    def open_default(cls) -> Settings:
        path = os.environ.get(SETTINGS_FILE_ENV)
        if path:
            return cls(QSettings(path, QSettings.Format.IniFormat))
        return cls(QSettings(ORGANIZATION, APPLICATION))

    def migrate(self) -> None:
        """Bring an older store up to SETTINGS_VERSION (version 0: nothing stored yet)."""
        version = int(self.store.value("version", 0, type=int))  # type: ignore[arg-type]
        if version > SETTINGS_VERSION:
            log.warning("settings written by a newer JaT-SR (version %d); using what fits",
                        version)
            return
        if version < SETTINGS_VERSION:
            self.store.setValue("version", SETTINGS_VERSION)

    def get(self, key: str) -> Any:
        """The stored value of `key` with the type of its default; invalid values -> default."""
        default = DEFAULTS[key]
        if isinstance(default, list):
            value = self.store.value(key, default)
            if value is None:
                return []
            return [str(v) for v in (value if isinstance(value, list) else [value])]
        if isinstance(default, QByteArray):
            value = self.store.value(key, default)
            return value if isinstance(value, QByteArray) else QByteArray()
        try:
            return self.store.value(key, default, type=type(default))
        except (TypeError, ValueError):
            return default

    def set(self, key: str, value: Any) -> None:
        if key not in DEFAULTS:
            raise KeyError(key)
        self.store.setValue(key, value)

    def sync(self) -> None:
        self.store.sync()

    def processing_options(self) -> ProcessingOptions:
        """A validated snapshot of the processing and output settings."""
        solver = self.get("processing/solver")
        device = self.get("processing/device")
        fmt = self.get("output/format")
        fmt = fmt if fmt in FORMATS else "wav"
        subtype = self.get("output/subtype")
        subtype = subtype if subtype in FORMATS[fmt] else "PCM_24"
        rate = int(self.get("output/rate"))
        return ProcessingOptions(
            model=self.get("processing/model") or "default",
            steps=max(1, int(self.get("processing/steps"))),
            solver=solver if solver in SOLVERS else "euler",
            warm_start=bool(self.get("processing/warm_start")),
            keep_louder_input=bool(self.get("processing/keep_louder_input")),
            fill_holes=bool(self.get("processing/fill_holes")),
            device=device if device in DEVICES else "auto",
            cutoff_hz=None if self.get("processing/cutoff_auto")
            else float(self.get("processing/cutoff_hz")),
            output_folder=self.get("output/folder"),
            fmt=fmt,
            subtype=subtype,
            rate=rate if rate in OUTPUT_RATES else 44100,
        )
