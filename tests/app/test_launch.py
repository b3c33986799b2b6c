"""Headless launch smoke test: `python -m app` opens, queues a file and exits cleanly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import soundfile as sf
from pytestqt.qtbot import QtBot

from app.widgets.about_dialog import AboutDialog, about_html
from app.workers.messages import AudioDevice, ModelStatus, SystemInfo
from engine import Gpu

ROOT = Path(__file__).resolve().parents[2]


def test_python_m_app_starts_and_quits(tmp_path: Path, clip_path: Path) -> None:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", JATSR_LOG_DIR=str(tmp_path / "log"),
               JATSR_SETTINGS_FILE=str(tmp_path / "settings.ini"))
    proc = subprocess.run([sys.executable, "-m", "app", "--quit-after", "1500", str(clip_path)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    log_text = (tmp_path / "log" / "jatsr.log").read_text()
    assert "starting" in log_text and "exiting with code 0" in log_text
    assert "Traceback" not in log_text + proc.stderr
    assert (tmp_path / "settings.ini").exists()


def test_python_m_app_processes_with_the_default_model_and_quits_when_done(
        tmp_path: Path, clip_path: Path) -> None:
    """The shipped model restores a queued file in the window; --quit-when-done closes it after."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", JATSR_LOG_DIR=str(tmp_path / "log"),
               JATSR_SETTINGS_FILE=str(tmp_path / "settings.ini"))
    proc = subprocess.run([sys.executable, "-m", "app", "--process", "--quit-when-done",
                           str(clip_path)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = clip_path.with_name("speech.jatsr.wav")
    assert sf.info(str(out)).samplerate == 44100
    log_text = (tmp_path / "log" / "jatsr.log").read_text()
    assert "exiting with code 0" in log_text and "Traceback" not in log_text


def test_about_dialog_lists_versions_gpu_and_model(qtbot: QtBot) -> None:
    info = SystemInfo({"torch": "2.14.1", "Qt": "6.12.0"}, True,
                      (Gpu(0, "NVIDIA H100 80GB HBM3", 79.1),),
                      (AudioDevice(3, "pulse", 2, True),), "")
    status = ModelStatus(True, "default", "cuda:0 (NVIDIA H100 80GB HBM3)",
                         Path("/m/v2.safetensors"),
                         summary={"codec": {"name": "stft"}, "weights_dtype": "float16",
                                  "run": {"model": {"width": 1024, "depth": 16, "heads": 16,
                                                    "kv_heads": 4, "patch_len": 4,
                                                    "positions": "rope"}},
                                  "training": {"steps": 400000}})
    html = about_html(info, status)
    for text in ("2.14.1", "NVIDIA H100", "pulse", "stft", "width 1024", "400000"):
        assert text in html
    dialog = AboutDialog(None, ModelStatus(False, "default", error="no default model shipped"))
    qtbot.addWidget(dialog)
    assert "no default model shipped" in dialog.browser.toPlainText()
