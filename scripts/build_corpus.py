"""Build the JaT-SR training corpus: Debian packages -> full-band audio -> lossless tar shards.

Steps (issue 5, section 2), reproducible from `scripts/corpus_sources.toml`:

1. fetch: `apt-get download <package>=<version>` into `--work` and `dpkg-deb -x` it to
   `<work>/x/<package>/`, unless already there (the .deb's version must be the pinned one).
   Each file's licence comes from the package's own `usr/share/doc/<package>/copyright`: the
   last DEP-5 paragraph whose `Files:` pattern matches it (after the source's `licence_path`);
   a GNU licence whose text grants "any later version" is named with "+" (GPL-2 -> GPL-2+).
   A source with `render_midi = N` first composes N MIDI pieces and renders them through the
   package's soundfont (`scripts/render_midi.py`, needs the fluidsynth program) into
   `<work>/x/<package>/rendered/<source>/`; its `licence` key names the soundfont's licence.
2. find: the audio files matching each source's globs (and its optional language filter);
   `--licences gpl3` keeps only files a GPL-3.0-or-later model may draw on (`LICENCE_POLICIES`).
3. measure, per file, on bounded excerpts (`--max-segments` x `--segment-s`, read with
   `engine.audio.io.read_segments`): the band limit, exactly as `detect_cutoff_file` computes it
   (same Welch framing, then `cutoff_from_power`), and a steady-hiss check from the same frames:
   over the frames within `ACTIVE_RANGE_DB` of the loudest: if the 0.1-8 kHz level spreads by
   >= `HISS_MIN_SPREAD_DB` (90th - 10th percentile) but, in the loudest fifth of those frames,
   the 10-18 kHz level is < `HISS_MAX_RISE_DB` above its own 10th percentile (its floor), that
   band does not follow the signal: a steady hiss or tone bed ("hf_steady_hiss"). (Measured on
   the loud frames, not as a correlation: in speech the sibilants are loud at 10-18 kHz exactly
   when 0.1-8 kHz is quiet.)
   `detect_cutoff` returns the Nyquist when it finds no edge it trusts, which also happens for
   files whose content above a clear edge is > 60 dB under the peak (weak, hissy speech with
   nothing above 9-17 kHz). So a second check on the same average spectrum: the mean level of
   the 2 kHz above `--min-cutoff-hz` (18-20 kHz) must be within `--max-hf-drop-db` (15 dB) of
   the median 1 kHz band level in 0.55-0.9 x that (10-16 kHz); otherwise "hf_drop".
   Kept: cutoff >= `--min-cutoff-hz` (18 kHz), no hf_drop, no steady hiss, >= 1 s, not silent.
   Results are cached in `<work>/measure_cache.json` (keyed by path, size, mtime, settings).
4. split by source file: val when sha256("<package>/<path>") maps below `--val-fraction`, plus
   the `--min-val-files` lowest-hash kept files of each category (so every category has a few).
   Neither rule depends on which other files were measured: a subset build splits the same way.
5. pack: shards `train-000.tar`, `val-000.tar`, ... (uncompressed tar, <= `--shard-mb`) in `--out`;
   members `<category>/<source>/<path inside the package>`. OGG/Opus/FLAC are copied byte for byte;
   PCM WAV/AIFF become FLAC of the same bit depth (16 or 24, read as int32: bit-exact); other
   encodings (float, 32-bit) are copied as they are. Files are ordered by a hash (categories mix).
6. manifest: `<out>/manifest.{json,md}` and, for a full build, `docs/corpus_manifest.{json,md}`;
   `<out>/files.jsonl` lists every packed file (member, shard, split, source path, licence,
   cutoff) for attribution and for the model card.

`--max-minutes-per-category N` builds a quick subset: per category, files are taken round-robin
over its sources, each source in hash order, until N minutes (val: `--val-fraction` of N, at least
`--min-val-files` files) are kept; only the files looked at are measured.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import fnmatch
import hashlib
import io
import json
import logging
import math
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
import tomllib
import zipfile
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))  # render_midi beside this script

import render_midi  # noqa: E402

from engine.audio import io as audio_io  # noqa: E402
from engine.audio.cutoff import BIN_HZ, DETECTOR_VERSION, cutoff_from_power  # noqa: E402

log = logging.getLogger("build_corpus")

CATEGORIES = ("speech", "music", "effects", "instruments")
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".opus", ".oga", ".aif", ".aiff", ".mp3")
MIN_DURATION_S = 1.0  # shorter files are no use as training crops
SILENCE_PEAK_DB = -60.0  # a file whose excerpts never exceed this is "silent"
ACTIVE_RANGE_DB = 70.0  # frames this far below the loudest are ignored by the hiss check
SIGNAL_BAND_HZ = (100.0, 8000.0)
HISS_BAND_HZ = (10000.0, 18000.0)
HISS_MIN_SPREAD_DB = 12.0  # the signal level must spread this much for the check to judge ...
HISS_MAX_RISE_DB = 3.0  # ... and a 10-18 kHz band rising less than this when loud is steady hiss
FLAC_SUBTYPES = {"PCM_16": "PCM_16", "PCM_S8": "PCM_16", "PCM_U8": "PCM_16", "PCM_24": "PCM_24"}
ERROR_REASONS = {"TooShortAudio": "too_short", "EmptyAudio": "empty",
                 "NonFiniteAudio": "non_finite", "UnsupportedRate": "unsupported_rate",
                 "UnsupportedChannels": "unsupported_channels"}
TAR_BLOCK = 512
TAR_RECORD = 20 * TAR_BLOCK  # tarfile pads the archive to whole records
MEASURE_VERSION = 5


@dataclass(frozen=True)
class Source:
    """One [[source]] entry of the sources file."""

    name: str
    package: str
    version: str
    category: str
    include: tuple[str, ...]
    exclude: tuple[str, ...] = ()
    licence_path: tuple[str, ...] = ()  # (regex, replacement): installed path -> DEP-5 path
    language_pattern: str | None = None
    languages: tuple[str, ...] = ()
    archives: tuple[str, ...] = ()  # zip files inside the package whose audio is unpacked
    licence: str = ""  # the files' licence when the copyright file is not machine-readable
    soundfont: str = ""  # with render_midi: the .sf2 inside the package
    render_midi: int = 0  # pieces composed and rendered to rendered/<name>/ (render_midi.py)
    render_programs: tuple[int, ...] = ()  # GM programs the pieces cycle through (): all
    render_seed: int = 0

    def __post_init__(self) -> None:
        if self.category not in CATEGORIES:
            raise ValueError(f"{self.name}: category must be one of {CATEGORIES}")
        if not self.include:
            raise ValueError(f"{self.name}: include must list at least one glob")
        if len(self.licence_path) not in (0, 2):
            raise ValueError(f"{self.name}: licence_path must be [regex, replacement]")
        if self.render_midi and not self.soundfont:
            raise ValueError(f"{self.name}: render_midi needs a soundfont")


@dataclass(eq=False)  # identity: candidates live in sets
class Candidate:
    """A found audio file and what became of it."""

    source: Source
    rel: str  # path inside the package
    path: str  # path on disk
    split: str = "train"
    licence: str = "UNKNOWN"
    language: str | None = None  # from the source's language_pattern, if it has one
    measure: dict[str, Any] | None = None
    reason: str | None = None  # rejection reason; None = kept (once measured)

    @property
    def key(self) -> str:
        return f"{self.source.package}/{self.rel}"


@dataclass
class Settings:
    """Measurement and packing settings (the CLI fills them)."""

    min_cutoff_hz: float = 18000.0
    max_hf_drop_db: float = 15.0
    segment_s: float = 5.0
    max_segments: int = 12
    val_fraction: float = 0.05
    min_val_files: int = 3
    shard_mb: float = 40.0
    licences: str = "any"  # a LICENCE_POLICIES key: which files' licences may be kept


def load_sources(path: Path) -> list[Source]:
    """Parse the sources file (TOML, `[[source]]` tables)."""
    with open(path, "rb") as f:
        raw = tomllib.load(f)
    sources = []
    for entry in raw.get("source", []):
        entry = {k: tuple(v) if isinstance(v, list) else v for k, v in entry.items()}
        sources.append(Source(**entry))
    names = [s.name for s in sources]
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: source names must be unique")
    return sources


# ---------------------------------------------------------------- 1. fetch + licence

def fetch(package: str, version: str, work: Path) -> Path:
    """`<work>/x/<package>`, downloading and extracting the pinned .deb if it is not there.

    `<work>/x/<package>.version` records what was extracted; a tree without it is taken to come
    from the pinned .deb in the work dir (how a hand-made `dpkg-deb -x` leaves it).
    """
    root, marker = work / "x" / package, work / "x" / f"{package}.version"
    deb = _pinned_deb(package, version, work)
    if deb is None:
        log.info("downloading %s=%s", package, version)
        work.mkdir(parents=True, exist_ok=True)
        subprocess.run(["apt-get", "download", f"{package}={version}"], cwd=work, check=True)
        deb = _pinned_deb(package, version, work)
        if deb is None:
            raise SystemExit(f"{package}: apt-get gave no .deb of version {version}")
    if root.is_dir() and marker.is_file() and marker.read_text().strip() != version:
        log.info("%s: extracted tree is %s, re-extracting %s", package,
                 marker.read_text().strip(), version)
        shutil.rmtree(root)
    if not root.is_dir():
        log.info("extracting %s", deb.name)
        tmp = root.with_name(root.name + ".part")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp)], check=True)
        tmp.rename(root)
    marker.write_text(version + "\n")
    return root


def _pinned_deb(package: str, version: str, work: Path) -> Path | None:
    """The .deb of `package` at `version` in `work`, if any (versions read with dpkg-deb)."""
    for deb in sorted(work.glob(f"{package}_*.deb")):
        if _deb_version(deb) == version:
            return deb
    return None


def _deb_version(deb: Path) -> str:
    out = subprocess.run(["dpkg-deb", "-f", str(deb), "Version"], capture_output=True, text=True,
                         check=True)
    return out.stdout.strip()


def parse_copyright(text: str) -> list[tuple[list[str], str]]:
    """(Files patterns, License short name) of every DEP-5 files paragraph.

    A GNU licence named without "+" whose text (in the same paragraph or a stand-alone License
    paragraph) grants "any later version" is reported as "<name>+": Debian copyright files
    often name "GPL-2" for "version 2 or (at your option) any later version", and the
    difference decides which licences a model trained on the file can be released under.
    """
    files_paragraphs, texts = [], {}
    for block in re.split(r"\n\s*\n", text):
        fields_: dict[str, str] = {}
        current = None
        for line in block.splitlines():
            if line[:1] in (" ", "\t") and current:
                fields_[current] += "\n" + line.strip()
            elif ":" in line:
                current, _, value = line.partition(":")
                current = current.strip().lower()
                fields_[current] = value.strip()
        if "license" not in fields_:
            continue
        name, _, body = fields_["license"].partition("\n")
        name = name.strip()
        if "files" in fields_:
            files_paragraphs.append((fields_["files"].split(), name, body))
        elif body.strip():  # a stand-alone License paragraph: the text behind the name
            texts[name] = body
    return [(files, _or_later(name, body or texts.get(name, "")))
            for files, name, body in files_paragraphs]


def _or_later(name: str, licence_text: str) -> str:
    """`name` + "+" for an unversioned-upwards GNU licence whose text grants later versions."""
    if re.fullmatch(r"(A|L)?GPL-\d(\.\d)?", name) and re.search(
            r"any\s+later\s+version", licence_text, re.IGNORECASE):
        return name + "+"
    return name


# Licences of training files a model released under GPL-3.0-or-later can draw on, if trained
# weights count as an adaptation of their data: GPL-2+/3+ and unversioned GPL (any version),
# CC-BY-SA-4.0 (one-way compatible with GPLv3, Creative Commons 2015), CC-BY-4.0, CC0, the
# public domain and permissive licences (MIT, BSD, ISC, Zlib). Not CC-BY-SA-3.0 or CC-BY-3.0
# (no declared compatibility), nor GPL-2 only, nor GFDL.
LICENCE_POLICIES: dict[str, frozenset[str] | None] = {
    "any": None,
    "gpl3": frozenset({"GPL", "GPL-2+", "GPL-3", "GPL-3+", "LGPL-2.1+", "LGPL-3+",
                       "CC-BY-SA-4.0", "CC-BY-4.0", "CC0", "CC0-1.0", "public-domain",
                       "MIT", "Expat", "BSD-2-clause", "BSD-3-clause", "ISC", "Zlib"}),
}


def licence_allowed(licence: str, allowed: frozenset[str] | None) -> bool:
    """Whether a DEP-5 licence expression ("A or B", "A and B") fits the `allowed` set."""
    if allowed is None:
        return True
    return any(all(part.strip() in allowed for part in re.split(r"\s+and\s+", option))
               for option in re.split(r"\s+or\s+", licence))


def read_copyright(root: Path, package: str) -> list[tuple[list[str], str]]:
    """The DEP-5 files paragraphs of the extracted package's copyright file ([] if none)."""
    path = root / "usr/share/doc" / package / "copyright"
    return parse_copyright(path.read_text(errors="replace")) if path.is_file() else []


