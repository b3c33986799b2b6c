"""JaT-SR engine: the JaT V2 flow-matching DiT, codecs, sampler and upsampling pipeline.

This is the public API the app uses; nothing here imports Qt. Names are imported lazily so that
`import engine` stays cheap (torch, soundfile and the codecs load on first use).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    # configuration
    "ModelConfig": "engine.config",
    "FlowConfig": "engine.config",
    "SamplerConfig": "engine.config",
    "PipelineConfig": "engine.config",
    "RunConfig": "engine.config",
    "SAMPLE_RATE": "engine.config",
    "WARM_START_T": "engine.config",
    "HOLE_DEPTH_DB": "engine.config",
    "PRESETS": "engine.model.dit",
    "DiT": "engine.model.dit",
    "param_counts": "engine.model.dit",
    # objective and sampler
    "FlowObjective": "engine.flow",
    "iter_sample": "engine.sampling",
    "sample": "engine.sampling",
    "SampleStep": "engine.sampling",
    # codecs and model files
    "build_codec": "engine.codecs",
    "Codec": "engine.codecs",
    "CodecError": "engine.codecs",
    "MissingWeightsError": "engine.codecs",
    "JaTModel": "engine.modelfile",
    "ModelFileError": "engine.modelfile",
    "load_model": "engine.modelfile",
    "save_model": "engine.modelfile",
    "read_model_config": "engine.modelfile",
    "resolve_model_path": "engine.modelfile",
    "default_model_path": "engine.modelfile",
    # audio
    "AudioInputError": "engine.audio.io",
    "AudioInfo": "engine.audio.io",
    "probe": "engine.audio.io",
    "load": "engine.audio.io",
    "iter_blocks": "engine.audio.io",
    "resampled_length": "engine.audio.io",
    "output_path": "engine.audio.io",
    "plan_outputs": "engine.audio.io",
    "expand_paths": "engine.audio.files",
    "is_audio_name": "engine.audio.files",
    "detect_cutoff": "engine.audio.cutoff",
    "detect_cutoff_file": "engine.audio.cutoff",
    "lsd": "engine.metrics",
    "lsd_bands": "engine.metrics",
    # training
    "TrainConfig": "engine.config",
    "FINETUNE": "engine.config",
    "DataConfig": "engine.training.dataconfig",
    "training_recipe": "engine.modelfile",
    "Trainer": "engine.training.loop",
    "TrainEvent": "engine.training.loop",
    "NonFiniteLossError": "engine.training.loop",
    "TrainingOutOfMemoryError": "engine.training.loop",
    "export_checkpoint": "engine.training.export",
    # system
    "keep_freed_memory": "engine.allocator",
    "system_info": "engine.system",
    "Gpu": "engine.system",
    "device_name": "engine.system",
    # pipeline
    "Restorer": "engine.pipeline",
    "Progress": "engine.pipeline",
    "UpsampleResult": "engine.pipeline",
    "resolve_device": "engine.pipeline",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value
