"""The PyInstaller desktop build (jatsr.spec): built from this checkout, then run as a user would.

One test, because the build is the expensive part (~3 min and ~5 GB here): the bundle restores a
file headless, with the default model and with a tiny model on the DAC codec (descript-audio-codec
and its data files must travel), the desktop app in it loads the bundled default model and
processes a queued file (Qt offscreen), and bad input still gets its one-line error. The bundle
is deleted afterwards.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "resources" / "examples" / "phone_8k.wav"


def _tiny_dac_model(home: Path) -> Path:
    """A tiny JaT model on a tiny random DAC, the DAC weights where dac's cache keeps them."""
    import dac
    import torch

    from engine.codecs import DACCodec
    from engine.model.dit import PRESETS, DiT
    from engine.modelfile import JaTModel, save_model

    weights = home / ".cache" / "descript" / "dac" / "weights_44khz_8kbps_0.0.1.pth"
    weights.parent.mkdir(parents=True)
    torch.manual_seed(0)
    dac.DAC(encoder_dim=16, latent_dim=64, decoder_dim=64).save(str(weights), package=False)
    codec = DACCodec(weights)
    codec.fit_stats([0.1 * torch.randn(1, 1, 20000)])
    tiny = PRESETS["tiny"]
    run = dataclasses.replace(tiny, model=dataclasses.replace(tiny.model, latent_channels=64))
    return save_model(home / "tiny-dac", JaTModel(DiT(run.model), codec, run))


def _run(cmd: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout,
                          cwd=env["HOME"])


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_frozen_build_restores_headless_and_in_the_window(tmp_path: Path) -> None:
    dist, work = tmp_path / "dist", tmp_path / "build"
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
           "XDG_DATA_HOME": str(home / ".local" / "share"), "QT_QPA_PLATFORM": "offscreen"}
    try:
        built = subprocess.run(
            [sys.executable, "-m", "PyInstaller", str(ROOT / "jatsr.spec"), "--noconfirm",
             "--log-level", "WARN", "--distpath", str(dist), "--workpath", str(work)],
            cwd=ROOT, capture_output=True, text=True, timeout=2000)
        assert built.returncode == 0, built.stderr[-3000:]
        exe = dist / "jatsr" / "jatsr"
        assert exe.is_file()
        # the default model travels inside the bundle
        assert any((dist / "jatsr").rglob("resources/models/*.safetensors"))

        # headless: the README's main command, from the bundle
        clip = home / "phone_8k.wav"
        shutil.copy(EXAMPLE, clip)
        out = home / "out"
        done = _run([str(exe), "upsample", str(clip), "-o", str(out)], env, 600)
        assert done.returncode == 0, done.stderr[-3000:]
        restored = sf.info(str(out / "phone_8k.wav"))
        source = sf.info(str(EXAMPLE))
        assert restored.samplerate == 44100 and restored.channels == source.channels
        assert restored.frames == round(source.frames * 44100 / source.samplerate)

        # a model on the DAC codec: descript-audio-codec imports inside the bundle
        dac_model = _tiny_dac_model(home)
        done = _run([str(exe), "upsample", str(clip), "-o", str(home / "out-dac"), "--model",
                     str(dac_model), "--steps", "1"], env, 600)
        assert done.returncode == 0, done.stderr[-3000:]
        assert sf.info(str(home / "out-dac" / "phone_8k.wav")).frames == restored.frames

        # bad input: one clear line, a failing exit code, nothing written
        broken = home / "broken.wav"
        broken.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
        failed = _run([str(exe), "upsample", str(broken), "-o", str(home / "bad")], env, 600)
        assert failed.returncode != 0
        assert "broken.wav" in failed.stderr and "Traceback" not in failed.stderr
        assert not (home / "bad" / "broken.wav").exists()

        # the window: queue the clip, process it, close once it is done (offscreen Qt)
        window_clip = home / "gui" / "phone_8k.wav"
        window_clip.parent.mkdir()
        shutil.copy(EXAMPLE, window_clip)
        shown = _run([str(exe), str(window_clip), "--process", "--quit-when-done"], env, 600)
        assert shown.returncode == 0, shown.stderr[-3000:]
        written = sf.info(str(window_clip.with_name("phone_8k.jatsr.wav")))
        assert written.samplerate == 44100
    finally:
        shutil.rmtree(dist, ignore_errors=True)  # ~5 GB; pytest keeps its last temp dirs
        shutil.rmtree(work, ignore_errors=True)
