#!/usr/bin/env bash
# Create .venv and install JaT-SR into it; `--dev` adds the test tools. Safe to run again.
#
# torch is pinned first: 2.14.1 is a CUDA build (GPU users get CUDA from this same command) that
# also runs on a CPU-only machine, and torchaudio 2.11 — pulled in by descript-audio-codec —
# imports beside it. (PyPI's torchaudio does not import beside a CPU-only torch wheel.)
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
extras=""
[ "${1:-}" = "--dev" ] && extras="[dev]"

if ! ldconfig -p 2>/dev/null | grep 'libportaudio.so.2' >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing libportaudio2 (audio playback)" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libportaudio2 >/dev/null
  else
    echo "note: PortAudio is missing (Debian/Ubuntu: sudo apt-get install libportaudio2);" \
         "playback will be disabled" >&2
  fi
fi

[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install -q "torch==2.14.1" "torchaudio==2.11.0"
.venv/bin/python -m pip install -q -e ".${extras}"
