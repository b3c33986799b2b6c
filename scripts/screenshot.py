"""Take a real screenshot of the main window after restoring the example phone call.

    .venv/bin/python scripts/screenshot.py [--model default|PATH] [--out docs/screenshot.png]

Runs the app under Xvfb when the `Xvfb` binary exists (Debian: xvfb libxcb-icccm4
libxcb-keysyms1 libxcb-cursor0 libxkbcommon-x11-0) and grabs the window from the X server;
otherwise it renders offscreen with `QWidget.grab()`. Without --model it uses the shipped model,
or, when none ships, trains a tiny one on the fly (needs the dev install: it reuses the engine
tests' helper). Everything it makes goes to a temporary folder, except the PNG.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "resources" / "examples" / "phone_8k.wav"
log = logging.getLogger("screenshot")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model file (default: the shipped model, else a tiny "
                                        "one trained on the fly)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshot.png")
    parser.add_argument("--steps", type=int, help="sampler steps (default: the app's)")
    parser.add_argument("--size", default="1600x1000", help="window size WxH")
    parser.add_argument("--offscreen", action="store_true", help="never use Xvfb")
    parser.add_argument("--train-steps", type=int, default=40)
    return parser.parse_args()


def start_xvfb(width: int, height: int) -> subprocess.Popen[bytes] | None:
    """Start Xvfb on a free display and point Qt at it; None when Xvfb is missing."""
    binary = shutil.which("Xvfb")
    if binary is None:
        return None
    for display in range(90, 110):
        if Path(f"/tmp/.X11-unix/X{display}").exists():
            continue
        proc = subprocess.Popen([binary, f":{display}", "-screen", "0",
                                 f"{width + 40}x{height + 40}x24", "-nolisten", "tcp"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(50):
            if Path(f"/tmp/.X11-unix/X{display}").exists():
                os.environ["DISPLAY"] = f":{display}"
                os.environ["QT_QPA_PLATFORM"] = "xcb"
                return proc
            time.sleep(0.1)
        proc.terminate()
    return None


def train_model(work: Path, steps: int) -> Path:
    sys.path.insert(0, str(ROOT))
    from engine import save_model
    from tests.engine.conftest import synth_clip, train_tiny

    log.info("training a tiny model for %d steps", steps)
    return save_model(work / "tiny", train_tiny(synth_clip(6.0, seed=1), steps=steps))


def shipped_model() -> str | None:
    """'default' when a model ships in resources/models, else None."""
    import engine

    try:
        engine.default_model_path()
    except engine.ModelFileError:
        return None
    return "default"


def make_inputs(work: Path) -> list[Path]:
    import numpy as np
    import soundfile as sf

    inputs = work / "inputs"
    inputs.mkdir()
    shutil.copy(EXAMPLE, inputs / EXAMPLE.name)
    rate = 22050
    t = np.arange(rate * 40) / rate
    music = sum(np.sin(2 * np.pi * f * t) * np.exp(-((t * 2) % 1) * 3) / (i + 1)
                for i, f in enumerate((220.0, 330.0, 440.0, 660.0, 880.0)))
    sf.write(inputs / "guitar_22k.flac", 0.2 * music.astype(np.float32), rate)
    (inputs / "voicemail.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    return [inputs / EXAMPLE.name, inputs / "guitar_22k.flac", inputs / "voicemail.wav"]


def wait_for(app: object, condition: object, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        app.processEvents()  # type: ignore[attr-defined]
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    xvfb = None if args.offscreen else start_xvfb(width, height)
    if xvfb is None:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    log.info("platform: %s", os.environ["QT_QPA_PLATFORM"])
    with tempfile.TemporaryDirectory(prefix="jatsr-shot-") as tmp:
        work = Path(tmp)
        os.environ["JATSR_SETTINGS_FILE"] = str(work / "settings.ini")
        try:
            return take(args, work, width, height, xvfb is not None)
        finally:
            if xvfb is not None:
                xvfb.terminate()
                xvfb.wait(5)


def take(args: argparse.Namespace, work: Path, width: int, height: int, real: bool) -> int:
    sys.path.insert(0, str(ROOT))
    from PySide6.QtWidgets import QApplication

    from app.main_window import MainWindow
    from app.models.queue_model import Status
    from app.playback.player import Mode
    from app.settings import DEFAULTS, Settings
    from app.widgets.theme import apply_theme

    model = args.model or shipped_model() or str(train_model(work, args.train_steps))
    inputs = make_inputs(work)
    app = QApplication([sys.argv[0]])
    apply_theme(app)
    settings = Settings.open_default()
    steps = args.steps or DEFAULTS["processing/steps"]
    for key, value in (("processing/model", str(model)), ("processing/steps", steps),
                       ("processing/device", "cpu"), ("view/show_difference", True),
                       ("view/db_floor", -110.0), ("view/db_ceiling", -20.0)):
        settings.set(key, value)

    class NullStream:  # a silent output so the transport shows its enabled state
        def __init__(self, **kwargs: object) -> None: ...
        def start(self) -> None: ...
        def stop(self) -> None: ...
        def close(self) -> None: ...

    window = MainWindow(settings, stream_factory=NullStream)
    window.resize(width, height)
    window.show()
    window.add_paths([str(p) for p in inputs])
    model_rows = window.controller.model
    ready = wait_for(app, lambda: model_rows.rowCount() == 3 and all(
        i.status is not Status.PROBING for i in model_rows.items()), 60)
    phone = next(i for i in model_rows.items() if i.path.name == EXAMPLE.name)
    window.controller.process([phone.job_id])
    done = wait_for(app, lambda: model_rows.item(phone.job_id).status is Status.DONE, 600)
    if not (ready and done):
        log.error("processing did not finish: %s", model_rows.items())
        return 1
    window.queue_view.select_job(phone.job_id)
    wait_for(app, lambda: window.player.source_count == 3, 60)
    wait_for(app, lambda: window.spectrogram.images[1].image is not None, 60)
    window.listening.select_mode(int(Mode.RESTORED))
    window.overview.set_selection_s(6.0, 11.5)
    window.listening.set_loop(True)
    window.listening.seek_to(8.2)
    wait_for(app, lambda: False, 0.5)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if real:
        pixmap = window.screen().grabWindow(0, window.x(), window.y(), window.width(),
                                            window.height())
    else:
        pixmap = window.grab()
    if not pixmap.save(str(args.out)):
        log.error("could not write %s", args.out)
        return 1
    log.info("wrote %s (%dx%d, %s)", args.out, pixmap.width(), pixmap.height(),
             "Xvfb" if real else "offscreen grab")
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
