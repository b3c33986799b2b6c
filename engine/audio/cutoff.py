"""Detect an input's real band limit (the low-pass left by a resampler or an MP3 encoder).

Method, on the long-term average power spectrum (Welch, periodic Hann, ~20 Hz bins), in dB and
median-smoothed over ~150 Hz (a median keeps a brick-wall edge where it is and ignores lone tones):

1. `peak` = the highest smoothed level above 20 Hz; `floor` = the median level in the top 4 % of
   the band (a dither/hiss floor, or the resampler's stop band, or content if full-band).
2. Content threshold `T = max(peak - RANGE_DB, floor + FLOOR_MARGIN_DB)`; the edge is the highest
   bin above `T`. A steady floor above the cutoff therefore never counts as content.
3. The edge sits at the bottom of the roll-off, so walk down to the knee: the highest frequency
   whose level is within `KNEE_DB` of the passband trend (a line in dB over log-frequency fitted
   on 0.3-0.7 x that frequency, so pink or tilted spectra are judged against their own slope).
   For a Butterworth filter applied forward-backward this is its nominal cutoff (-6 dB).
   Content that sags well below that trend before the edge (speech above its formants, a dark
   mix) would walk the knee far down into the passband; when that knee is rejected, the knee
   judged against the level just below the edge (0.85-0.95 x edge) is tried too. A knee in
   the top 10 % of the band (a resampler's roll-off) is always judged against that local level
   as well, and the lower of the two is taken: the octave trend of a falling spectrum (speech)
   let the knee run 10-25 dB down a resampler's edge (8 kHz inputs, 24 files: worst +67 Hz past
   the -6 dB point, now +35). Elsewhere the local knee wins when the level falls `CLIFF_DB`
   within `CLIFF_SPAN` above it: a brick wall (an encoder's low-pass) is the band limit however
   far the content before it sags under the trend (dark speech low-passed at 16 kHz: 17 of 76
   held-out files were cut at 10.3-15.2 kHz by the trend knee, none now).
4. Accept the knee only if it is a real band edge: the passband there is content (within
   `RANGE_DB` of the peak), the octave below it is dense (most raw bins within `DENSE_DB` of
   its loudest one: broadband content, not the leakage skirt of a lone tone),
   and the spectrum well above it (from 1.5 x knee) sits `EDGE_DROP_DB` lower (a knee in the
   top 10 % of the band skips that last check: a resampler's roll-off below the Nyquist).
   A rejected candidate (e.g. a pilot tone above the real cutoff) moves the search below it.
   A quiet, hissy recording's edge drops less than `EDGE_DROP_DB` into its hiss; it still counts
   when the passband stands `FLOOR_STEP_DB` above the floor and everything from 1.15 x knee up
   is flat floor (within `FLOOR_FLAT_DB`): content stops there, only a steady floor goes on.

Otherwise the input has no detectable band limit and the Nyquist is returned: silence, full-band
noise or music, and sparse tonal content (a lone 1 kHz sine: its band limit is ill-defined, and
the pipeline treats a cutoff >= ~20 kHz as "already full-band", which leaves such a file alone).
Every result is capped at min(Nyquist, 22050 Hz).
"""

from __future__ import annotations

import logging
import math
import os

import numpy as np

from engine.audio import io as audio_io

log = logging.getLogger(__name__)