def licence_of(rel: str, paragraphs: Sequence[tuple[list[str], str]],
               licence_path: Sequence[str] = ()) -> str:
    """DEP-5 rule: the last paragraph whose Files pattern matches the file's path wins.

    `rel` (path inside the binary package) is first mapped to the source-tree path the copyright
    file speaks of with `re.sub(*licence_path)`. `*` and `?` match any characters, `/` included.
    """
    path = re.sub(licence_path[0], licence_path[1], rel) if licence_path else rel
    found = "UNKNOWN"
    for files, licence in paragraphs:
        if any(fnmatch.fnmatchcase(path, pattern) for pattern in files):
            found = licence
    return found


# ---------------------------------------------------------------- 2. find + split

def unpack_archives(source: Source, root: Path) -> None:
    """Unpack the audio members of each of `source.archives` (zip files inside the extracted
    package) to `<root>/<archive>.d/`, once, so `include` globs see them as ordinary files
    (`<archive>.d/<member path>`). A zip's member names cannot escape that folder."""
    for archive in source.archives:
        zpath, dest = root / archive, root / (archive + ".d")
        if dest.is_dir():
            continue
        if not zpath.is_file():
            raise SystemExit(f"{source.name}: archive {archive} is not in {source.package}")
        tmp = dest.with_name(dest.name + ".part")
        shutil.rmtree(tmp, ignore_errors=True)
        with zipfile.ZipFile(zpath) as z:
            members = [i for i in z.infolist()
                       if not i.is_dir() and i.filename.lower().endswith(AUDIO_EXTENSIONS)]
            log.info("%s: unpacking %d audio files from %s", source.name, len(members), archive)
            for info in members:
                z.extract(info, tmp)  # zipfile drops absolute and '..' path parts
        tmp.rename(dest)


