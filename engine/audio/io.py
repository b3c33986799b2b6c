"""Audio file I/O: the only module that opens audio files (STYLE §8).

Reading validates every file (what libsndfile reads: WAV, FLAC, OGG Vorbis/Opus, MP3, AIFF, ...;
1-8 channels, 4-192 kHz, at least `MIN_DURATION_S`) and raises an `AudioInputError` subclass with
a one-line reason. Arrays are numpy float32 `(Ch, S)`. Writing goes through `AtomicWriter`.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np
import soundfile as sf
import soxr

from engine.atomic import new_temp_beside
from engine.audio.files import OUTPUT_MARK
from engine.audio.rolloff import RolloffStream, compensation_taps, precompensate

log = logging.getLogger(__name__)

MIN_SAMPLE_RATE = 4_000  # Hz, lowest accepted input rate: a 2 kHz band, the lowest cutoff trained
MAX_SAMPLE_RATE = 192_000  # Hz, highest accepted input rate (studio masters)
MAX_CHANNELS = 8  # 7.1 surround
MIN_DURATION_S = 0.05  # shorter inputs break the 2048-point STFTs downstream
RESAMPLE_QUALITY = "VHQ"  # soxr very high quality, for whole files and streams alike
CLIP_LEVEL = 0.999  # |x| at or above this counts as clipped when loading
QUIET_PEAK_DB = -60.0  # peak level (dBFS) under which a non-silent input is "near-silent"
WRITE_SUBTYPES = {"wav": ("PCM_16", "PCM_24", "FLOAT"), "flac": ("PCM_16", "PCM_24")}
SAMPLE_BYTES = {"PCM_16": 2, "PCM_24": 3, "FLOAT": 4}
# A RIFF/WAVE file counts its bytes in 32 bits: longer output is written as RF64 (EBU Tech 3306,
# the same .wav name; pro audio tools read it). 1 MiB of room for the header and metadata.
WAV_MAX_DATA_BYTES = 2**32 - 1 - 2**20

# libsndfile's text fields (title, artist, album, date, comment, ...), carried from input to
# output. A WAV header silently loses every field when one is much longer (3,000 characters
# did): longer values are left out, with a warning.
MAX_TAG_CHARS = 1024
PCM16_FULL_SCALE = 32768.0  # libsndfile's float -> 16-bit scale (0.25 -> 8192): 1 LSB = 1 / this

PathLike = str | os.PathLike[str]


class AudioInputError(Exception):
    """A file this job cannot use, read or write; `str()` is `"<path>: <reason>"`, one line.

    The base of every per-file audio error, output-side ones included, so callers (CLI, GUI row
    status) catch one type and show the reason.
    """

    def __init__(self, path: PathLike, reason: str) -> None:
        super().__init__(path, reason)
        self.path = os.fspath(path)
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


class UnreadableAudio(AudioInputError):
    """Missing, corrupt, truncated or not an audio format libsndfile reads."""


class EmptyAudio(AudioInputError):
    """A readable file with no audio frames."""


class TooShortAudio(AudioInputError):
    """Shorter than `MIN_DURATION_S`."""


class NonFiniteAudio(AudioInputError):
    """Contains NaN or Inf samples (float WAV written by a broken program)."""


class UnsupportedChannels(AudioInputError):
    """More than `MAX_CHANNELS` channels."""


class UnsupportedRate(AudioInputError):
    """Sample rate outside `MIN_SAMPLE_RATE`..`MAX_SAMPLE_RATE`."""


class AudioOutputError(AudioInputError):
    """An output path that must not be written."""


class OutputExistsError(AudioOutputError):
    """The target exists and overwriting was not allowed."""


class SameAsInputError(AudioOutputError):
    """The target is one of the inputs; refused even with overwrite."""


@dataclass(frozen=True)
class AudioInfo:
    """What `probe` learns from a file's header."""

    path: str
    sample_rate: int  # Hz
    channels: int
    frames: int  # samples per channel, as the header reports them
    duration_s: float
    format: str  # libsndfile major format, e.g. "WAV", "FLAC", "MP3"
    subtype: str  # e.g. "PCM_16", "FLOAT", "MPEG_LAYER_III"