# Bump whenever a detection can change: caches of measured cutoffs (the trainer's corpus scan,
# scripts/build_corpus.py) key on it. 2: content down to 90 dB under the peak over a deep floor;
# 3: a brick wall is the band limit however far the content before it sags.
DETECTOR_VERSION = 3
MAX_CUTOFF_HZ = 22050.0  # the model works at 44.1 kHz: nothing above its Nyquist matters
BIN_HZ = 21.5  # target Welch resolution (n_fft 2048 at 44.1 kHz)
SMOOTH_HZ = 150.0  # median-smoothing width of the dB spectrum
MIN_HZ = 20.0  # ignore DC and rumble
RANGE_DB = 60.0  # content is within this much of the spectral peak ...
DEEP_FLOOR_DB = 100.0  # ... or, over a floor this far below the peak (float or 24-bit
DEEP_RANGE_DB = 90.0  # audio, an encoder's zeroed band), within this much
FLOOR_MARGIN_DB = 10.0  # content is at least this much above the floor at the very top
KNEE_DB = 6.0  # knee = highest frequency within this much of the passband trend
EDGE_DROP_DB = 20.0  # a real edge: the band well above it is this much lower
TOP_BAND = 0.04  # fraction of the band, just below the Nyquist, where the floor is measured
DENSE_DB = 30.0  # in the octave below the knee, bins within this much of its loudest bin ...
DENSE_FRACTION = 0.5  # ... must be at least this share: broadband content, not a lone tone
NEAR_NYQUIST = 0.9  # a knee above this fraction of the Nyquist needs no drop check
FLOOR_STEP_DB = 12.0  # or: the passband is this much above the floor ...
FLOOR_FLAT_DB = 3.0  # ... and all above the edge (from 1.15 x knee) lies within this of it
FLOOR_GAP = 1.15  # the flat-floor check starts this far above the knee (skips the skirt)
LOCAL_BAND = (0.85, 0.95)  # fallback knee: judged against the level here (x the edge)
CLIFF_DB = 30.0  # a brick wall: the level falls this much ...
CLIFF_SPAN = 0.03  # ... within this fraction of the frequency above the knee
MAX_CANDIDATES = 8  # content runs tried, from the top down, before giving up


def detect_cutoff(x: np.ndarray, sample_rate: int) -> float:
    """Band limit in Hz of float audio `(Ch, S)` (or `(S,)`), capped at min(Nyquist, 22050)."""
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2:
        raise ValueError(f"x: expected (Ch, S), got shape {x.shape}")
    if sample_rate < 1:
        raise ValueError(f"sample_rate: must be positive, got {sample_rate}")
    n_fft = _n_fft(sample_rate, x.shape[1])
    if n_fft is None:
        log.info("input too short to measure its band limit; assuming full band")
        return _cap(sample_rate / 2, sample_rate)
    power, n_frames = _power_sum(x, n_fft)
    return cutoff_from_power(power / max(n_frames, 1), sample_rate)


