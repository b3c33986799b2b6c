"""Frozen configuration dataclasses: one per concern, validated on construction.

Every switch the V2 design note compares is a field here (KV heads, positions, bottleneck width,
patch length, width/depth, t-sampling, loss form), so each claim can be measured.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

SAMPLE_RATE = 44100  # every codec works at 44.1 kHz
OUTPUT_RATES = (44100, 48000, 88200, 96000)  # files may be written at these (resampled)
HOP_SAMPLES = 512  # latent frame hop: 86.13 frames/s
# crossfade width from the kept band to the generated one, above the cutoff; the input is
# near-silent there, so a wide fade only dims the generated band's start. small-v3, 24 files
# (docs/training_log.md): LSD 8k / 16k / 22.05k / lp16k at 300 Hz 1.403 / 1.118 / 1.011 / 0.937,
# at 100 Hz 1.392 / 1.110 / 1.009 / 0.933 (kept band vs input <= 0.003); 0 Hz is ~0.002 lower
# still, but the hard switch leaks into the kept band (0.011-0.024)
TRANSITION_HZ = 100.0
LATENT_CHANNELS = 1024  # C, for the STFT codec and DAC alike

Positions = Literal["rope", "learned"]
TSampling = Literal["ushaped", "uniform", "logit_normal"]
LossForm = Literal["v", "x"]
Solver = Literal["euler", "heun"]
CompileMode = Literal["default", "reduce-overhead", "max-autotune"]


def _check(cond: bool, name: str, msg: str) -> None:
    if not cond:
        raise ValueError(f"{name}: {msg}")


def from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Build a config dataclass from a dict, ignoring unknown keys (older/newer model files)."""
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class ModelConfig:
    """The DiT that maps (z_t, t, cond) to the predicted clean latent."""

    latent_channels: int = LATENT_CHANNELS  # C: codec latent channels
    patch_len: int = 4  # latent frames per token
    bottleneck: int = 512  # patch-embed bottleneck width (8192 -> bottleneck -> width)
    width: int = 1024  # D
    depth: int = 16  # DiT blocks
    heads: int = 16  # H: query heads
    kv_heads: int = 4  # Hkv: key/value heads (== heads is MHA)
    mlp_ratio: float = 4.0
    positions: Positions = "rope"
    max_tokens: int = 2048  # learned positions only: longest token sequence
    rope_theta: float = 10000.0
    time_freq_dim: int = 512  # sinusoidal time-embedding size

    def __post_init__(self) -> None:
        _check(self.latent_channels > 0, "latent_channels", "must be positive")
        _check(self.patch_len >= 1, "patch_len", "must be >= 1")
        _check(self.bottleneck >= 1, "bottleneck", "must be >= 1")
        _check(self.width % self.heads == 0, "width", f"{self.width} not divisible by heads")
        _check(self.heads % self.kv_heads == 0, "kv_heads", "must divide heads")
        _check((self.width // self.heads) % 2 == 0, "heads", "head dim must be even for RoPE")
        _check(self.positions in ("rope", "learned"), "positions", "must be 'rope' or 'learned'")
        _check(self.depth >= 1, "depth", "must be >= 1")
        _check(self.mlp_ratio > 0, "mlp_ratio", "must be positive")
        _check(self.time_freq_dim % 2 == 0, "time_freq_dim", "must be even")

    @property
    def head_dim(self) -> int:
        return self.width // self.heads


WARM_START_T = 0.85  # SamplerConfig.prior_t of a warm start (the app's option)
HOLE_DEPTH_DB = 20.0  # PipelineConfig.fill_holes_db when hole filling is switched on


@dataclass(frozen=True)
class FlowConfig:
    """Flow-matching objective: z_t = t*x + (1-t)*eps, t=1 clean, the net predicts x."""

    t_sampling: TSampling = "ushaped"
    ushaped_a: float = 4.0  # arXiv 2405.20320, density lowest at t = 0.5
    logit_normal_mean: float = -0.8
    logit_normal_std: float = 0.8
    loss: LossForm = "v"  # "v": JiT velocity loss; "x": plain x-MSE
    v_clamp: float = 0.05  # v = (x - z_t) / max(1 - t, v_clamp)
    cond_drop_prob: float = 0.0  # classifier-free guidance: drop the LR condition in training
    # Share of items trained on the warm start's path instead (`SamplerConfig.prior_t`): from
    # z = bridge_t * prior + (1 - bridge_t) * eps, with the prior the SBR estimate of the item's
    # LR input, straight to x, at t uniform in [bridge_t, 1) -- the states the sampler visits
    # when it starts warm, which plain training never shows the network. 0: off.
    bridge_prob: float = 0.0
    bridge_t: float = WARM_START_T

    def __post_init__(self) -> None:
        _check(self.t_sampling in ("ushaped", "uniform", "logit_normal"), "t_sampling", "unknown")
        _check(self.loss in ("v", "x"), "loss", "must be 'v' or 'x'")
        _check(self.ushaped_a > 0, "ushaped_a", "must be positive")
        _check(0 < self.v_clamp < 1, "v_clamp", "must be in (0, 1)")
        _check(0 <= self.cond_drop_prob < 1, "cond_drop_prob", "must be in [0, 1)")
        _check(0 <= self.bridge_prob <= 1, "bridge_prob", "must be in [0, 1]")
        _check(0 < self.bridge_t < 1, "bridge_t", "must be in (0, 1)")


@dataclass(frozen=True)
class SamplerConfig:
    """ODE sampler from noise (t=0) to data (t=1)."""

    # LSD rewards the conditional mean, which a short x-prediction path approaches: with
    # jatsr-medium-v7 from 8 kHz inputs (from noise) 1 / 2 / 4 / 8 / 12 steps score 1.257 /
    # 1.271 / 1.296 / 1.326 / 1.346 on the validation split, warm-started inputs the same at 2,
    # 4 and 8; 2 steps are better or equal on three more sets, 30 % faster, and measure as much
    # texture in the generated band (docs/training_log.md, fifteenth session)
    steps: int = 2
    solver: Solver = "euler"
    guidance: float = 1.0  # classifier-free guidance weight; 1.0 = conditional only
    seed: int = 0
    v_clamp: float = 0.05  # same clamp as the objective: v = (x_hat - z) / max(1 - t, v_clamp)
    # > 0: warm start. Integrate from t = prior_t, where z = prior_t * prior + (1 - prior_t) *
    # noise with the prior a DSP estimate (the pipeline's: spectral band replication), not
    # from pure noise at t = 0 (SDEdit, Meng et al. 2022). Same steps, over a shorter path.
    # Which inputs start warm (docs/training_log.md, eleventh and fourteenth sessions): with
    # jatsr-medium-v7 the warm start gains on inputs cut off at 7-16 kHz on three sets (speech,
    # music, effects) except one-shot drum and guitar samples, and loses below ~4 kHz except on
    # noise-like inputs. 0: always from noise.
    prior_t: float = WARM_START_T
    # Inputs cut off at or below this start warm only when their kept band's top octave is at
    # least `prior_min_flatness` noise-like (`engine.audio.flatness.band_flatness`; 0: all of
    # them); those cut off above it, all of them. 16 kHz files (cut at ~7.3-8 kHz) are above,
    # 8 kHz ones (~3.8 kHz) below.
    prior_flatness_below_hz: float = 6000.0
    prior_min_flatness: float = 0.3
    # One-shots (`engine.audio.oneshot`: a struck or plucked sound that starts at its loudest
    # and dies away) always start from noise.
    prior_skip_one_shots: bool = True

    def __post_init__(self) -> None:
        _check(self.steps >= 1, "steps", "must be >= 1")
        _check(0 <= self.prior_flatness_below_hz <= 22050, "prior_flatness_below_hz",
               "must be in [0, 22050] Hz")
        _check(self.solver in ("euler", "heun"), "solver", "must be 'euler' or 'heun'")
        _check(self.guidance >= 0, "guidance", "must be >= 0")
        _check(0 <= self.prior_t < 1, "prior_t", "must be in [0, 1)")
        _check(0 <= self.prior_min_flatness <= 1, "prior_min_flatness", "must be in [0, 1]")

    def wants_flatness(self, cutoff_hz: float) -> bool:
        """Whether `for_input` needs the input's flatness to decide (measure it only then)."""
        return self.prior_t > 0 and self.prior_min_flatness > 0 \
            and cutoff_hz <= self.prior_flatness_below_hz

    def wants_one_shot(self) -> bool:
        """Whether `for_input` needs to know if the input is a one-shot."""
        return self.prior_t > 0 and self.prior_skip_one_shots

    def for_input(self, cutoff_hz: float, flatness: float | None = None,
                  one_shot: bool | None = None) -> SamplerConfig:
        """The settings for an input band-limited at `cutoff_hz` whose kept band has
        `flatness` and which `one_shot` is or is not (None: unknown, which counts against a
        warm start where the settings need to know)."""
        if self.prior_t <= 0:
            return self
        if (self.wants_one_shot() and (one_shot is None or one_shot)) or (
                self.wants_flatness(cutoff_hz)
                and (flatness is None or flatness < self.prior_min_flatness)):
            return dataclasses.replace(self, prior_t=0.0)
        return self

    def describe_start(self) -> str:
        """Where sampling starts, in words (eval and benchmark reports)."""
        if self.prior_t <= 0:
            return "from noise"
        text = f"warm start from SBR at t = {self.prior_t:g}"
        gated = self.prior_min_flatness > 0 and self.prior_flatness_below_hz > 0
        if gated:
            text += (f" (inputs cut off at or below {self.prior_flatness_below_hz:g} Hz only if "
                     f"their kept band's top octave has a spectral flatness of at least "
                     f"{self.prior_min_flatness:g})")
        if self.prior_skip_one_shots:
            text += ", except one-shots (a struck or plucked sound dying away)"
        return text + ("; else from noise" if gated or self.prior_skip_one_shots
                       else " for every input")

    def timesteps(self) -> list[float]:
        """Uniform grid prior_t = t_0 < ... < t_steps = 1."""
        t0 = self.prior_t
        return [t0 + (1 - t0) * i / self.steps for i in range(self.steps + 1)]


@dataclass(frozen=True)
class PipelineConfig:
    """How a file is cut into chunks and how the kept band joins the generated one."""

    chunk_s: float = 6.0  # model chunk length (seconds at 44.1 kHz)
    overlap_s: float = 0.5  # crossfade between consecutive chunks
    batch_size: int = 8  # chunks (x channels) per model call
    cutoff_hz: float | None = None  # None: detect from the input's spectrum
    transition_hz: float = TRANSITION_HZ  # crossfade width between kept and generated band
    # above the cutoff, keep the input wherever it is louder than the generated band (content
    # a lossy encoder left above its long-term edge in some frames); False: generate it all
    keep_louder_input: bool = True
    # below the cutoff, fill the input's encoder holes (kept bins this many dB under the
    # network's magnitude: `codecs.bands.encoder_holes`) with the generated band; None: the kept
    # band stays untouched. Real MP3s gain (docs/training_log.md, eighteenth session, validation
    # split at 20 dB: 128 / 64 kbit/s LSD 0.994 / 1.505 -> 0.981 / 1.476), clean inputs lose
    # (16 kHz 1.069 -> 1.072, and the kept band is no longer the input's): off by default
    fill_holes_db: float | None = None
    # Griffin-Lim iterations on the generated band (STFT codec): over half the CPU time of a
    # restore at 32. small-v3, 24 files (docs/training_log.md): LSD 1.114 / 1.117 / 1.122 and
    # RTF 0.213 / 0.157 / 0.136 at 32 / 16 / 8
    phase_iters: int = 16

    def __post_init__(self) -> None:
        _check(self.chunk_s >= 0.5, "chunk_s", "must be >= 0.5 s")
        _check(0 <= self.overlap_s < self.chunk_s / 2, "overlap_s", "must be < chunk_s / 2")
        _check(self.batch_size >= 1, "batch_size", "must be >= 1")
        _check(self.cutoff_hz is None or 0 < self.cutoff_hz < SAMPLE_RATE / 2, "cutoff_hz",
               "must be in (0, 22050)")
        _check(self.transition_hz >= 0, "transition_hz", "must be >= 0")
        _check(self.phase_iters >= 0, "phase_iters", "must be >= 0")
        _check(self.fill_holes_db is None or self.fill_holes_db > 0, "fill_holes_db",
               "must be > 0 dB (None: off)")


@dataclass(frozen=True)
class RunConfig:
    """Everything a trained model was made with; stored in the model file's JSON."""

    model: ModelConfig = field(default_factory=ModelConfig)
    flow: FlowConfig = field(default_factory=FlowConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        return cls(model=from_dict(ModelConfig, data.get("model", {})),
                   flow=from_dict(FlowConfig, data.get("flow", {})))


Precision = Literal["bf16", "bf16-master", "fp32"]
DegradeOn = Literal["auto", "workers", "device"]
CompileDDP = Literal["outer", "inner"]


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and bookkeeping of a training run (AdamW, lr 1e-4, clip 1.0 per the spec)."""

    preset: str = "small"  # architecture when not fine-tuning a model file
    steps: int = 100_000
    batch_size: int = 32  # per optimiser step, over all processes and accumulation
    grad_accum: int = 1
    lr: float = 1e-4
    warmup_steps: int = 1000
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.99)
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    # update the EMA every k-th step with decay^k (the trainer folds pending steps in before it
    # evaluates or exports); v2 on an H100: 0.3 ms a step at 4 against 1.3 ms at 1
    ema_every: int = 4
    # "bf16": autocast on CUDA (the CPU runs fp32); "bf16-master": forward and backward on a
    # bf16 copy of the weights, fp32 master weights for the update (engine.training.flat_master;
    # v2 on 4 x H200: +1 % steps/s on one GPU, +7-8 % a GPU on two and four); "fp32": no autocast
    precision: Precision = "bf16"
    compile: bool = False  # torch.compile the network
    # "reduce-overhead": CUDA graphs, the fastest on 1, 2 and 4 GPUs (v2, batch 32, H200:
    # 49.8 steps/s on one; 41.3 / 40.2 a GPU on 2 / 4 with "outer" and 256 MB buckets)
    compile_mode: CompileMode = "default"
    # with several processes: "outer" compiles DDP(net) (Dynamo splits the graph at DDP's
    # buckets so all-reduce overlaps backward), "inner" wraps compile(net) in DDP (one graph,
    # Dynamo's per-bucket split off; gradients all-reduced after the compiled backward)
    compile_ddp: CompileDDP = "outer"
    # DDP gradient bucket size in MB; None: 256 when compiled (v2: 1.16 GB of gradients in ~5
    # buckets; at DDP's 25 MB Dynamo cut the network into 34 pieces and compiled DDP ran at eager
    # speed, 9.3-9.8 steps/s a GPU on H100s; at 256 MB on 4 x H200 24.5, 40.2 with CUDA graphs),
    # DDP's own 25 MB in eager mode (small buckets start the all-reduce early in the backward)
    ddp_bucket_mb: float | None = None
    # DataLoader workers per process; None: `batches.auto_workers` (the machine's usable cores
    # shared among its processes, one kept for each; at most 16 on CUDA, 2 on the CPU)
    num_workers: int | None = None
    # where IIR / brick-wall / MP3-like degradations run: "workers" (CPU), "device" (batched on
    # the training device, engine.training.device_filter), "auto": the device when it is CUDA
    degrade_on: DegradeOn = "auto"
    log_every: int = 50
    val_every: int = 1000
    val_steps: int = 16  # sampler steps during validation
    ckpt_every: int = 1000
    keep_ckpts: int = 3  # numbered checkpoints kept besides last and best
    seed: int = 0
    stats_crops: int = 64  # training crops measured for the codec's per-bin statistics
    tensorboard: bool = False  # also log to TensorBoard (needs the tensorboard package)
    max_minutes: float | None = None  # stop cleanly (checkpoint) after this much wall time
    # with max_minutes: end the cosine decay when the time is up, planning the step count from
    # the measured step rate and validation time (re-planned at every log; `steps` caps it)
    fit_schedule: bool = False

    def __post_init__(self) -> None:
        _check(self.steps >= 1, "steps", "must be >= 1")
        _check(self.batch_size >= 1, "batch_size", "must be >= 1")
        _check(self.grad_accum >= 1, "grad_accum", "must be >= 1")
        _check(self.lr > 0, "lr", "must be positive")
        _check(self.warmup_steps >= 0, "warmup_steps", "must be >= 0")
        _check(0 <= self.ema_decay < 1, "ema_decay", "must be in [0, 1)")
        _check(self.ema_every >= 1, "ema_every", "must be >= 1")
        _check(self.compile_mode in ("default", "reduce-overhead", "max-autotune"),
               "compile_mode", "must be 'default', 'reduce-overhead' or 'max-autotune'")
        _check(self.compile_ddp in ("outer", "inner"), "compile_ddp",
               "must be 'outer' or 'inner'")
        _check(self.ddp_bucket_mb is None or self.ddp_bucket_mb > 0, "ddp_bucket_mb",
               "must be positive")
        _check(self.grad_clip > 0, "grad_clip", "must be positive")
        _check(self.precision in ("bf16", "bf16-master", "fp32"), "precision",
               "must be 'bf16', 'bf16-master' or 'fp32'")
        _check(self.num_workers is None or self.num_workers >= 0, "num_workers",
               "must be >= 0 (or None: auto)")
        _check(self.degrade_on in ("auto", "workers", "device"), "degrade_on",
               "must be 'auto', 'workers' or 'device'")
        _check(min(self.log_every, self.val_every, self.ckpt_every) >= 1, "log_every",
               "log/val/ckpt intervals must be >= 1")
        _check(self.keep_ckpts >= 0, "keep_ckpts", "must be >= 0")
        _check(self.max_minutes is None or self.max_minutes > 0, "max_minutes",
               "must be positive")
        _check(not self.fit_schedule or self.max_minutes is not None, "fit_schedule",
               "needs max_minutes (the time the schedule is fitted to)")


# Fine-tuning a shipped or user model: lower LR, short warm-up.
FINETUNE = TrainConfig(lr=2e-5, warmup_steps=100, steps=2000, batch_size=8, val_every=250,
                       ckpt_every=250)