def resampled_length(frames: int, rate_in: int, rate_out: int) -> int:
    """Length of every resampled output here: Python's round(frames * rate_out / rate_in)."""
    return round(frames * rate_out / rate_in)  # exact in float64 for any real file length


def resample(x: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Resample float `(Ch, S)` audio with soxr to float32 `(Ch, resampled_length(S, ...))`.

    Upsampling adds < 1 dB of roll-off up to 0.96 x the input's Nyquist (soxr alone: -6 dB at
    0.95, `engine.audio.rolloff`): the top of the input's band is not dulled on the way up.
    """
    if x.ndim != 2:
        raise ValueError(f"x: expected (Ch, S), got shape {x.shape}")
    for rate in (rate_in, rate_out):
        _check_rate(rate)
    x = np.ascontiguousarray(x, dtype=np.float32)
    if rate_in == rate_out:
        return x
    x = precompensate(x, rate_in, rate_out, RESAMPLE_QUALITY)  # (Ch, S): soxr's edge undone
    y = soxr.resample(np.ascontiguousarray(x.T), rate_in, rate_out, quality=RESAMPLE_QUALITY)
    return np.ascontiguousarray(_fit_length(y, resampled_length(x.shape[1], rate_in, rate_out)).T)


def probe(path: PathLike, *, min_duration_s: float = MIN_DURATION_S) -> AudioInfo:
    """Read and validate a file's header without decoding the audio."""
    path_str = os.fspath(path)
    _check_exists(path_str)
    try:
        info = sf.info(path_str)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
        raise UnreadableAudio(path_str, f"not a readable audio file ({_reason(e)})") from e
    result = AudioInfo(path=path_str, sample_rate=int(info.samplerate), channels=int(info.channels),
                       frames=max(int(info.frames), 0), duration_s=float(info.duration),
                       format=str(info.format), subtype=str(info.subtype))
    _validate(result, min_duration_s)
    return result


def read_tags(path: PathLike) -> dict[str, str]:
    """The file's text metadata libsndfile reads (WAV INFO, FLAC/Ogg comments, MP3 ID3), or {}
    when it has none or cannot be opened (that is reported where the audio is read)."""
    try:
        with sf.SoundFile(os.fspath(path)) as f:
            return dict(f.copy_metadata())
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError, OSError):
        return {}


def load(path: PathLike, sample_rate: int | None = None, *,
         min_duration_s: float = MIN_DURATION_S) -> tuple[np.ndarray, int]:
    """Decode a whole file to float32 `(Ch, S)`, resampled to `sample_rate` if given."""
    info = probe(path, min_duration_s=min_duration_s)
    try:
        data, _ = sf.read(info.path, dtype="float32", always_2d=True)  # (S, Ch)
    except (sf.LibsndfileError, RuntimeError, ValueError) as e:
        raise UnreadableAudio(info.path, f"decoding failed ({_reason(e)})") from e
    if data.shape[0] == 0:
        raise EmptyAudio(info.path, "no audio frames could be decoded")
    _check_finite(info.path, data, info.sample_rate, 0)
    _log_levels(info.path, data)
    x = np.ascontiguousarray(data.T)  # (Ch, S)
    if sample_rate is None or sample_rate == info.sample_rate:
        return x, info.sample_rate
    return resample(x, info.sample_rate, sample_rate), sample_rate


def iter_blocks(path: PathLike, block_frames: int, sample_rate: int | None = None, *,
                min_duration_s: float = MIN_DURATION_S) -> Iterator[np.ndarray]:
    """Stream a file as float32 `(Ch, n)` blocks with bounded memory, optionally resampled.

    Without resampling every block has `block_frames` frames except the last. With resampling
    one `soxr.ResampleStream` (all channels, float32, `RESAMPLE_QUALITY`) carries its state, so
    block lengths vary (filter delay: short first blocks, a longer flushed last one) and their
    concatenation equals `load(path, sample_rate)`: the tail is zero-padded or trimmed to exactly
    `resampled_length(frames_read, file_rate, sample_rate)`. Empty blocks are not yielded;
    NaN/Inf raise `NonFiniteAudio` naming the time position. Validation happens at the call.
    """
    if block_frames < 1:
        raise ValueError(f"block_frames: must be >= 1, got {block_frames}")
    info = probe(path, min_duration_s=min_duration_s)
    if sample_rate is not None:
        _check_rate(sample_rate)
    return _iter_blocks(info, block_frames, sample_rate)