def find_files(source: Source, root: Path) -> tuple[list[Candidate], int]:
    """Audio files of `source` under the extracted package, sorted; and how many the language
    filter dropped."""
    out, n_language = [], 0
    pattern = re.compile(source.language_pattern) if source.language_pattern else None
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            if not name.lower().endswith(AUDIO_EXTENSIONS):
                continue
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root).replace(os.sep, "/")
            low = rel.lower()
            if not any(fnmatch.fnmatchcase(low, g.lower()) for g in source.include):
                continue
            if any(fnmatch.fnmatchcase(low, g.lower()) for g in source.exclude):
                continue
            language = language_of(pattern, name) if pattern else None
            if source.languages and language not in source.languages:
                n_language += 1
                continue
            out.append(Candidate(source, rel, path, language=language))
    paragraphs = read_copyright(root, source.package)
    for c in out:
        c.licence = source.licence or licence_of(c.rel, paragraphs, source.licence_path)
    return out, n_language


def render_pieces(source: Source, root: Path, render_fn: Any = None) -> None:
    """Compose and render `source.render_midi` pieces through its soundfont into
    `<root>/rendered/<name>/` (kept between builds; `include` globs then find them)."""
    out = root / "rendered" / source.name
    log.info("%s: rendering %d MIDI pieces with %s", source.name, source.render_midi,
             source.soundfont)
    kwargs = {"render": render_fn} if render_fn is not None else {}
    render_midi.render_all(root / source.soundfont, out, source.render_midi,
                           seed=source.render_seed, programs=source.render_programs, **kwargs)


def language_of(pattern: re.Pattern[str], name: str) -> str:
    """The `lang` group of `pattern` in a file name; "en" when absent."""
    m = pattern.search(name)
    return (m.group("lang") if m else None) or "en"


