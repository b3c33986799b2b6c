"""Audio output discovery through sounddevice, imported lazily (PortAudio may be missing)."""

from __future__ import annotations

import logging
from typing import Any

from app.workers.messages import AudioDevice

log = logging.getLogger(__name__)


def import_sounddevice() -> tuple[Any, str]:
    """(module, "") or (None, why playback is impossible)."""
    try:
        import sounddevice
    except OSError as e:  # raised when the PortAudio library is missing
        return None, f"Playback is off: {e} (install PortAudio, e.g. Debian's libportaudio2)."
    except ImportError as e:
        return None, f"Playback is off: the sounddevice package is missing ({e})."
    return sounddevice, ""


def output_devices() -> tuple[tuple[AudioDevice, ...], str]:
    """Output-capable devices and, when there is none, the reason playback is off."""
    sd, error = import_sounddevice()
    if sd is None:
        return (), error
    try:
        devices = sd.query_devices()
        default_out = sd.default.device[1]
    except Exception as e:  # PortAudioError, or a broken host API
        log.warning("querying audio devices failed: %s", e)
        return (), f"Playback is off: querying audio devices failed ({e})."
    found = tuple(
        AudioDevice(int(d["index"]), str(d["name"]), int(d["max_output_channels"]),
                    int(d["index"]) == default_out)
        for d in devices if int(d["max_output_channels"]) > 0)
    if not found:
        return (), "Playback is off: no audio output device was found on this computer."
    return found, ""


def portaudio_version() -> str:
    sd, _ = import_sounddevice()
    if sd is None:
        return "not found"
    return str(sd.get_portaudio_version()[1])