class StreamResampler:
    """`resample` over a stream of float `(Ch, n)` blocks, state carried between them.

    One `soxr.ResampleStream` (all channels, `RESAMPLE_QUALITY`) with the same roll-off
    compensation as `resample` when going up; outputs lag (filter delay: short first blocks)
    until `finish()`, after which all outputs together are exactly
    `resampled_length(frames_in, rate_in, rate_out)` frames, as `resample` gives for the whole.
    """

    def __init__(self, rate_in: int, rate_out: int, channels: int) -> None:
        for rate in (rate_in, rate_out):
            _check_rate(rate)
        self.rate_in, self.rate_out = rate_in, rate_out
        self._stream = soxr.ResampleStream(rate_in, rate_out, channels, dtype="float32",
                                           quality=RESAMPLE_QUALITY)
        taps = compensation_taps(rate_in, rate_out, RESAMPLE_QUALITY)  # None: not up
        self._flat = None if taps is None else RolloffStream(taps, channels)
        self._channels = channels
        self.frames_in = self.frames_out = 0

    def process(self, block: np.ndarray) -> np.ndarray:
        """(Ch, n) at rate_in -> (Ch, m) float32 at rate_out, m varying."""
        self.frames_in += block.shape[1]
        if self._flat is not None:  # lags by the FIR's delay until the flush
            block = self._flat.process(block)
        out = self._stream.resample_chunk(np.ascontiguousarray(block.T, dtype=np.float32))
        self.frames_out += out.shape[0]
        return np.ascontiguousarray(out.T)  # (Ch, m)

    def finish(self) -> np.ndarray:
        """The rest, `(Ch, m)`: what the filters held back, trimmed or padded to the total."""
        held = (np.zeros((0, self._channels), np.float32) if self._flat is None
                else np.ascontiguousarray(self._flat.flush().T))  # (n, Ch)
        tail = self._stream.resample_chunk(held, last=True)
        # soxr's filter delay keeps the output before the flush below the total
        n_missing = resampled_length(self.frames_in, self.rate_in, self.rate_out) \
            - self.frames_out
        tail = _fit_length(tail, max(n_missing, 0))
        self.frames_out += tail.shape[0]
        return np.ascontiguousarray(tail.T)


def _iter_blocks(info: AudioInfo, block_frames: int, sample_rate: int | None
                 ) -> Iterator[np.ndarray]:
    rate_out = info.sample_rate if sample_rate is None else sample_rate
    resampler = (StreamResampler(info.sample_rate, rate_out, info.channels)
                 if rate_out != info.sample_rate else None)
    frames_read = 0
    try:
        with sf.SoundFile(info.path) as f:
            while True:
                block = f.read(block_frames, dtype="float32", always_2d=True)  # (n, Ch)
                if block.shape[0] == 0:
                    break
                _check_finite(info.path, block, info.sample_rate, frames_read)
                frames_read += block.shape[0]
                out = block.T if resampler is None else resampler.process(block.T)  # (Ch, m)
                if out.shape[1]:
                    yield np.ascontiguousarray(out)
    except (sf.LibsndfileError, RuntimeError) as e:
        raise UnreadableAudio(info.path, f"decoding failed ({_reason(e)})") from e
    if frames_read == 0:
        raise EmptyAudio(info.path, "no audio frames could be decoded")
    if resampler is not None:
        tail = resampler.finish()
        if tail.shape[1]:
            yield tail


def read_segments(path: PathLike, segment_frames: int, max_segments: int) -> Iterator[np.ndarray]:
    """Yield up to `max_segments` float32 `(Ch, n)` excerpts spread evenly over a file (seeks;
    a file that cannot seek, such as raw GSM, is read through instead).

    A file no longer than `segment_frames * max_segments` is read whole, in consecutive segments.
    """
    if segment_frames < 1 or max_segments < 1:
        raise ValueError("segment_frames and max_segments must be >= 1")
    info = probe(path)
    return _read_segments(info, segment_frames, max_segments)


