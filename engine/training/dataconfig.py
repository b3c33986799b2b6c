"""DataConfig: where the training audio is and how crops are cut, levelled, split and degraded."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from engine.training.degrade import DegradeConfig

# where the audio is and how it is split: not part of how crops are made (a model's recipe)
_NOT_RECIPE = frozenset({"folders", "val_folders", "cache_dir", "val_fraction", "val_files",
                         "seed"})


@dataclass(frozen=True)
class DataConfig:
    """Where the audio is and how crops are cut, levelled, split and degraded."""

    folders: tuple[str, ...]  # searched recursively (symlinks followed)
    crop_s: float = 6.0  # crop length, rounded to whole hops of 512 samples
    min_bandwidth_hz: float = 18000.0  # measured content edge below this: not a target
    val_fraction: float = 0.05  # share of kept files held out (at least 1 of >= 2 files) ...
    val_files: int | None = None  # ... or exactly this many
    val_folders: tuple[str, ...] = ()  # held-out folders instead of splitting `folders`
    cache_dir: str | None = None  # None: a temporary dir (the trainer passes <out>/cache)
    target_rms_db: float = -20.0  # active RMS after normalisation, dBFS
    gain_db: tuple[float, float] = (-6.0, 6.0)  # then a uniform random gain
    mixdown_prob: float = 0.3  # else one random channel
    # share of crops given a random spectral tilt (flat below a random pivot, a constant slope
    # in dB/octave above it) before levelling: brighter and darker takes of the same material,
    # so the network learns to follow the kept band's slope instead of one mean brightness
    tilt_prob: float = 0.0
    tilt_db_per_octave: tuple[float, float] = (-4.0, 4.0)
    tilt_pivot_hz: tuple[float, float] = (500.0, 2000.0)
    # share of crops from each top-level folder (e.g. speech/, music/) ~ its duration ** this:
    # 1 draws files by duration alone, 0 gives every folder the same share, 0.5 between
    group_exponent: float = 1.0
    # target STFT bins below this magnitude in active frames are encoder holes (a lossy encoder
    # zeroed them; engine.training.holes) and carry no loss; 1e-4 is the LSD's clamp, 0 scores
    # every bin
    hole_floor: float = 0.0
    seed: int = 0  # validation split
    degrade: DegradeConfig = field(default_factory=DegradeConfig)

    def recipe(self) -> dict[str, Any]:
        """How crops are made, without where the files are (a model file's provenance)."""
        return {k: v for k, v in asdict(self).items() if k not in _NOT_RECIPE}

    @classmethod
    def continuing(cls, recipe: Mapping[str, Any] | None, folders: tuple[str, ...],
                   **given: Any) -> DataConfig:
        """Crops made as `recipe` says (a base model's `training.recipe`: a fine-tune goes on
        the way its base was trained, e.g. with its spectral tilt), except for the fields in
        `given` (None: not given); the recipe's unknown and where-the-files-are keys are
        ignored."""
        known = {f.name for f in fields(cls)} - _NOT_RECIPE
        values = {k: v for k, v in (recipe or {}).items() if k in known}
        values.update({k: v for k, v in given.items() if v is not None})
        return cls(folders=tuple(folders), **values)

    def __post_init__(self) -> None:
        for f in fields(self):  # lists from JSON/TOML become tuples: hashable, comparable
            if isinstance(getattr(self, f.name), list):
                object.__setattr__(self, f.name, tuple(getattr(self, f.name)))
        if isinstance(self.degrade, dict):
            object.__setattr__(self, "degrade", DegradeConfig(**self.degrade))
        lo, hi = self.gain_db if len(self.gain_db) == 2 else (1, 0)
        tlo, thi = self.tilt_db_per_octave if len(self.tilt_db_per_octave) == 2 else (1, 0)
        plo, phi = self.tilt_pivot_hz if len(self.tilt_pivot_hz) == 2 else (1, 0)
        for ok, name, msg in [
            (isinstance(self.folders, tuple) and all(isinstance(f, str) for f in self.folders),
             "folders", "must be a tuple of paths (str)"),
            (0.5 <= self.crop_s <= 60, "crop_s", "must be in [0.5, 60] s"),
            (0 <= self.min_bandwidth_hz <= 22050, "min_bandwidth_hz", "must be in [0, 22050]"),
            (0 <= self.val_fraction < 1, "val_fraction", "must be in [0, 1)"),
            (self.val_files is None or self.val_files >= 0, "val_files", "must be >= 0"),
            (-60 <= self.target_rms_db <= -3, "target_rms_db", "must be in [-60, -3] dBFS"),
            (-40 <= lo <= hi <= 40, "gain_db", "must be (low, high), -40 <= low <= high <= 40"),
            (0 <= self.mixdown_prob <= 1, "mixdown_prob", "must be in [0, 1]"),
            (0 <= self.tilt_prob <= 1, "tilt_prob", "must be in [0, 1]"),
            (-12 <= tlo <= thi <= 12, "tilt_db_per_octave",
             "must be (low, high), -12 <= low <= high <= 12 dB/octave"),
            (20 <= plo <= phi <= 8000, "tilt_pivot_hz",
             "must be (low, high), 20 <= low <= high <= 8000 Hz"),
            (0 <= self.group_exponent <= 1, "group_exponent", "must be in [0, 1]"),
            (0 <= self.hole_floor < 1, "hole_floor", "must be in [0, 1) (STFT magnitude)"),
            (isinstance(self.degrade, DegradeConfig), "degrade", "must be a DegradeConfig"),
        ]:
            if not ok:
                raise ValueError(f"{name}: {msg}")
