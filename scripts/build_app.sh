#!/usr/bin/env bash
# Build the desktop bundle dist/jatsr/ from jatsr.spec with PyInstaller, then smoke-test it: the
# bundled `jatsr` restores the example clip headless. Run from a checkout; safe to run again.
#   usage: bash scripts/build_app.sh          (then: dist/jatsr/jatsr  — the app)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m pip install -q -e ".[build]"
.venv/bin/python -m PyInstaller jatsr.spec --noconfirm --log-level WARN
smoke=$(mktemp -d)
trap 'rm -rf "$smoke"' EXIT
dist/jatsr/jatsr upsample resources/examples/phone_8k.wav -o "$smoke"
echo "built dist/jatsr ($(du -sh dist/jatsr | cut -f1)); run dist/jatsr/jatsr"