def _read_segments(info: AudioInfo, segment_frames: int, max_segments: int
                   ) -> Iterator[np.ndarray]:
    if info.frames <= segment_frames * max_segments:
        starts = [i * segment_frames for i in range(math.ceil(info.frames / segment_frames))]
    else:
        last = info.frames - segment_frames
        starts = [round(i * last / max(max_segments - 1, 1)) for i in range(max_segments)]
    try:
        with sf.SoundFile(info.path) as f:
            seekable, pos = f.seekable(), 0
            for start in starts:
                if seekable:
                    f.seek(start)
                else:  # raw GSM and the like: read through to the excerpt (bounded blocks)
                    while pos < start:
                        skipped = f.read(min(start - pos, segment_frames), dtype="float32",
                                         always_2d=True).shape[0]
                        if skipped == 0:
                            return
                        pos += skipped
                block = f.read(segment_frames, dtype="float32", always_2d=True)  # (n, Ch)
                pos = start + block.shape[0]
                _check_finite(info.path, block, info.sample_rate, start)
                if block.shape[0]:
                    yield np.ascontiguousarray(block.T)  # (Ch, n)
    except (sf.LibsndfileError, RuntimeError) as e:
        raise UnreadableAudio(info.path, f"decoding failed ({_reason(e)})") from e


def output_path(input_path: PathLike, out_dir: PathLike | None, fmt: str,
                subdir: PathLike = "") -> Path:
    """Where the result for `input_path` goes: `out_dir/[subdir/]<stem>.<fmt>`, else next to
    the input as `<stem>.jatsr.<fmt>` (`engine.audio.files.OUTPUT_MARK`)."""
    fmt = fmt.lower()
    if fmt not in WRITE_SUBTYPES:
        raise ValueError(f"fmt: must be one of {sorted(WRITE_SUBTYPES)}, got {fmt!r}")
    src = Path(input_path)
    if out_dir is not None:
        return Path(out_dir) / subdir / f"{src.stem}.{fmt}"
    return src.with_name(f"{src.stem}{OUTPUT_MARK}{fmt}")


def plan_outputs(inputs: Iterable[tuple[Path, Path]], out_dir: PathLike | None,
                 fmt: str) -> list[tuple[Path, Path]]:
    """(input, output) for a batch of (file, subfolder) (`engine.audio.files.expand_paths`),
    before anything is written: a file listed twice is kept once, and two inputs whose results
    would land on one path (`x.wav` and `x.flac` into one folder) raise ValueError naming both,
    so neither result replaces the other."""
    plan: list[tuple[Path, Path]] = []
    claimed: dict[Path, Path] = {}  # resolved output -> the input that writes it
    seen: set[object] = set()  # the inputs' identities: O(1) a file, for folders of thousands
    for src, subdir in inputs:
        identity = _identity(src)
        if identity in seen:
            continue
        seen.add(identity)
        out = output_path(src, out_dir, fmt, subdir)
        key = out.resolve()
        if key in claimed:
            raise ValueError(f"{claimed[key]} and {src} would both be written to {out}; "
                             "restore them into different folders")
        claimed[key] = src
        plan.append((src, out))
    return plan


