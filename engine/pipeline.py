"""Upsampling pipeline: band-limited audio in, full-band 44.1 kHz audio out.

Audio streams through in overlapping chunks of `chunk_s` seconds; chunks of all channels are
batched through codec -> flow sampler -> codec, and consecutive chunks are crossfaded over
`overlap_s`. Only the band above the cutoff is generated: the codec keeps the input below it.
Memory stays bounded by one batch of chunks, whatever the file's length.
Layout: numpy float32 (Ch, S) here; torch (B, 1, S) and latents (B, C, T) inside `_run_batch`.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from engine.audio.cutoff import detect_cutoff, detect_cutoff_file
from engine.audio.flatness import band_flatness, band_flatness_file
from engine.audio.io import (
    AtomicWriter,
    StreamResampler,
    iter_blocks,
    probe,
    read_tags,
    resample,
    resampled_length,
)
from engine.audio.oneshot import is_one_shot, is_one_shot_file
from engine.config import OUTPUT_RATES, SAMPLE_RATE, PipelineConfig, SamplerConfig
from engine.modelfile import JaTModel
from engine.sampling import initial_noise, iter_sample
from engine.sbr import sbr_batch

log = logging.getLogger(__name__)

FULL_BAND_HZ = 21000.0  # a detected cutoff at or above this: nothing is missing
READ_BLOCK_FRAMES = 1 << 16
SOFTWARE_TAG = "JaT-SR"  # the output's "software" field; the input's other text fields are kept


@dataclass(frozen=True)
class Progress:
    """Where a restoration is: chunks done, sampler step within the current batch."""

    fraction: float  # 0..1 for this input
    chunks_done: int
    chunks_total: int
    step: int
    steps: int
    result: UpsampleResult | None = None  # set on the last message only


@dataclass(frozen=True)
class UpsampleResult:
    """What one restoration produced."""

    input_path: Path | None
    output_path: Path | None
    input_rate: int
    channels: int
    duration_s: float
    cutoff_hz: float
    generated: bool  # False when the input was already full-band
    elapsed_s: float
    audio: np.ndarray | None = None  # (Ch, S) at 44.1 kHz, for in-memory restoration
    clipped_samples: int = 0  # beyond full scale in a PCM output file, written at full scale
    warm_start: bool = False  # sampled from the DSP estimate (SamplerConfig.for_input)


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' -> CUDA when available, else CPU; 'cuda' without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("--device cuda: no CUDA GPU is available (torch sees none)")
    if name not in ("cpu",) and not name.startswith("cuda"):
        raise ValueError(f"unknown device '{name}' (use auto, cuda or cpu)")
    return torch.device(name)


@dataclass(frozen=True)
class ChunkPlan:
    """Chunk geometry for a stream of `total` samples."""

    total: int
    length: int  # samples per chunk, a multiple of the codec hop
    overlap: int
    count: int

    @property
    def stride(self) -> int:
        return self.length - self.overlap

    @classmethod
    def make(cls, total: int, cfg: PipelineConfig, hop: int) -> ChunkPlan:
        length = max(hop, round(cfg.chunk_s * SAMPLE_RATE / hop) * hop)
        overlap = round(cfg.overlap_s * SAMPLE_RATE / hop) * hop
        if total <= length:  # one chunk, no longer than needed
            return cls(total, max(hop, math.ceil(max(total, 1) / hop) * hop), 0, 1)
        count = 1 + math.ceil((total - length) / (length - overlap))
        return cls(total, length, overlap, count)


def iter_chunks(blocks: Iterable[np.ndarray], plan: ChunkPlan, channels: int
                ) -> Iterator[np.ndarray]:
    """Cut a stream of (Ch, n) blocks into plan.count chunks (Ch, L), zero-padded at the end."""
    buf = np.zeros((channels, 0), np.float32)
    made = 0
    for block in blocks:
        buf = np.concatenate([buf, block.astype(np.float32, copy=False)], axis=1)
        while made < plan.count and buf.shape[1] >= plan.length:
            yield buf[:, : plan.length].copy()
            buf = buf[:, plan.stride :]
            made += 1
    while made < plan.count:
        chunk = np.zeros((channels, plan.length), np.float32)
        n = min(buf.shape[1], plan.length)
        chunk[:, :n] = buf[:, :n]
        yield chunk
        buf = buf[:, plan.stride :]
        made += 1


class OverlapWriter:
    """Joins chunk outputs with a sin^2/cos^2 crossfade (sums to 1) and writes `total` samples."""

    def __init__(self, plan: ChunkPlan, sink: Callable[[np.ndarray], None]):
        self.plan, self.sink = plan, sink
        i = (np.arange(plan.overlap, dtype=np.float64) + 0.5) / max(plan.overlap, 1)
        self.fade_in = np.sin(0.5 * np.pi * i).astype(np.float32) ** 2
        self.tail: np.ndarray | None = None
        self.written = 0

    def _emit(self, x: np.ndarray) -> None:
        n = min(x.shape[1], self.plan.total - self.written)
        if n > 0:
            self.sink(x[:, :n])
            self.written += n

    def add(self, chunk: np.ndarray, last: bool) -> None:
        ov = self.plan.overlap
        if self.tail is not None:
            chunk = chunk.copy()
            chunk[:, :ov] = self.tail * (1 - self.fade_in) + chunk[:, :ov] * self.fade_in
        if last or ov == 0:
            self._emit(chunk)
            self.tail = None
        else:
            self._emit(chunk[:, :-ov])
            self.tail = chunk[:, -ov:]


class Restorer:
    """Runs a model over audio: the object the CLI, the GUI worker and the evaluation share."""

    def __init__(self, model: JaTModel, sampler: SamplerConfig | None = None,
                 pipeline: PipelineConfig | None = None, device: torch.device | str = "cpu"):
        self.device = torch.device(device)
        self.model = model.to(self.device)
        self.sampler = sampler or SamplerConfig()
        self.pipeline = pipeline or PipelineConfig()
        if self.sampler.guidance != 1.0 and model.run.flow.cond_drop_prob == 0:
            raise ValueError("guidance needs a model trained with condition dropout "
                             "(jatsr train --cond-drop); this one was not, use guidance 1")

    def _net(self, z: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        if self.device.type == "cuda":
            with torch.autocast("cuda", dtype=torch.bfloat16):
                return self.model.net(z, t, cond).float()
        return self.model.net(z, t, cond)

    def _run_batch(self, chunks: list[np.ndarray], first_index: int, cutoff_hz: float,
                   sampler: SamplerConfig) -> Iterator[tuple[int, np.ndarray | None]]:
        """Restore a batch of chunks; yields (step, None) per sampler step, then (-1, out)."""
        ch, length = chunks[0].shape
        flat = np.concatenate(chunks)  # (B, L): B = chunks x channels
        wav = torch.from_numpy(flat).to(self.device)[:, None]  # (B, 1, L)
        codec = self.model.codec
        cond = codec.encode(wav)  # (B, C, T)
        seeds = [self.sampler.seed + 16 * (first_index + k) + c
                 for k in range(len(chunks)) for c in range(ch)]
        z = initial_noise(tuple(cond.shape), seeds, self.device)
        prior = None
        if sampler.prior_t > 0:  # warm start from the DSP estimate of the same chunks
            with torch.no_grad():  # on the restoring device, like the sampler
                prior = codec.encode(sbr_batch(wav, [cutoff_hz] * wav.shape[0]))  # (B, C, T)
        for step in iter_sample(self._net, cond, sampler, z, prior):
            z = step.z
            yield step.index, None
        gen = torch.Generator().manual_seed(self.sampler.seed + first_index)
        with torch.no_grad():
            out = codec.decode(z, length=length, keep=wav, cutoff_hz=cutoff_hz,
                               transition_hz=self.pipeline.transition_hz,
                               keep_louder=self.pipeline.keep_louder_input,
                               fill_holes_db=self.pipeline.fill_holes_db,
                               phase_iters=self.pipeline.phase_iters, generator=gen)
        out = out[:, 0].float().cpu().numpy().reshape(len(chunks), ch, length)  # (K, Ch, L)
        yield -1, out

    def sampler_for(self, cutoff_hz: float, flatness: Callable[[], float | None],
                    one_shot: Callable[[], bool]) -> SamplerConfig:
        """The sampler settings for one input: `flatness` and `one_shot` are measured only
        when they decide (`SamplerConfig.wants_flatness`, `wants_one_shot`)."""
        if cutoff_hz >= FULL_BAND_HZ:  # nothing to generate
            return self.sampler.for_input(cutoff_hz)
        value = None
        if self.sampler.wants_flatness(cutoff_hz):
            value = flatness()
            log.info("kept band's top octave: flatness %s", "unknown" if value is None
                     else f"{value:.2f}")
        shot = None
        if self.sampler.wants_one_shot() \
                and self.sampler.for_input(cutoff_hz, value, False).prior_t > 0:
            shot = one_shot()
            log.info("one-shot (struck or plucked sound): %s", "yes" if shot else "no")
        return self.sampler.for_input(cutoff_hz, value, shot)

    def iter_restore(self, blocks: Iterable[np.ndarray], total: int, channels: int,
                     cutoff_hz: float, sink: Callable[[np.ndarray], None],
                     sampler: SamplerConfig | None = None) -> Iterator[Progress]:
        """Restore a stream of 44.1 kHz (Ch, n) blocks of `total` samples into `sink`
        (`sampler`: this input's settings, from `sampler_for`; default: no warm start unless
        the settings need no measurement to allow it)."""
        sampler = sampler or self.sampler.for_input(cutoff_hz)
        hop = self.model.codec.hop
        plan = ChunkPlan.make(total, self.pipeline, hop)
        steps = self.sampler.steps
        if cutoff_hz >= FULL_BAND_HZ:  # nothing to generate: pass the input through
            written = 0
            for block in blocks:
                n = min(block.shape[1], total - written)
                if n > 0:
                    sink(block[:, :n])
                    written += n
            if written < total:
                sink(np.zeros((channels, total - written), np.float32))
            yield Progress(1.0, plan.count, plan.count, steps, steps)
            return
        per_batch = max(1, self.pipeline.batch_size // channels)
        writer = OverlapWriter(plan, sink)
        batch: list[np.ndarray] = []
        done = 0
        for chunk in iter_chunks(blocks, plan, channels):
            batch.append(chunk)
            if len(batch) < per_batch and done + len(batch) < plan.count:
                continue
            for step, out in self._run_batch(batch, done, cutoff_hz, sampler):
                if out is None:
                    frac = (done + len(batch) * (step + 1) / (steps + 1)) / plan.count
                    yield Progress(frac, done, plan.count, step + 1, steps)
                    continue
                for k in range(len(batch)):
                    writer.add(out[k], last=done + k + 1 == plan.count)
            done += len(batch)
            batch = []
            yield Progress(done / plan.count, done, plan.count, steps, steps)

    def iter_array(self, audio: np.ndarray, sample_rate: int, cutoff_hz: float | None = None
                   ) -> Iterator[Progress]:
        """Restore an in-memory (Ch, S) array; the last Progress carries the result audio."""
        start = time.perf_counter()
        if audio.ndim != 2 or audio.shape[1] == 0:
            raise ValueError(f"audio must be (channels, samples) and non-empty, got {audio.shape}")
        if not np.isfinite(audio).all():
            raise ValueError("audio contains NaN or Inf samples")
        x = resample(audio, sample_rate, SAMPLE_RATE)
        cutoff = self._cutoff(cutoff_hz, lambda: detect_cutoff(audio, sample_rate), sample_rate)
        sampler = self.sampler_for(cutoff, lambda: band_flatness(audio, sample_rate, cutoff),
                                   lambda: is_one_shot(audio, sample_rate))
        pieces: list[np.ndarray] = []
        for p in self.iter_restore([x], x.shape[1], x.shape[0], cutoff, pieces.append,
                                   sampler):
            yield p
        out = np.concatenate(pieces, axis=1)
        yield Progress(1.0, p.chunks_total, p.chunks_total, p.steps, p.steps, UpsampleResult(
            None, None, sample_rate, audio.shape[0], audio.shape[1] / sample_rate, cutoff,
            cutoff < FULL_BAND_HZ, time.perf_counter() - start, out,
            warm_start=sampler.prior_t > 0 and cutoff < FULL_BAND_HZ))

    def iter_file(self, in_path: str | os.PathLike[str], out_path: str | os.PathLike[str],
                  fmt: str = "wav", subtype: str = "PCM_24", overwrite: bool = False,
                  cutoff_hz: float | None = None,
                  protect: Iterable[str | os.PathLike[str]] = (),
                  out_rate: int = SAMPLE_RATE, dither: bool = True) -> Iterator[Progress]:
        """Restore a file to a file, streamed; the output appears atomically at the end.

        Closing the generator early (cancel) leaves no output file behind. The output may be
        neither the input nor any file in `protect` (the batch's other inputs), even with
        `overwrite`. `out_rate` (one of `OUTPUT_RATES`) resamples the 44.1 kHz restoration on
        its way to the file, e.g. 48 kHz for video work; the band above 22.05 kHz stays empty
        (a full-band input asked for at its own rate is passed through untouched instead).
        16-bit files are TPDF-dithered unless `dither=False`.
        """
        if out_rate not in OUTPUT_RATES:
            raise ValueError(f"out_rate: must be one of {OUTPUT_RATES}, got {out_rate}")
        start = time.perf_counter()
        in_path, out_path = Path(in_path), Path(out_path)
        info = probe(in_path)
        cutoff = self._cutoff(cutoff_hz, lambda: detect_cutoff_file(in_path), info.sample_rate)
        sampler = self.sampler_for(cutoff, lambda: band_flatness_file(in_path, cutoff),
                                   lambda: is_one_shot_file(in_path))
        # a full-band file asked for at its own rate is passed through as it is, not via 44.1
        work_rate = out_rate if cutoff >= FULL_BAND_HZ and info.sample_rate == out_rate \
            else SAMPLE_RATE
        total = round(info.frames * work_rate / info.sample_rate)
        tags = {**read_tags(in_path), "software": SOFTWARE_TAG}  # title, artist, ... kept
        writer = AtomicWriter(out_path, out_rate, info.channels, format=fmt, subtype=subtype,
                              overwrite=overwrite, inputs=(in_path, *protect),
                              expected_frames=resampled_length(total, work_rate, out_rate),
                              tags=tags, dither=dither)
        last = Progress(1.0, 1, 1, self.sampler.steps, self.sampler.steps)
        to_rate = StreamResampler(work_rate, out_rate, info.channels) \
            if out_rate != work_rate else None

        def sink(block: np.ndarray) -> None:  # (Ch, n) at work_rate
            writer.write(block if to_rate is None else to_rate.process(block))

        with writer, contextlib.closing(
                iter_blocks(in_path, READ_BLOCK_FRAMES, sample_rate=work_rate)) as blocks:
            for last in self.iter_restore(blocks, total, info.channels, cutoff, sink, sampler):
                yield last
            if to_rate is not None:
                writer.write(to_rate.finish())
        if writer.clipped_samples:
            log.warning("%s: %d samples beyond full scale clipped in the %s output",
                        out_path, writer.clipped_samples, subtype)
        yield Progress(1.0, last.chunks_done, last.chunks_total, last.steps, last.steps,
                       UpsampleResult(
                           in_path, out_path, info.sample_rate, info.channels, info.duration_s,
                           cutoff, cutoff < FULL_BAND_HZ, time.perf_counter() - start,
                           clipped_samples=writer.clipped_samples,
                           warm_start=sampler.prior_t > 0 and cutoff < FULL_BAND_HZ))

    @staticmethod
    def _cutoff(override: float | None, detect: Callable[[], float], sample_rate: int) -> float:
        if override is not None:
            return float(min(override, sample_rate / 2))
        cutoff = float(detect())
        log.info("detected cutoff %.0f Hz", cutoff)
        return cutoff