def unit_hash(text: str, salt: str = "split") -> float:
    """A deterministic number in [0, 1) from sha256(salt|text)."""
    digest = hashlib.sha256(f"{salt}|{text}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign_splits(candidates: Sequence[Candidate], val_fraction: float) -> None:
    """The hash rule: val when unit_hash(key) < `val_fraction` (promote_val adds a few more)."""
    for c in candidates:
        c.split = "val" if unit_hash(c.key) < val_fraction else "train"


def promote_val(candidates: Sequence[Candidate], min_val_files: int,
                measure: Any = None, batch: int = 32) -> list[Candidate]:
    """Move the `min_val_files` lowest-hash *kept* files of each category to val.

    With `measure` (a callable filling `reason`), files are measured in hash order only until
    enough are found (a subset build); otherwise all must be measured already. The rule does not
    depend on which other files are measured, so a subset build splits as the full build does.
    Returns the promoted files in hash order.
    """
    promoted = []
    for category in CATEGORIES:
        ranked = sorted((c for c in candidates if c.source.category == category),
                        key=lambda c: unit_hash(c.key))
        n_needed = min(min_val_files, max(len(ranked) - 1, 0))
        found: list[Candidate] = []
        for i in range(0, len(ranked), batch):
            if len(found) >= n_needed:
                break
            head = ranked[i:i + batch]
            if measure is not None:
                measure(head)
            found += [c for c in head if c.reason is None][:n_needed - len(found)]
        for c in found:
            c.split = "val"
        promoted += found
    return promoted


# ---------------------------------------------------------------- 3. measure

def measure_file(path: str, segment_s: float, max_segments: int) -> dict[str, Any]:
    """Header facts, band limit and hiss-check numbers of one file (bounded decoding)."""
    try:
        info = audio_io.probe(path)
    except audio_io.AudioInputError as e:
        return {"error": f"{type(e).__name__}: {e.reason}"}
    out: dict[str, Any] = {"sample_rate": info.sample_rate, "channels": info.channels,
                           "duration_s": info.duration_s, "format": info.format,
                           "subtype": info.subtype, "bytes": os.path.getsize(path)}
    if info.duration_s < MIN_DURATION_S:
        return out
    try:
        out.update(_analyse(path, info, segment_s, max_segments))
    except audio_io.AudioInputError as e:
        out["error"] = f"{type(e).__name__}: {e.reason}"
    return out


def _analyse(path: str, info: audio_io.AudioInfo, segment_s: float, max_segments: int
             ) -> dict[str, Any]:
    """Band limit as detect_cutoff_file computes it, plus per-frame band levels for the hiss
    check, from one pass over the same excerpts."""
    rate = info.sample_rate
    segment_frames = max(1, round(segment_s * rate))
    n_fft = welch_n_fft(rate, min(info.frames, segment_frames))
    power = np.zeros(n_fft // 2 + 1)
    n_frames, peak = 0, 0.0
    frame_powers = []  # (T, F) per excerpt, channels summed
    for block in audio_io.read_segments(path, segment_frames, max_segments):  # (Ch, n)
        peak = max(peak, float(np.abs(block).max(initial=0.0)))
        if block.shape[1] < n_fft:
            continue
        p = frame_power(block, n_fft)  # (Ch, T, F)
        power += p.sum(axis=(0, 1))
        n_frames += p.shape[0] * p.shape[1]
        frame_powers.append(p.sum(axis=0))
    out: dict[str, Any] = {"peak_db": round(20 * math.log10(max(peak, 1e-12)), 2)}
    if n_frames == 0:
        out["cutoff_hz"] = float(min(rate / 2, 22050.0))
        return out
    out["cutoff_hz"] = cutoff_from_power(power / n_frames, rate)
    out["band_db"] = band_levels(power, rate)
    out.update(hiss_spread(np.concatenate(frame_powers), rate))
    return out


def band_levels(power: np.ndarray, sample_rate: int) -> list[float]:
    """Mean level (dB) of each 1 kHz band of an average power spectrum `(F,)` up to the Nyquist
    (22 kHz at most), relative to the loudest band."""
    freqs_hz = np.linspace(0.0, sample_rate / 2, power.shape[0])
    n_bands = int(min(sample_rate / 2, 22050.0) // 1000)
    levels = np.array([power[(freqs_hz >= 1000 * k) & (freqs_hz < 1000 * (k + 1))].mean()
                       for k in range(n_bands)])
    levels_db = 10 * np.log10(np.maximum(levels, max(levels.max() * 1e-20, 1e-30)))
    return [round(float(v), 1) for v in levels_db - levels_db.max()]


def welch_n_fft(sample_rate: int, n_samples: int) -> int:
    """The Welch length detect_cutoff uses: ~BIN_HZ bins, halved for short input (>= 256)."""
    n_fft = 2 ** round(math.log2(sample_rate / BIN_HZ))
    while n_fft > n_samples and n_fft > 256:
        n_fft //= 2
    return n_fft


def frame_power(x: np.ndarray, n_fft: int) -> np.ndarray:
    """|rfft|^2 of 50 %-overlapping periodic-Hann frames of `(Ch, S)` -> `(Ch, T, F)`."""
    window = np.hanning(n_fft + 1)[:-1]
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft, axis=1)[:, :: n_fft // 2]
    return np.abs(np.fft.rfft(frames.astype(np.float64) * window, axis=-1)) ** 2


def hiss_spread(frames: np.ndarray, sample_rate: int) -> dict[str, float]:
    """How much the signal band and the 10-18 kHz band levels move over a file's frames.

    `frames` (T, F): power per frame. Frames more than ACTIVE_RANGE_DB under the loudest are
    dropped; spread = 90th minus 10th percentile of each band's level (dB) over the rest.
    """
    freqs_hz = np.linspace(0.0, sample_rate / 2, frames.shape[1])

    def band_db(lo: float, hi: float) -> np.ndarray:
        sel = (freqs_hz >= lo) & (freqs_hz < hi)
        return 10 * np.log10(frames[:, sel].sum(axis=1) + 1e-30) if sel.any() else None

    signal_db = band_db(*SIGNAL_BAND_HZ)
    hiss_db = band_db(*HISS_BAND_HZ)
    if signal_db is None or hiss_db is None:
        return {}
    total_db = 10 * np.log10(frames.sum(axis=1) + 1e-30)
    active = total_db > total_db.max() - ACTIVE_RANGE_DB
    if active.sum() < 10:
        return {}
    sig, hf = signal_db[active], hiss_db[active]
    loud = np.argsort(sig, kind="stable")[-max(1, len(sig) // 5):]
    ref = sig.max()
    return {"signal_pct_db": [round(float(v - ref), 2) for v in np.percentile(sig, [10, 50, 90])],
            "hf_pct_db": [round(float(v - ref), 2) for v in np.percentile(hf, [10, 50, 90])],
            "hf_loud_db": round(float(hf[loud].mean() - ref), 2)}


def rejection(m: dict[str, Any], settings: Settings) -> str | None:
    """Why a measured file is no target (a histogram key), or None to keep it."""
    if m.get("error"):
        return ERROR_REASONS.get(m["error"].split(":")[0], "unreadable")
    if m["duration_s"] < MIN_DURATION_S:
        return "too_short"
    if m["peak_db"] < SILENCE_PEAK_DB:
        return "silent"
    if m["cutoff_hz"] < settings.min_cutoff_hz:
        return "low_bandwidth"
    if hf_drop_db(m["band_db"], settings.min_cutoff_hz) > settings.max_hf_drop_db:
        return "hf_drop"
    if "hf_loud_db" in m:
        signal_spread_db = m["signal_pct_db"][2] - m["signal_pct_db"][0]
        hf_rise_db = m["hf_loud_db"] - m["hf_pct_db"][0]
        if signal_spread_db >= HISS_MIN_SPREAD_DB and hf_rise_db < HISS_MAX_RISE_DB:
            return "hf_steady_hiss"
    if packed_size_estimate(m) > settings.shard_mb * 1e6 - 3 * TAR_RECORD:
        return "larger_than_shard"
    return None


def hf_drop_db(band_db: Sequence[float], min_cutoff_hz: float) -> float:
    """How far (dB) the 2 kHz above `min_cutoff_hz` sit under the median band of 0.55-0.9 x it.

    `band_db`: 1 kHz band levels from `band_levels`. Bands past the end count as silent.
    """
    top = int(min_cutoff_hz // 1000)
    ref = band_db[int(0.55 * min_cutoff_hz // 1000):int(0.9 * min_cutoff_hz // 1000)]
    above = [band_db[k] if k < len(band_db) else -200.0 for k in (top, top + 1)]
    return float(np.median(ref) - 10 * np.log10(np.mean(np.power(10.0, np.array(above) / 10))))


def packed_size_estimate(m: dict[str, Any]) -> int:
    """Upper bound of a file's bytes in a shard before packing (a FLAC never beats raw PCM)."""
    return int(m["bytes"]) + 2 * TAR_BLOCK


class Measurer:
    """Measures files in a process pool, with a JSON cache in the work dir."""

    def __init__(self, work: Path, settings: Settings, jobs: int) -> None:
        self.cache_path = work / "measure_cache.json"
        self.settings, self.jobs = settings, jobs
        self.cache: dict[str, Any] = {}
        if self.cache_path.is_file():
            self.cache = json.loads(self.cache_path.read_text())
        self.pool = cf.ProcessPoolExecutor(jobs, initializer=_lower_priority) if jobs > 1 else None

    def _key(self, path: str) -> str:
        st = os.stat(path)
        s = self.settings
        return (f"{MEASURE_VERSION}|{DETECTOR_VERSION}|{s.segment_s}|{s.max_segments}|{path}|"
                f"{st.st_size}|{st.st_mtime_ns}")

    def measure(self, candidates: Sequence[Candidate]) -> None:
        """Fill `measure` and `reason` of every candidate."""
        keys = [self._key(c.path) for c in candidates]
        todo = sorted({k: c.path for k, c in zip(keys, candidates, strict=True)
                       if k not in self.cache}.items())
        args = (self.settings.segment_s, self.settings.max_segments)
        paths = [p for _, p in todo]
        if self.pool is not None:
            results: Iterable[dict[str, Any]] = self.pool.map(
                measure_file, paths, *[[a] * len(paths) for a in args], chunksize=8)
        else:
            results = (measure_file(p, *args) for p in paths)
        t0 = time.monotonic()
        for i, ((key, _), result) in enumerate(zip(todo, results, strict=True), 1):
            self.cache[key] = result
            if i % 250 == 0 or i == len(todo) >= 250:
                rate = i / (time.monotonic() - t0)
                log.info("measured %d/%d new files (%.1f files/s)", i, len(todo), rate)
                self.save()
        for key, c in zip(keys, candidates, strict=True):
            c.measure = self.cache[key]
            c.reason = rejection(c.measure, self.settings)

    def save(self) -> None:
        tmp = self.cache_path.with_suffix(".json.part")
        tmp.write_text(json.dumps(self.cache))
        tmp.replace(self.cache_path)

    def close(self) -> None:
        self.save()
        if self.pool is not None:
            self.pool.shutdown()


def _lower_priority() -> None:
    if os.nice(0) < 10:
        os.nice(10 - os.nice(0))


# ---------------------------------------------------------------- subset selection

def interleave(candidates: Sequence[Candidate]) -> Iterator[Candidate]:
    """Round-robin over sources, each source in hash order: a deterministic spread."""
    by_source: dict[str, list[Candidate]] = defaultdict(list)
    for c in candidates:
        by_source[c.source.name].append(c)
    queues = [sorted(v, key=lambda c: unit_hash(c.key, "order")) for _, v in
              sorted(by_source.items())]
    for i in range(max((len(q) for q in queues), default=0)):
        for q in queues:
            if i < len(q):
                yield q[i]


def select_subset(candidates: Sequence[Candidate], measurer: Measurer, minutes: float,
                  settings: Settings, max_mb: float | None = None, batch: int = 32
                  ) -> list[Candidate]:
    """Per category and split, measure files in `interleave` order until the budget is kept.

    Budgets per category: `minutes` (val: `val_fraction` of it, and at least `min_val_files`
    files unless they would pass a quarter of `minutes`) and, if given, `max_mb` of packed bytes
    shared the same way. Val starts with the files `promote_val` picked.
    """
    promoted = promote_val(candidates, settings.min_val_files, measurer.measure, batch)
    chosen = []
    for category in CATEGORIES:
        for split in ("train", "val"):
            share = settings.val_fraction if split == "val" else 1 - settings.val_fraction
            budget = _Budget(60 * minutes * share, None if max_mb is None else max_mb * 1e6 * share,
                             settings.min_val_files if split == "val" else 1, 15 * minutes)
            mine = [c for c in candidates if c.source.category == category and c.split == split]
            mine_set = set(mine)
            first = [c for c in promoted if c in mine_set]
            queue = first + [c for c in interleave(mine) if c not in set(first)]
            while queue and not budget.full():
                head, queue = queue[:batch], queue[batch:]
                measurer.measure(head)
                for c in head:
                    chosen.append(c)  # measured: counted in the manifest either way
                    if c.reason is None:
                        if budget.full():
                            c.reason = "subset_budget"
                        else:
                            budget.add(c)
    return chosen


@dataclass
class _Budget:
    seconds: float
    bytes: float | None
    min_files: int
    min_files_cap_s: float  # stop asking for min_files once this much is kept
    kept_s: float = 0.0
    kept_bytes: int = 0
    n_kept: int = 0

    def full(self) -> bool:
        if self.bytes is not None and self.kept_bytes >= self.bytes and self.n_kept:
            return True
        enough_files = self.n_kept >= self.min_files or self.kept_s >= self.min_files_cap_s
        return self.kept_s >= self.seconds and enough_files

    def add(self, c: Candidate) -> None:
        self.kept_s += c.measure["duration_s"]
        self.n_kept += 1
        if self.bytes is not None:
            self.kept_bytes += len(packed_bytes(c))


# ---------------------------------------------------------------- 5. pack

def member_name(c: Candidate) -> str:
    """Tar member path: `<category>/<source>/<path inside the package minus usr/share/>`."""
    rel = c.rel.removeprefix("usr/share/")
    if needs_flac(c.measure or {}):
        rel = os.path.splitext(rel)[0] + ".flac"
    return f"{c.source.category}/{c.source.name}/{rel}"


def needs_flac(m: dict[str, Any]) -> bool:
    """PCM in a container without compression, that FLAC holds bit-exactly."""
    return m.get("format") in ("WAV", "WAVEX", "AIFF", "W64", "RF64") and \
        m.get("subtype") in FLAC_SUBTYPES


def packed_bytes(c: Candidate) -> bytes:
    """The member's content: the file's own bytes, or a bit-exact FLAC of its PCM."""
    m = c.measure or {}
    if not needs_flac(m):
        return Path(c.path).read_bytes()
    data, rate = sf.read(c.path, dtype="int32", always_2d=True)  # (S, Ch), left-justified ints
    buf = io.BytesIO()
    sf.write(buf, data, rate, format="FLAC", subtype=FLAC_SUBTYPES[m["subtype"]])
    return buf.getvalue()


def tar_member_size(n_bytes: int) -> int:
    """Bytes a member takes in a ustar/gnu tar: one header block + data padded to blocks."""
    return TAR_BLOCK + -(-n_bytes // TAR_BLOCK) * TAR_BLOCK


def pack_shards(kept: Sequence[Candidate], out: Path, shard_mb: float
                ) -> list[dict[str, Any]]:
    """Write `<split>-NNN.tar` shards (<= shard_mb each); returns one record per shard."""
    out.mkdir(parents=True, exist_ok=True)
    for old in list(out.glob("train-*.tar")) + list(out.glob("val-*.tar")):
        old.unlink()
    limit = int(shard_mb * 1e6)
    shards = []
    for split in ("train", "val"):
        members = sorted((c for c in kept if c.split == split),
                         key=lambda c: unit_hash(c.key, "shard"))
        writer: ShardWriter | None = None
        n_shards = 0
        for c in members:
            data = packed_bytes(c)
            if writer is None or not writer.fits(len(data)):
                if writer is not None:
                    shards.append(writer.close())
                writer = ShardWriter(out / f"{split}-{n_shards:03d}.tar", split, limit)
                n_shards += 1
            if not writer.fits(len(data)):
                raise ValueError(f"{c.path}: {len(data)} bytes do not fit a {shard_mb} MB shard")
            writer.add(member_name(c), data, c)
        if writer is not None:
            shards.append(writer.close())
    return shards


class ShardWriter:
    """One uncompressed tar shard, written to `<name>.part` and renamed when closed."""

    def __init__(self, path: Path, split: str, limit_bytes: int) -> None:
        self.path, self.split, self.limit = path, split, limit_bytes
        self.tmp = path.with_name(path.name + ".part")
        self.tar = tarfile.open(self.tmp, "w", format=tarfile.GNU_FORMAT)
        self.used, self.duration_s, self.members = 0, 0.0, []
        log.info("writing %s", path.name)

    def fits(self, n_bytes: int) -> bool:
        total = self.used + tar_member_size(n_bytes) + 2 * TAR_BLOCK  # + end-of-archive blocks
        total += 2 * TAR_BLOCK  # a GNU long-name header for paths over 100 characters
        return -(-total // TAR_RECORD) * TAR_RECORD <= self.limit

    def add(self, name: str, data: bytes, c: Candidate) -> None:
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = len(data), 0o644, 0
        self.tar.addfile(info, io.BytesIO(data))
        self.used = self.tar.offset
        self.members.append(name)
        self.duration_s += float((c.measure or {})["duration_s"])

    def close(self) -> dict[str, Any]:
        self.tar.close()
        self.tmp.replace(self.path)
        size = self.path.stat().st_size
        assert size <= self.limit, (self.path, size)
        return {"name": self.path.name, "split": self.split, "bytes": size,
                "files": len(self.members), "minutes": round(self.duration_s / 60, 2),
                "members": self.members}


# ---------------------------------------------------------------- 6. manifest

def build_manifest(sources: Sequence[Source], found: dict[str, int],
                   language_dropped: dict[str, int],
                   candidates: Sequence[Candidate], measured: Sequence[Candidate],
                   shards: Sequence[dict[str, Any]], settings: Settings, args: dict[str, Any],
                   licence_dropped: dict[str, int] | None = None) -> dict[str, Any]:
    """Per source and per category counts, minutes and rejection reasons; `candidates` are all
    files found, `licence_dropped` counts those the licence policy set aside before measuring."""
    per_source = {}
    for s in sources:
        mine = [c for c in measured if c.source.name == s.name]
        kept = [c for c in mine if c.reason is None]
        reasons = Counter(c.reason for c in mine if c.reason is not None)
        if language_dropped.get(s.name):
            reasons["language_filter"] = language_dropped[s.name]
        if licence_dropped and licence_dropped.get(s.name):
            reasons["licence_filter"] = licence_dropped[s.name]
        cutoffs = Counter(_cutoff_bucket(c.measure) for c in mine if c.measure)
        per_source[s.name] = {
            "package": s.package, "version": s.version, "category": s.category,
            "licence": "; ".join(sorted({c.licence for c in kept})) or "-",
            "licences_of_found_files": dict(sorted(Counter(
                c.licence for c in candidates if c.source.name == s.name).items())),
            "minutes_kept_per_licence": _per_licence(kept),
            "files_found": found[s.name], "files_measured": len(mine), "files_kept": len(kept),
            "rejected": dict(sorted(reasons.items())),
            "cutoff_khz_histogram": dict(sorted(cutoffs.items())),
            "files_kept_per_split": _per_split(kept, lambda c: 1),
            "minutes_kept_per_split": _per_split(kept, lambda c: c.measure["duration_s"] / 60),
        }
        if any(c.language for c in mine):
            per_source[s.name]["languages"] = _per_language(mine)
    per_category = {}
    for category in CATEGORIES:
        rows = [v for v in per_source.values() if v["category"] == category]
        if not rows:
            continue
        per_category[category] = {
            "sources": [n for n, v in per_source.items() if v["category"] == category],
            "files_kept_per_split": _sum_splits(r["files_kept_per_split"] for r in rows),
            "minutes_kept_per_split": _sum_splits(r["minutes_kept_per_split"] for r in rows),
        }
    totals = {"files_kept_per_split": _sum_splits(v["files_kept_per_split"]
                                                  for v in per_category.values()),
              "minutes_kept_per_split": _sum_splits(v["minutes_kept_per_split"]
                                                    for v in per_category.values()),
              "shards": len(shards), "shard_bytes": sum(s["bytes"] for s in shards)}
    return {"settings": {**asdict(settings),
                         "min_duration_s": MIN_DURATION_S,
                         "hiss_check": {"signal_band_hz": SIGNAL_BAND_HZ,
                                        "hf_band_hz": HISS_BAND_HZ,
                                        "min_signal_spread_db": HISS_MIN_SPREAD_DB,
                                        "min_hf_rise_db": HISS_MAX_RISE_DB},
                         **args},
            "sources": per_source, "categories": per_category, "totals": totals,
            "shards": [{k: v for k, v in s.items() if k != "members"} for s in shards]}


def _per_licence(kept: Sequence[Candidate]) -> dict[str, float]:
    out: Counter[str] = Counter()
    for c in kept:
        out[c.licence] += c.measure["duration_s"] / 60
    return {k: round(v, 2) for k, v in sorted(out.items())}


def _per_language(measured: Sequence[Candidate]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for c in sorted(measured, key=lambda c: c.language or ""):
        row = out.setdefault(c.language or "?", {"measured": 0, "kept": 0, "kept_minutes": 0.0})
        row["measured"] += 1
        if c.reason is None:
            row["kept"] += 1
            row["kept_minutes"] = round(row["kept_minutes"] + c.measure["duration_s"] / 60, 2)
    return out


def _cutoff_bucket(m: dict[str, Any]) -> str:
    if "cutoff_hz" not in m:
        return "not_analysed"  # unreadable or shorter than MIN_DURATION_S
    return f"{min(int(m['cutoff_hz'] // 1000), 22):02d}"


def _per_split(kept: Sequence[Candidate], value: Any) -> dict[str, float]:
    out = {"train": 0.0, "val": 0.0}
    for c in kept:
        out[c.split] += value(c)
    return {k: round(v, 2) for k, v in out.items()}


def _sum_splits(rows: Iterable[dict[str, float]]) -> dict[str, float]:
    out = {"train": 0.0, "val": 0.0}
    for r in rows:
        for k in out:
            out[k] += r[k]
    return {k: round(v, 2) for k, v in out.items()}


def manifest_markdown(man: dict[str, Any]) -> str:
    """A readable rendering of the manifest."""
    st = man["settings"]
    lines = ["# JaT-SR training corpus manifest", "",
             "Generated by `scripts/build_corpus.py` from `scripts/corpus_sources.toml`; the "
             "corpus itself (tar shards) stays out of git. Unpack for training with "
             "`for t in train-*.tar; do tar -xf $t -C train; done` (same for `val`).", "",
             f"Kept: cutoff >= {st['min_cutoff_hz']:.0f} Hz (`detect_cutoff`), 18-20 kHz at most "
             f"{st['max_hf_drop_db']:g} dB under 10-16 kHz (`hf_drop`), no steady 10-18 kHz hiss "
             f"(`hf_steady_hiss`), >= {st['min_duration_s']:g} s, not silent; measured on up to "
             f"{st['max_segments']} x {st['segment_s']:g} s excerpts per file. Validation: "
             f"{st['val_fraction']:.0%} of files by path hash (at least {st['min_val_files']} "
             f"per category). Shards <= {st['shard_mb']:g} MB: uncompressed tar, OGG/Opus/FLAC "
             "copied byte for byte, PCM WAV/AIFF as bit-exact FLAC of the same bit depth. "
             "`files.jsonl` next to the shards lists every file with its licence.", "",
             "Rebuild: `python scripts/build_corpus.py` (needs the fluidsynth program for the "
             "rendered source; fetches the pinned .debs with "
             "`apt-get download` into `--work` if missing; measurements are cached there).", ""]
    if st.get("licences", "any") != "any":
        lines += [f"**Licence policy `{st['licences']}`**: only files under "
                  + ", ".join(sorted(LICENCE_POLICIES[st["licences"]] or ())) + " were kept "
                  "(`licence_filter` counts the others, set aside before measuring).", ""]
    if st.get("max_minutes_per_category"):
        cap = st.get("max_mb_per_category")
        lines += [f"**Subset build**: about {st['max_minutes_per_category']:g} minutes per "
                  "category" + (f" and at most ~{cap:g} MB" if cap else "") + ", files taken "
                  "round-robin over sources in hash order; only the files looked at were "
                  "measured (the split is the full build's).", ""]
    lines += ["## Per category (minutes kept)", "",
              "| category | train min | val min | train files | val files |",
              "|---|---:|---:|---:|---:|"]
    for name, v in man["categories"].items():
        m, f = v["minutes_kept_per_split"], v["files_kept_per_split"]
        lines.append(f"| {name} | {m['train']:.1f} | {m['val']:.1f} | {f['train']:.0f} "
                     f"| {f['val']:.0f} |")
    t = man["totals"]
    lines.append(f"| **total** | {t['minutes_kept_per_split']['train']:.1f} | "
                 f"{t['minutes_kept_per_split']['val']:.1f} | "
                 f"{t['files_kept_per_split']['train']:.0f} | "
                 f"{t['files_kept_per_split']['val']:.0f} |")
    lines += ["", "## Per source", "",
              "| source | package | version | category | licence | found | measured | kept "
              "| train min | val min | rejected |",
              "|---|---|---|---|---|---:|---:|---:|---:|---:|---|"]
    for name, v in man["sources"].items():
        rej = ", ".join(f"{k} {n}" for k, n in v["rejected"].items()) or "-"
        m = v["minutes_kept_per_split"]
        lines.append(f"| {name} | {v['package']} | {v['version']} | {v['category']} | "
                     f"{v['licence']} | {v['files_found']} | {v['files_measured']} | "
                     f"{v['files_kept']} | {m['train']:.1f} | {m['val']:.1f} | {rej} |")
    for name, v in man["sources"].items():
        if "languages" in v:
            langs = ", ".join(f"{k} {r['kept']}/{r['measured']} ({r['kept_minutes']:.1f} min)"
                              for k, r in v["languages"].items())
            lines += ["", f"{name} per language (kept/measured files): {langs}"]
    lines += ["", "Measured cutoff histogram (files per kHz bucket; 22 = 22 kHz and above, which "
              "is also what `detect_cutoff` returns when it finds no edge it trusts; "
              "not_analysed = shorter than 1 s or unreadable):", ""]
    for name, v in man["sources"].items():
        hist = " ".join(f"{k}:{n}" for k, n in v["cutoff_khz_histogram"].items())
        lines.append(f"- {name}: {hist}")
    lines += ["", f"## Shards ({t['shards']}, {t['shard_bytes'] / 1e6:.1f} MB)", "",
              "| shard | files | minutes | MB |", "|---|---:|---:|---:|"]
    for s in man["shards"]:
        lines.append(f"| {s['name']} | {s['files']} | {s['minutes']:.1f} "
                     f"| {s['bytes'] / 1e6:.2f} |")
    lines += ["", "## Licences (per file, from `/usr/share/doc/<package>/copyright`: the last "
              "matching DEP-5 paragraph wins); minutes kept", ""]
    for name, v in man["sources"].items():
        lines.append(f"- **{name}**: " + "; ".join(
            f"{k} {m:.1f} min" for k, m in v["minutes_kept_per_licence"].items()))
    return "\n".join(lines) + "\n"


def write_file_index(kept: Sequence[Candidate], shards: Sequence[dict[str, Any]], path: Path
                     ) -> None:
    """One JSON line per packed file: member, shard, source, licence, measurements."""
    shard_of = {m: s["name"] for s in shards for m in s["members"]}
    lines = []
    for c in sorted(kept, key=lambda c: member_name(c)):
        m = c.measure or {}
        lines.append(json.dumps({
            "member": member_name(c), "shard": shard_of[member_name(c)], "split": c.split,
            "source": c.source.name, "package": c.source.package, "version": c.source.version,
            "path": c.rel, "licence": c.licence, "language": c.language,
            "duration_s": round(m["duration_s"], 3), "sample_rate": m["sample_rate"],
            "channels": m["channels"], "format": m["format"], "subtype": m["subtype"],
            "cutoff_hz": round(m["cutoff_hz"], 1)}))
    tmp = path.with_name(path.name + ".part")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(path)


def write_manifest(man: dict[str, Any], json_path: Path, md_path: Path) -> None:
    """Write the manifest as JSON and markdown (temp file + rename)."""
    for path, text in ((json_path, json.dumps(man, indent=1) + "\n"),
                       (md_path, manifest_markdown(man))):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".part")
        tmp.write_text(text)
        tmp.replace(path)


# ---------------------------------------------------------------- main

def build(sources: Sequence[Source], work: Path, out: Path, settings: Settings,
          max_minutes: float | None = None, categories: Sequence[str] = CATEGORIES,
          jobs: int = 2, max_mb: float | None = None, fetch_fn: Any = fetch,
          render_fn: Any = None) -> dict[str, Any]:
    """Run steps 1-6; returns the manifest (also written to `<out>/manifest.{json,md}`)."""
    sources = [s for s in sources if s.category in categories]
    roots = {p: fetch_fn(p, v, work) for p, v in sorted({(s.package, s.version) for s in sources})}
    candidates, everything, found, dropped, licence_dropped = [], [], {}, {}, {}
    allowed = LICENCE_POLICIES[settings.licences]
    for s in sources:
        unpack_archives(s, roots[s.package])
        if s.render_midi:
            render_pieces(s, roots[s.package], render_fn)
        files, dropped[s.name] = find_files(s, roots[s.package])
        found[s.name] = len(files)
        everything += files
        kept = [c for c in files if licence_allowed(c.licence, allowed)]
        licence_dropped[s.name] = len(files) - len(kept)
        candidates += kept
        log.info("%s: %d files (%d dropped by the licence policy '%s')", s.name, len(files),
                 licence_dropped[s.name], settings.licences)
    assign_splits(candidates, settings.val_fraction)
    measurer = Measurer(work, settings, jobs)
    try:
        if max_minutes is None:
            measurer.measure(candidates)
            promote_val(candidates, settings.min_val_files)
            measured = candidates
        else:
            measured = select_subset(candidates, measurer, max_minutes, settings, max_mb)
    finally:
        measurer.close()
    kept = [c for c in measured if c.reason is None]
    log.info("kept %d of %d measured files; packing", len(kept), len(measured))
    shards = pack_shards(kept, out, settings.shard_mb)
    args = {"max_minutes_per_category": max_minutes, "max_mb_per_category": max_mb,
            "categories": list(categories), "licences": settings.licences}
    man = build_manifest(sources, found, dropped, everything, measured, shards, settings, args,
                         licence_dropped)
    write_manifest(man, out / "manifest.json", out / "manifest.md")
    write_file_index(kept, shards, out / "files.jsonl")
    return man


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sources", type=Path, default=REPO / "scripts/corpus_sources.toml")
    parser.add_argument("--work", type=Path, default=Path("/work/corpus_src"))
    parser.add_argument("--out", type=Path, default=Path("/work/corpus"))
    parser.add_argument("--manifest", type=Path, default=None,
                        help="manifest path without suffix (default: docs/corpus_manifest for a "
                             "full build, none for a subset)")
    parser.add_argument("--max-minutes-per-category", type=float, default=None)
    parser.add_argument("--max-mb-per-category", type=float, default=None,
                        help="with --max-minutes-per-category: also cap packed MB per category")
    parser.add_argument("--categories", nargs="+", choices=CATEGORIES, default=list(CATEGORIES))
    parser.add_argument("--min-cutoff-hz", type=float, default=18000.0)
    parser.add_argument("--max-hf-drop-db", type=float, default=15.0)
    parser.add_argument("--segment-s", type=float, default=5.0)
    parser.add_argument("--max-segments", type=int, default=12)
    parser.add_argument("--val-fraction", type=float, default=0.05)
    parser.add_argument("--min-val-files", type=int, default=3)
    parser.add_argument("--shard-mb", type=float, default=40.0)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--licences", choices=sorted(LICENCE_POLICIES), default="any",
                        help="keep only files whose licence fits this policy (gpl3: what a "
                             "model released under GPL-3.0-or-later may be trained on)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("engine").setLevel(logging.WARNING)
    settings = Settings(args.min_cutoff_hz, args.max_hf_drop_db, args.segment_s,
                        args.max_segments, args.val_fraction, args.min_val_files, args.shard_mb,
                        args.licences)
    man = build(load_sources(args.sources), args.work, args.out, settings,
                args.max_minutes_per_category, args.categories, args.jobs,
                args.max_mb_per_category)
    manifest = args.manifest
    if manifest is None and args.max_minutes_per_category is None:
        manifest = REPO / "docs/corpus_manifest"
    if manifest is not None:
        write_manifest(man, manifest.with_suffix(".json"), manifest.with_suffix(".md"))
    for name, v in man["categories"].items():
        log.info("%s: %s min, %s files", name, v["minutes_kept_per_split"],
                 v["files_kept_per_split"])
    log.info("%d shards, %.1f MB in %s", man["totals"]["shards"],
             man["totals"]["shard_bytes"] / 1e6, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