class AtomicWriter:
    """Context manager writing `(Ch, n)` blocks to a temp file, renamed onto `path` on success.

    The temp file lives in the destination directory (so `os.replace` is atomic) and is deleted
    if the block exits with any exception, KeyboardInterrupt and cancellation included.
    PCM subtypes are clipped to [-1, 1] (libsndfile would wrap around otherwise). WAV output
    whose `expected_frames` exceed 4 GiB of samples is written as RF64; without that hint,
    writing past the RIFF limit fails with AudioOutputError instead of a corrupt header.
    `tags` (text metadata, e.g. the input's `read_tags`) go into the file's header. 16-bit
    output gets TPDF dither unless `dither=False`.
    """

    def __init__(self, path: PathLike, sample_rate: int, channels: int, format: str = "wav",
                 subtype: str = "PCM_16", overwrite: bool = False,
                 inputs: Iterable[PathLike] = (), expected_frames: int | None = None,
                 tags: Mapping[str, str] | None = None, dither: bool = True) -> None:
        self.format = format.lower()
        self.subtype = subtype.upper()
        if self.format not in WRITE_SUBTYPES:
            raise ValueError(f"format: must be one of {sorted(WRITE_SUBTYPES)}, got {format!r}")
        if self.subtype not in WRITE_SUBTYPES[self.format]:
            raise ValueError(f"subtype: {self.format} supports {WRITE_SUBTYPES[self.format]}, "
                             f"got {subtype!r}")
        _check_rate(sample_rate)
        if not 1 <= channels <= MAX_CHANNELS:
            raise ValueError(f"channels: must be in 1..{MAX_CHANNELS}, got {channels}")
        self.path, self.sample_rate, self.channels = Path(path), sample_rate, channels
        self.overwrite, self.frames_written = overwrite, 0
        self.clipped_samples = 0  # PCM samples beyond full scale, written at full scale
        # 16-bit output is dithered (24-bit rounding sits ~140 dB down: not needed there)
        self._dither = np.random.default_rng(0) if dither and self.subtype == "PCM_16" else None
        self._frame_bytes = channels * SAMPLE_BYTES[self.subtype]
        # WAV output too long for a RIFF header (`expected_frames`, when known) becomes RF64
        self.container = "RF64" if self.format == "wav" and expected_frames is not None and (
            expected_frames * self._frame_bytes > WAV_MAX_DATA_BYTES) else self.format.upper()
        self._inputs = [Path(p) for p in inputs]
        self.tags = dict(tags or {})
        self._tmp: Path | None = None
        self._file: sf.SoundFile | None = None
        for src in self._inputs:
            if _same_file(src, self.path):
                raise SameAsInputError(self.path, f"would overwrite the input {src}")
        if self.path.is_dir():
            raise OutputExistsError(self.path, "is a directory")
        if self.path.exists() and not self.overwrite:
            raise OutputExistsError(self.path, "already exists (overwrite not allowed)")

    def __enter__(self) -> AtomicWriter:
        parent = self.path.parent
        if not parent.is_dir():
            raise AudioOutputError(self.path, f"output directory {parent} does not exist")
        tmp = new_temp_beside(self.path, ".part")
        self._tmp = tmp
        try:
            self._file = sf.SoundFile(tmp, "w", samplerate=self.sample_rate, channels=self.channels,
                                      subtype=self.subtype, format=self.container)
            self._write_tags()
        except BaseException:
            self._discard()
            raise
        return self

    def _write_tags(self) -> None:
        """Text fields before the audio (FLAC writes them into its header)."""
        for key, value in self.tags.items():
            if len(value) > MAX_TAG_CHARS:
                log.warning("%s: metadata field %s left out (%d characters, at most %d kept)",
                            self.path, key, len(value), MAX_TAG_CHARS)
                continue
            try:
                setattr(self._file, key, value)
            except (sf.LibsndfileError, RuntimeError, AttributeError, TypeError) as e:
                log.warning("%s: metadata field %s not written (%s)", self.path, key, e)

    def _dithered(self, data: np.ndarray) -> np.ndarray:
        """TPDF dither of +-1 LSB (16-bit), so quiet detail is not rounded into distortion;
        digital silence (exact zeros) and blocks already on the 16-bit grid (a 16-bit input
        passed through) are left exact. Seeded: the same input, the same file."""
        assert self._dither is not None
        scaled = data * PCM16_FULL_SCALE
        if np.array_equal(scaled, np.round(scaled)):
            return data
        noise = self._dither.random(data.shape, np.float32) - self._dither.random(
            data.shape, np.float32)  # triangular on [-1, 1]
        return np.where(data == 0.0, data, data + noise / PCM16_FULL_SCALE)

    def write(self, block: np.ndarray) -> None:
        """Append a float `(Ch, n)` block."""
        if self._file is None:
            raise RuntimeError("AtomicWriter.write outside its `with` block")
        if block.ndim != 2 or block.shape[0] != self.channels:
            raise ValueError(f"block: expected shape ({self.channels}, n), got {block.shape}")
        data = np.asarray(block, dtype=np.float32).T  # (n, Ch)
        if not np.isfinite(data).all():
            raise ValueError(f"block: NaN/Inf in output at frame {self.frames_written}")
        if self.subtype != "FLOAT":
            self.clipped_samples += int(np.count_nonzero(np.abs(data) > 1.0))
            if self._dither is not None:
                data = self._dithered(data)
            data = np.clip(data, -1.0, 1.0)
        if self.container == "WAV" and (
                (self.frames_written + data.shape[0]) * self._frame_bytes > WAV_MAX_DATA_BYTES):
            raise AudioOutputError(self.path, "longer than a WAV file can hold (4 GiB): write "
                                              "FLAC, or give the expected length for RF64")
        self._file.write(np.ascontiguousarray(data))
        self.frames_written += data.shape[0]

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is not None:
            self._discard()
            return
        try:
            assert self._file is not None and self._tmp is not None
            self._file.close()  # closing twice (in _discard) is harmless
            if self.path.exists() and not self.overwrite:  # created while we were writing
                raise OutputExistsError(self.path, "appeared while writing (overwrite not allowed)")
            os.replace(self._tmp, self.path)
            self._file = self._tmp = None
        except BaseException:
            self._discard()
            raise
        log.info("wrote %s (%d frames)", self.path, self.frames_written)

    def _discard(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            with contextlib.suppress(Exception):  # the error being handled matters more
                file.close()
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)
            self._tmp = None


