"""Rendered instruments for the training corpus: generated MIDI phrases through a GM soundfont.

`TRAINING_SOURCES.md` allows soundfont renders (fluidsynth + FluidR3_GM, MIT licence). The MIDI
is composed here from a seed, so the renders are ours to use: piece `i` plays GM program
`i % 128` (every `DRUM_EVERY`-th piece is a drum-kit groove on channel 10 instead), a melody
in a random key and scale over chords, at a tempo, register, articulation and dynamics drawn
per piece (or, for a source that lists GM programs, those programs in turn: the sound-effect
programs 120-127 for effects). Deterministic: the same count and seed give the same MIDI bytes.

Rendering calls the `fluidsynth` program (Debian: `fluidsynth`), gain 0.2 (FluidR3 clips
above it), 44.1 kHz, then stores 16-bit FLAC. Used by `build_corpus.py` for sources with
`render_midi = N`; standalone: `python scripts/render_midi.py SF2 OUT_DIR --count N`.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

TICKS_PER_BEAT = 480
DRUM_CHANNEL = 9  # MIDI channel 10
DRUM_EVERY = 8  # every 8th piece is a drum groove
PIECE_BEATS = (32, 64)  # length of a piece in beats (min, max)
RENDER_GAIN = 0.2
SAMPLE_RATE = 44100
SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10),
          "dorian": (0, 2, 3, 5, 7, 9, 10), "pentatonic": (0, 2, 4, 7, 9)}
# GM drum notes: kick, snare, closed / open hi-hat, toms, crash, ride, clap, tambourine
KICK, SNARE, HAT, OPEN_HAT, CRASH, RIDE = 36, 38, 42, 46, 49, 51
FILLS = (41, 43, 45, 47, 48, 50, 39, 54)


@dataclass(frozen=True)
class Note:
    """One note: start and length in ticks, MIDI key, velocity, channel."""

    start: int
    length: int
    key: int
    velocity: int
    channel: int = 0


def _vlq(value: int) -> bytes:
    """MIDI variable-length quantity."""
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def write_smf(notes: list[Note], program: int | None, tempo_bpm: float) -> bytes:
    """A format-0 standard MIDI file: tempo, program change (None: drums), the notes."""
    events: list[tuple[int, int, bytes]] = []  # (tick, order, bytes): note-offs sort first
    for n in notes:
        events.append((n.start, 1, bytes([0x90 | n.channel, n.key, n.velocity])))
        events.append((n.start + n.length, 0, bytes([0x80 | n.channel, n.key, 0])))
    events.sort(key=lambda e: (e[0], e[1]))
    usec = round(60_000_000 / tempo_bpm)
    track = bytearray(_vlq(0) + b"\xff\x51\x03" + usec.to_bytes(3, "big"))
    if program is not None:
        track += _vlq(0) + bytes([0xC0, program])
    now = 0
    for tick, _, data in events:
        track += _vlq(tick - now) + data
        now = tick
    track += _vlq(TICKS_PER_BEAT) + b"\xff\x2f\x00"  # a beat of tail, then end of track
    header = b"MThd" + (6).to_bytes(4, "big") + (0).to_bytes(2, "big") + (1).to_bytes(2, "big")
    header += TICKS_PER_BEAT.to_bytes(2, "big")
    return header + b"MTrk" + len(track).to_bytes(4, "big") + bytes(track)


def _register(program: int) -> tuple[int, int]:
    """A playable key range (low, high) for a GM program family."""
    family = program // 8
    if family in (4,):  # bass
        return 28, 55
    if program in (42, 43, 58, 70):  # cello, contrabass, tuba, bassoon
        return 36, 62
    if family in (9, 10) or program in (72, 73, 74, 75):  # flutes and pipes, high reeds
        return 60, 96
    return 45, 88


def compose(index: int, seed: int = 0, programs: Sequence[int] = ()
            ) -> tuple[list[Note], int | None, float]:
    """Piece `index`: (notes, GM program or None for drums, tempo in BPM). With `programs`,
    piece i plays programs[i mod len] and there are no drum grooves."""
    rng = np.random.default_rng([seed, index])
    tempo = float(rng.uniform(60, 160))
    beats = int(rng.integers(*PIECE_BEATS))
    if not programs and index % DRUM_EVERY == DRUM_EVERY - 1:
        return _drum_groove(rng, beats), None, tempo
    program = programs[index % len(programs)] if programs else index % 128
    low, high = _register(program)
    scale = SCALES[list(SCALES)[int(rng.integers(len(SCALES)))]]
    root = int(rng.integers(low, low + 12))
    keys = [root + 12 * o + s for o in range(-2, 6) for s in scale]
    keys = [k for k in keys if low <= k <= high]
    notes: list[Note] = []
    legato = float(rng.uniform(0.4, 1.0))  # note length / spacing: staccato ... legato
    loudness = int(rng.integers(85, 120))  # soft notes close the GM velocity filter
    step_choices = np.array([0.25, 0.5, 1.0, 2.0]) * TICKS_PER_BEAT
    tick, pos = 0, int(rng.integers(len(keys)))
    while tick < beats * TICKS_PER_BEAT:
        step = int(rng.choice(step_choices, p=[0.2, 0.4, 0.3, 0.1]))
        pos = int(np.clip(pos + rng.integers(-3, 4), 0, len(keys) - 1))
        velocity = int(np.clip(loudness + rng.normal(0, 12), 15, 127))
        if rng.random() < 0.9:  # a rest now and then
            notes.append(Note(tick, max(30, round(step * legato)), keys[pos], velocity))
            if rng.random() < 0.25:  # a chord: third and fifth above, in the scale
                for up in (2, 4):
                    if pos + up < len(keys):
                        notes.append(Note(tick, max(30, round(step * legato)), keys[pos + up],
                                          max(15, velocity - 10)))
        tick += step
    return notes, program, tempo


def _drum_groove(rng: np.random.Generator, beats: int) -> list[Note]:
    """A groove on GM channel 10: kick, snare, hats or ride, fills and crashes."""
    notes = []
    cymbal = RIDE if rng.random() < 0.3 else HAT
    eighth = TICKS_PER_BEAT // 2
    for beat in range(beats):
        t = beat * TICKS_PER_BEAT
        if beat % 2 == 0 or rng.random() < 0.15:
            notes.append(Note(t, eighth, KICK, int(rng.integers(80, 127)), DRUM_CHANNEL))
        if beat % 2 == 1:
            notes.append(Note(t, eighth, SNARE, int(rng.integers(70, 127)), DRUM_CHANNEL))
        for half in (0, eighth):
            key = OPEN_HAT if cymbal == HAT and rng.random() < 0.1 else cymbal
            notes.append(Note(t + half, eighth, key, int(rng.integers(40, 100)), DRUM_CHANNEL))
        if beat % 8 == 7 and rng.random() < 0.6:  # a fill
            for k in range(4):
                notes.append(Note(t + k * TICKS_PER_BEAT // 4, TICKS_PER_BEAT // 4,
                                  int(rng.choice(FILLS)), int(rng.integers(70, 120)),
                                  DRUM_CHANNEL))
        if beat % 16 == 0:
            notes.append(Note(t, TICKS_PER_BEAT, CRASH, int(rng.integers(70, 120)),
                              DRUM_CHANNEL))
    return notes


def fluidsynth_render(soundfont: Path, midi: Path, wav: Path) -> None:
    """Render with the fluidsynth program (no audio driver, no shell)."""
    exe = shutil.which("fluidsynth")
    if exe is None:
        raise SystemExit("render_midi: the fluidsynth program is missing "
                         "(Debian: apt-get install fluidsynth)")
    subprocess.run([exe, "-ni", "-q", "-g", str(RENDER_GAIN), "-r", str(SAMPLE_RATE),
                    "-F", str(wav), str(soundfont), str(midi)],
                   check=True, capture_output=True)


Renderer = Callable[[Path, Path, Path], None]


def render_all(soundfont: Path, out_dir: Path, count: int, seed: int = 0,
               render: Renderer = fluidsynth_render, programs: Sequence[int] = ()
               ) -> list[Path]:
    """Compose and render pieces 0..count-1 to `out_dir/piece_NNNN_<program>.flac` (16-bit);
    pieces already there are kept. Written through a temporary name, so an interrupted run
    leaves no partial file."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        notes, program, tempo = compose(i, seed, programs)
        label = "drums" if program is None else f"gm{program:03d}"
        path = out_dir / f"piece_{i:04d}_{label}.flac"
        paths.append(path)
        if path.exists():
            continue
        with tempfile.TemporaryDirectory() as tmp:
            midi, wav = Path(tmp) / "piece.mid", Path(tmp) / "piece.wav"
            midi.write_bytes(write_smf(notes, program, tempo))
            render(soundfont, midi, wav)
            audio, rate = sf.read(wav, dtype="float32", always_2d=True)
            part = path.with_suffix(".part")
            sf.write(part, audio, rate, format="FLAC", subtype="PCM_16")
            part.replace(path)
    return paths


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("soundfont", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--count", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    paths = render_all(args.soundfont, args.out, args.count, args.seed)
    print(f"{len(paths)} pieces in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