def detect_cutoff_file(path: str | os.PathLike[str], max_segments: int = 16,
                       segment_s: float = 10.0) -> float:
    """Band limit in Hz of a file, from up to `max_segments` excerpts of `segment_s` (seeks)."""
    if segment_s <= 0:
        raise ValueError(f"segment_s: must be positive, got {segment_s}")
    info = audio_io.probe(path)
    segment_frames = max(1, round(segment_s * info.sample_rate))
    n_fft = _n_fft(info.sample_rate, min(info.frames, segment_frames))
    if n_fft is None:
        return _cap(info.sample_rate / 2, info.sample_rate)
    power = np.zeros(n_fft // 2 + 1)
    n_frames = 0
    for block in audio_io.read_segments(path, segment_frames, max_segments):  # (Ch, n)
        if block.shape[1] >= n_fft:
            p, n = _power_sum(block, n_fft)
            power += p
            n_frames += n
    if n_frames == 0:
        return _cap(info.sample_rate / 2, info.sample_rate)
    return cutoff_from_power(power / n_frames, info.sample_rate)


def cutoff_from_power(power: np.ndarray, sample_rate: int) -> float:
    """Band limit in Hz from an average power spectrum `(F,)` of an n_fft = 2(F-1) Welch."""
    nyquist_hz = sample_rate / 2
    n_bins = power.shape[0]
    freqs_hz = np.linspace(0.0, nyquist_hz, n_bins)
    if not np.any(power > 0) or not np.isfinite(power).all():
        log.info("silent input: no band limit, assuming full band")
        return _cap(nyquist_hz, sample_rate)
    level_db = 10 * np.log10(np.maximum(power, power.max() * 1e-20))  # 200 dB range
    width = max(3, 2 * round(SMOOTH_HZ / (nyquist_hz / (n_bins - 1)) / 2) + 1)
    smooth_db = _median_smooth(level_db, width)
    lo = max(1, int(np.searchsorted(freqs_hz, MIN_HZ)))
    top = int(n_bins * (1 - TOP_BAND))
    peak_db = float(smooth_db[lo:].max())
    floor_db = float(np.median(smooth_db[top:]))
    content_db = peak_db - (DEEP_RANGE_DB if peak_db - floor_db >= DEEP_FLOOR_DB else RANGE_DB)
    threshold_db = max(content_db, floor_db + FLOOR_MARGIN_DB)
    is_content = smooth_db > threshold_db
    is_content[:lo] = False
    search_end = n_bins  # candidates are runs of content bins, tried from the top down
    for _ in range(MAX_CANDIDATES):
        candidates = np.flatnonzero(is_content[:search_end])
        if candidates.size == 0:
            break
        edge = int(candidates[-1])
        knee = _find_knee(smooth_db, freqs_hz, edge)
        local = _find_local_knee(smooth_db, freqs_hz, edge)
        if freqs_hz[knee] >= NEAR_NYQUIST * nyquist_hz:  # a resampler's roll-off: judge it
            knee = min(knee, local)  # by the level just below it too
        elif local > knee and _is_cliff(smooth_db, freqs_hz, local):
            knee = local  # content that sags into a brick wall: the wall is the band limit
        if _is_band_edge(level_db, smooth_db, freqs_hz, knee, content_db, floor_db):
            return _cap(float(freqs_hz[knee]), sample_rate)
        if local > knee and _is_band_edge(level_db, smooth_db, freqs_hz, local, content_db,
                                          floor_db):
            return _cap(float(freqs_hz[local]), sample_rate)
        run_start = edge
        while run_start > lo and is_content[run_start - 1]:
            run_start -= 1
        search_end = min(run_start, knee)
    log.info("no band edge found: assuming full band")
    return _cap(nyquist_hz, sample_rate)


def _is_band_edge(level_db: np.ndarray, smooth_db: np.ndarray, freqs_hz: np.ndarray, knee: int,
                  content_db: float, floor_db: float) -> bool:
    """Whether the spectrum is broadband content below `knee` (its passband above
    `content_db`) and drops clearly above it."""
    knee_hz = float(freqs_hz[knee])
    passband_db = _trend_at(smooth_db, freqs_hz, knee)
    octave_db = level_db[int(np.searchsorted(freqs_hz, knee_hz / 2)):knee + 1]
    dense = float(np.mean(octave_db >= octave_db.max() - DENSE_DB))
    n_bins = smooth_db.shape[0]
    start = min(int(np.searchsorted(freqs_hz, 1.5 * knee_hz)), (knee + n_bins) // 2)
    above_db = float(np.percentile(smooth_db[start:], 90))
    gap = min(int(np.searchsorted(freqs_hz, FLOOR_GAP * knee_hz)), n_bins - 1)
    above_gap_db = float(np.percentile(smooth_db[gap:], 90))
    log.debug("knee %.0f Hz: passband %.1f dB, content from %.1f dB, floor %.1f dB, above %.1f dB"
              " (from %.2f x knee %.1f dB), dense %.2f", knee_hz, passband_db, content_db,
              floor_db, above_db, FLOOR_GAP, above_gap_db, dense)
    if passband_db < content_db or dense < DENSE_FRACTION:
        return False  # the leakage skirt of a tone, or sparse partials: no band to speak of
    if knee_hz >= NEAR_NYQUIST * freqs_hz[-1]:
        return True  # a resampler's roll-off: nothing above it to compare with
    if passband_db - above_db >= EDGE_DROP_DB:
        return True
    # a quiet recording's edge into its hiss: a clear step, then nothing but the flat floor
    return (passband_db - floor_db >= FLOOR_STEP_DB
            and above_gap_db - floor_db <= FLOOR_FLAT_DB)


def _is_cliff(smooth_db: np.ndarray, freqs_hz: np.ndarray, knee: int) -> bool:
    """Whether the level falls CLIFF_DB within CLIFF_SPAN x the frequency above `knee`: a
    brick-wall low-pass (an MP3 encoder's, an FFT filter's), not a filter's gradual skirt."""
    above = min(int(np.searchsorted(freqs_hz, (1 + CLIFF_SPAN) * freqs_hz[knee])),
                smooth_db.shape[0] - 1)
    return above > knee and smooth_db[knee] - smooth_db[above] >= CLIFF_DB


def _find_knee(smooth_db: np.ndarray, freqs_hz: np.ndarray, edge: int) -> int:
    """Highest bin at or below `edge` whose level is within KNEE_DB of the passband trend."""
    for k in range(edge, 0, -1):
        if smooth_db[k] >= _trend_at(smooth_db, freqs_hz, k) - KNEE_DB:
            return k
    return edge


def _find_local_knee(smooth_db: np.ndarray, freqs_hz: np.ndarray, edge: int) -> int:
    """Highest bin at or below `edge` within KNEE_DB of the level just below the edge (the
    median over LOCAL_BAND x its frequency): the knee of content that already sags towards a
    steep edge, where the trend fitted an octave lower overshoots and walks far too deep."""
    i0 = int(np.searchsorted(freqs_hz, LOCAL_BAND[0] * freqs_hz[edge]))
    i1 = max(i0 + 1, int(np.searchsorted(freqs_hz, LOCAL_BAND[1] * freqs_hz[edge])))
    local_db = float(np.median(smooth_db[i0:i1]))
    above = np.flatnonzero(smooth_db[:edge + 1] >= local_db - KNEE_DB)
    return int(above[-1]) if above.size else edge


def _trend_at(smooth_db: np.ndarray, freqs_hz: np.ndarray, k: int) -> float:
    """Level at bin k extrapolated from a dB-vs-log2(f) line fitted on 0.3-0.7 x f_k."""
    i0 = max(1, int(np.searchsorted(freqs_hz, 0.3 * freqs_hz[k])))
    i1 = max(i0 + 2, int(np.searchsorted(freqs_hz, 0.7 * freqs_hz[k])))
    if i1 >= k:  # too few bins for a fit
        return float(np.median(smooth_db[max(1, k // 2):k + 1]))
    octaves = np.log2(freqs_hz[i0:i1])
    centred = octaves - octaves.mean()
    mean_db = float(smooth_db[i0:i1].mean())
    slope = float(centred @ (smooth_db[i0:i1] - mean_db) / (centred @ centred))  # dB/octave
    slope = min(max(slope, -30.0), 6.0)  # a natural tilt, never a cliff
    return mean_db + slope * (math.log2(freqs_hz[k]) - float(octaves.mean()))


def _median_smooth(values: np.ndarray, width: int) -> np.ndarray:
    """Running median over `width` (odd) bins, edges padded by reflection."""
    half = width // 2
    padded = np.pad(values, half, mode="reflect")
    windows = np.lib.stride_tricks.sliding_window_view(padded, width)
    return np.median(windows, axis=1)


def _n_fft(sample_rate: int, n_samples: int) -> int | None:
    """Welch segment length: a power of two giving ~BIN_HZ bins, shortened for short input."""
    n_fft = 2 ** round(math.log2(sample_rate / BIN_HZ))
    while n_fft > n_samples and n_fft > 256:
        n_fft //= 2
    return n_fft if n_fft <= n_samples else None


def _power_sum(x: np.ndarray, n_fft: int, frames_per_chunk: int = 256) -> tuple[np.ndarray, int]:
    """Sum over channels and 50 %-overlapping Hann frames of |rfft|^2, and the frame count."""
    hop = n_fft // 2
    window = np.hanning(n_fft + 1)[:-1]  # periodic Hann
    total = np.zeros(n_fft // 2 + 1)
    count = 0
    for channel in x:
        frames = np.lib.stride_tricks.sliding_window_view(channel, n_fft)[::hop]  # (T, n_fft)
        for i in range(0, frames.shape[0], frames_per_chunk):
            chunk = frames[i:i + frames_per_chunk].astype(np.float64) * window
            total += (np.abs(np.fft.rfft(chunk, axis=1)) ** 2).sum(axis=0)
            count += chunk.shape[0]
    return total, count


def _cap(cutoff_hz: float, sample_rate: int) -> float:
    return float(min(cutoff_hz, sample_rate / 2, MAX_CUTOFF_HZ))