def _identity(path: Path) -> object:
    """The file behind a path (device and inode of its resolved path: symlinks, hard links and
    `..` agree), or the resolved path of one that does not exist (reading it reports why)."""
    resolved = path.resolve()
    try:
        st = os.stat(resolved)
    except OSError:
        return resolved
    return st.st_dev, st.st_ino


def _same_file(a: Path, b: Path) -> bool:
    return _identity(a) == _identity(b)


def _check_exists(path: str) -> None:
    if not os.path.exists(path):
        raise UnreadableAudio(path, "file not found")
    if os.path.isdir(path):
        raise UnreadableAudio(path, "is a directory, not an audio file")


def _validate(info: AudioInfo, min_duration_s: float) -> None:
    if not 1 <= info.channels <= MAX_CHANNELS:
        raise UnsupportedChannels(info.path,
                                  f"{info.channels} channels (1-{MAX_CHANNELS} supported)")
    if not MIN_SAMPLE_RATE <= info.sample_rate <= MAX_SAMPLE_RATE:
        raise UnsupportedRate(info.path, f"sample rate {info.sample_rate} Hz "
                              f"({MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz supported)")
    if info.frames == 0:
        raise EmptyAudio(info.path, "contains no audio frames")
    if info.frames < min_duration_s * info.sample_rate:
        raise TooShortAudio(info.path, f"only {info.frames / info.sample_rate * 1000:.1f} ms "
                            f"(at least {min_duration_s * 1000:.0f} ms needed)")


def _check_finite(path: str, data: np.ndarray, sample_rate: int, offset_frames: int) -> None:
    """Raise NonFiniteAudio naming the time of the first NaN/Inf in a `(n, Ch)` block."""
    finite = np.isfinite(data)
    if finite.all():
        return
    time_s = (offset_frames + int(np.argmin(finite.all(axis=1)))) / sample_rate
    minutes, seconds = divmod(time_s, 60.0)
    raise NonFiniteAudio(path, f"NaN/Inf sample at {int(minutes)}:{seconds:06.3f} ({time_s:.3f} s)")


def _log_levels(path: str, data: np.ndarray) -> None:
    peak = float(np.max(np.abs(data)))
    if peak == 0.0:
        log.info("%s: digital silence", path)
    elif peak < 10 ** (QUIET_PEAK_DB / 20):
        log.warning("%s: near-silent (peak %.1f dBFS)", path, 20 * math.log10(peak))
    n_clipped = int(np.count_nonzero(np.abs(data) >= CLIP_LEVEL))
    if n_clipped:
        log.warning("%s: %d samples at or above full scale (clipped)", path, n_clipped)


def _check_rate(sample_rate: int) -> None:
    if sample_rate < 1:
        raise ValueError(f"sample_rate: must be positive, got {sample_rate}")


def _fit_length(data: np.ndarray, n_frames: int) -> np.ndarray:
    """Trim or zero-pad `(n, Ch)` data along frames to exactly `n_frames`."""
    return np.pad(data[:n_frames], ((0, max(0, n_frames - data.shape[0])), (0, 0)))


def _reason(e: BaseException) -> str:
    return " ".join((getattr(e, "error_string", None) or str(e) or type(e).__name__).split())
