"""engine.training.device_filter: deferred degradation filters match the CPU ones."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.audio.cutoff import detect_cutoff
from engine.config import SAMPLE_RATE
from engine.training.degrade import (
    CPU_FAMILIES,
    FAMILIES,
    FILTER_WIDTH,
    IIR_FAMILIES,
    MODE_MP3,
    MODE_RAMP,
    MP3_MAX_BANDS,
    DegradeConfig,
    Degrader,
    IIRSpec,
    _brickwall,
    filter_row,
    iir_variants,
    mp3_frames,
)
from engine.training.device_filter import apply_filters, filter_gains, with_cpu_rows
from tests.engine.conftest import synth_clip

EDGE = int(0.05 * SAMPLE_RATE)  # sosfiltfilt extends the crop oddly, this path with zeros
X = synth_clip(3.0, seed=3)  # (S,) float32, rms ~0.19


def _on_device(x: np.ndarray, rows: list[np.ndarray],
               holes: list[np.ndarray | None] | None = None) -> np.ndarray:
    hr = torch.from_numpy(np.stack([x] * len(rows)))[:, None]  # (B, 1, S)
    lr = hr.clone()
    empty = np.zeros((mp3_frames(x.shape[0]), MP3_MAX_BANDS), bool)
    masks = torch.from_numpy(np.stack([empty if h is None else h
                                       for h in (holes or [None] * len(rows))]))
    return apply_filters(hr, lr, torch.from_numpy(np.stack(rows)), masks)[:, 0].numpy()  # (B, S)


@pytest.mark.parametrize(("spec", "cutoff"), [
    (IIRSpec("cheby1", 12, ripple_db=0.5, zero_phase=False), 4000.0),
    (IIRSpec("ellip", 12, ripple_db=1.0, stop_db=40.0, zero_phase=False), 16000.0),
    (IIRSpec("butter", 8), 8000.0),
    (IIRSpec("ellip", 12, ripple_db=0.1, stop_db=80.0), 2750.0),
    (IIRSpec("cheby2", 4, stop_db=60.0), 11025.0),
])
def test_iir_matches_the_cpu_filter(spec: IIRSpec, cutoff: float) -> None:
    degrader, rng = Degrader(), np.random.default_rng(0)
    cpu = degrader.apply(X, spec.family, cutoff, rng, spec=spec)
    deferred = degrader.apply(X, spec.family, cutoff, rng, spec=spec, deferred=True)
    assert deferred.filter is not None and deferred.filter.shape == (FILTER_WIDTH,)
    np.testing.assert_array_equal(deferred.lr, X)  # nothing done yet
    (dev,) = _on_device(X, [deferred.filter])
    if spec.zero_phase:  # the same but for the crop's first and last few milliseconds
        np.testing.assert_allclose(dev[EDGE:-EDGE], cpu.lr[EDGE:-EDGE], atol=2e-5)
    else:  # sosfilt from rest is exactly a linear convolution
        np.testing.assert_allclose(dev, cpu.lr, atol=5e-5)


@pytest.mark.parametrize("width", [0.0, 320.0])
def test_brickwall_matches_the_cpu_ramp(width: float) -> None:
    (dev,) = _on_device(X, [filter_row(MODE_RAMP, 8000.0, width)])
    cpu = _brickwall(X, 8000.0, width)  # circular over the crop; this path is linear
    np.testing.assert_allclose(dev[EDGE:-EDGE], cpu[EDGE:-EDGE], atol=2e-3 if width == 0 else 1e-5)


@pytest.mark.parametrize(("cutoff", "holes"), [(4000.0, (0.0, 0.0)), (11025.0, (0.2, 0.3)),
                                                 (16000.0, (0.3, 0.3)), (2750.0, (0.1, 0.2))])
def test_mp3_matches_the_cpu_one(cutoff: float, holes: tuple[float, float]) -> None:
    degrader = Degrader(DegradeConfig(mp3_hole_prob=holes))
    cpu = degrader.apply(X, "mp3", cutoff, np.random.default_rng(5))
    deferred = degrader.apply(X, "mp3", cutoff, np.random.default_rng(5), deferred=True)
    assert deferred.holes is not None and deferred.holes.shape == (mp3_frames(X.shape[0]),
                                                                   MP3_MAX_BANDS)
    assert deferred.holes.any() == (holes[1] > 0)
    (dev,) = _on_device(X, [deferred.filter], [deferred.holes])
    np.testing.assert_allclose(dev, cpu.lr, atol=2e-5)  # the same STFT, holes and ramp


@pytest.mark.parametrize("family", [f for f in FAMILIES if f not in CPU_FAMILIES])
def test_deferred_cutoff_is_where_it_was_asked(family: str) -> None:
    degrader, rng = Degrader(), np.random.default_rng(1)
    specs = iir_variants(degrader.cfg, family) if family in IIR_FAMILIES else [None] * 4
    outs = [degrader.apply(X, family, c, rng, spec=s, deferred=True)
            for s in specs for c in (4000.0, 13300.0)]
    restored = _on_device(X, [o.filter for o in outs], [o.holes for o in outs])
    misses = [(o.detail, o.cutoff_hz, d) for o, y in zip(outs, restored, strict=True)
              if abs((d := detect_cutoff(y, SAMPLE_RATE)) - o.cutoff_hz) > max(0.05 * o.cutoff_hz,
                                                                                300.0)]
    assert not misses, misses


def test_cpu_rows_pass_through_and_draws_match() -> None:
    degrader = Degrader()
    a, b = np.random.default_rng(7), np.random.default_rng(7)
    for _ in range(40):  # deferring changes no draw: the data stream (and a resume) is the same
        plain, deferred = degrader(X, a), degrader(X, b, deferred=True)
        assert (plain.kind, plain.cutoff_hz, plain.detail) == (
            deferred.kind, deferred.cutoff_hz, deferred.detail)
        if deferred.filter is None:  # resampling: done on the CPU as before
            np.testing.assert_array_equal(deferred.lr, plain.lr)
    assert a.random() == b.random()
    lr = np.zeros_like(X)
    out = apply_filters(torch.from_numpy(X)[None, None], torch.from_numpy(lr)[None, None],
                        torch.from_numpy(filter_row(0))[None])  # mode 0 keeps the given LR
    assert torch.equal(out, torch.zeros(1, 1, X.shape[0]))
    two = torch.from_numpy(np.stack([filter_row(0), filter_row(9)]))
    hr2 = torch.from_numpy(np.stack([X, X]))[:, None]
    lr2 = torch.from_numpy(np.stack([lr, lr]))[:, None]
    with pytest.raises(ValueError, match="row 1 has no filter mode 9"):  # cannot pass as audio
        apply_filters(hr2, lr2, two)
    with pytest.raises(ValueError, match="holes: 1 MP3-like rows"):
        apply_filters(torch.from_numpy(X)[None, None], torch.from_numpy(lr)[None, None],
                      torch.from_numpy(filter_row(MODE_MP3, 8000.0))[None])
    with pytest.raises(ValueError, match="filters"):
        apply_filters(torch.zeros(1, 1, 8), torch.zeros(1, 1, 8), torch.zeros(1, 5))
    with pytest.raises(ValueError, match="filters: expected"):  # one row for each crop
        apply_filters(hr2, lr2, two[:1])


def test_only_the_rows_a_path_needs_reach_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import engine.training.device_filter as device_filter

    seen: dict[str, int] = {}
    gains, mp3 = device_filter.filter_gains, device_filter.mp3_like
    monkeypatch.setattr(device_filter, "filter_gains", lambda f, n, **kw: (
        seen.__setitem__("fft", f.shape[0]), gains(f, n, **kw))[1])
    monkeypatch.setattr(device_filter, "mp3_like", lambda hr, f, h: (
        seen.__setitem__("mp3", hr.shape[0]), mp3(hr, f, h))[1])
    rows = [filter_row(0), filter_row(MODE_RAMP, 8000.0, 0.0), filter_row(MODE_MP3, 8000.0, 300.0),
            filter_row(0)]
    hr = torch.from_numpy(np.stack([X] * 4))[:, None]
    lr = torch.zeros_like(hr)
    holes = torch.zeros(4, mp3_frames(X.shape[0]), MP3_MAX_BANDS, dtype=torch.bool)
    out = apply_filters(hr, lr, torch.from_numpy(np.stack(rows)), holes)
    assert seen == {"fft": 1, "mp3": 1}
    assert torch.equal(out[[0, 3]], lr[[0, 3]]) and out[[1, 2]].abs().amax() > 0.05
    assert lr.abs().amax() == 0  # the given LR batch is not written to
    seen.clear()  # nothing to filter: no path runs, the LR batch comes back as it was
    assert apply_filters(hr, lr, torch.from_numpy(np.stack([filter_row(0)] * 4)), None) is lr
    assert seen == {}


def test_a_mixed_batch_filters_each_row_its_own_way() -> None:
    degrader, rng = Degrader(), np.random.default_rng(11)
    outs = [degrader(X, rng, deferred=True) for _ in range(24)]  # every family, CPU rows too
    assert {o.kind for o in outs} >= {"resample", "mp3", "brickwall"}
    rows = [o.filter if o.filter is not None else filter_row(0) for o in outs]
    hr = torch.from_numpy(np.stack([X] * len(outs)))[:, None]
    lr = torch.from_numpy(np.stack([o.lr for o in outs]))[:, None]
    empty = np.zeros((mp3_frames(X.shape[0]), MP3_MAX_BANDS), bool)
    holes = torch.from_numpy(np.stack([o.holes if o.holes is not None else empty for o in outs]))
    got = apply_filters(hr, lr, torch.from_numpy(np.stack(rows)), holes)[:, 0].numpy()
    assert np.isfinite(got).all()
    for o, y in zip(outs, got, strict=True):
        if o.filter is None:  # resampled on the CPU: kept as it came
            np.testing.assert_array_equal(y, o.lr)
        else:
            (alone,) = _on_device(X, [o.filter], [o.holes])
            np.testing.assert_allclose(y, alone, atol=1e-6)


def test_with_cpu_rows_puts_the_cpu_degraded_rows_in_place() -> None:
    g = torch.Generator().manual_seed(0)
    hr = torch.randn(5, 1, 64, generator=g)
    lr_rows = torch.randn(2, 1, 64, generator=g)
    out = with_cpu_rows(hr, lr_rows, torch.tensor([1, 4]))
    assert torch.equal(out[1], lr_rows[0]) and torch.equal(out[4], lr_rows[1])
    assert torch.equal(out[[0, 2, 3]], hr[[0, 2, 3]])
    assert torch.equal(with_cpu_rows(hr, hr[:0], torch.tensor([], dtype=torch.long)), hr)
    with pytest.raises(ValueError, match="lr_rows"):
        with_cpu_rows(hr, lr_rows, torch.tensor([1]))


def _mixed_rows() -> torch.Tensor:
    degrader, rng = Degrader(), np.random.default_rng(11)
    outs = [degrader(X, rng, deferred=True) for _ in range(24)]
    assert {o.kind for o in outs} >= {"resample", "mp3", "brickwall", *IIR_FAMILIES}
    return torch.from_numpy(np.stack([o.filter if o.filter is not None else filter_row(0)
                                      for o in outs]))


def test_compiled_gains_equal_the_eager_ones(monkeypatch) -> None:
    from engine.training import device_filter

    monkeypatch.setattr(device_filter, "_compiled", {})
    rows = _mixed_rows()
    eager = filter_gains(rows, 4096, compiled=False)
    assert eager.shape == (24, 2049) and eager.dtype == torch.complex64
    assert torch.isfinite(torch.view_as_real(eager)).all()
    compiled = filter_gains(rows, 4096, compiled=True)
    assert device_filter._compiled["fn"] is not None  # it did compile
    torch.testing.assert_close(compiled, eager, rtol=1e-6, atol=1e-7)


def test_a_failing_compiler_falls_back_to_the_eager_gains(monkeypatch, caplog) -> None:
    from engine.training import device_filter

    def broken(fn, **kwargs):
        def run(*args, **kwargs):
            raise RuntimeError("no triton here\nsecond line")
        return run

    monkeypatch.setattr(device_filter, "_compiled", {})
    monkeypatch.setattr(device_filter.torch, "compile", broken)
    rows = _mixed_rows()
    with caplog.at_level("WARNING", logger="engine.training.device_filter"):
        got = filter_gains(rows, 2048, compiled=True)
    assert torch.equal(got, filter_gains(rows, 2048, compiled=False))
    assert device_filter._compiled["fn"] is None  # not tried again
    assert "torch.compile failed (no triton here)" in caplog.text
    assert torch.equal(filter_gains(rows, 2048, compiled=True), got)
