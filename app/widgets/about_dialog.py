"""Help › About: versions, compute devices, audio outputs and the model card summary."""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTextBrowser, QVBoxLayout, QWidget

from app.workers.messages import ModelStatus, SystemInfo


def _rows(pairs: list[tuple[str, Any]]) -> str:
    return "".join(f"<tr><td><b>{html.escape(str(k))}</b>&nbsp;&nbsp;</td>"
                   f"<td>{html.escape(str(v))}</td></tr>" for k, v in pairs)


def model_summary(status: ModelStatus | None) -> list[tuple[str, Any]]:
    """Rows describing the model from its JSON config (`engine.read_model_config`)."""
    if status is None:
        return [("Model", "not checked yet")]
    if not status.ok:
        return [("Model", status.spec), ("Problem", status.error)]
    meta = status.summary
    model = meta.get("run", {}).get("model", {})
    rows: list[tuple[str, Any]] = [("File", status.path), ("Runs on", status.device),
                                   ("Codec", meta.get("codec", {}).get("name", "?"))]
    if model:
        rows.append(("Architecture", f"DiT width {model.get('width')} × depth "
                                     f"{model.get('depth')}, {model.get('heads')} heads "
                                     f"({model.get('kv_heads')} KV), patch "
                                     f"{model.get('patch_len')}, {model.get('positions')}"))
    rows.append(("Weights", meta.get("weights_dtype", "?")))
    for key, value in sorted(meta.get("training", {}).items()):
        if isinstance(value, str | int | float):
            rows.append((f"Training: {key}", value))
    return rows


def about_html(info: SystemInfo | None, status: ModelStatus | None) -> str:
    parts = ["<h2>JaT-SR</h2><p>Restores the missing high frequencies of band-limited audio "
             "to full-band 44.1 kHz with JaT V2, a flow-matching Diffusion Transformer.</p>"]
    if info is None:
        parts.append("<p>Gathering system information…</p>")
    else:
        parts.append("<h3>Versions</h3><table>" + _rows(list(info.versions.items())) + "</table>")
        gpus = [(f"GPU {g.index}", f"{g.name} ({g.memory_gib:.0f} GiB)") for g in info.gpus]
        parts.append("<h3>Compute</h3><table>" + _rows(
            gpus or [("GPU", "no CUDA GPU found: the model runs on the CPU")]) + "</table>")
        audio = [(f"Output {d.index}", d.name) for d in info.audio_devices]
        parts.append("<h3>Audio</h3><table>" + _rows(
            audio or [("Playback", info.audio_error)]) + "</table>")
    parts.append("<h3>Model</h3><table>" + _rows(model_summary(status)) + "</table>")
    return "".join(parts)


class AboutDialog(QDialog):
    def __init__(self, info: SystemInfo | None, status: ModelStatus | None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("About JaT-SR")
        self.resize(620, 560)
        layout = QVBoxLayout(self)
        self.browser = QTextBrowser()
        self.browser.setHtml(about_html(info, status))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout.addWidget(self.browser)
        layout.addWidget(buttons)
