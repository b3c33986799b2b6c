"""Model files: int8 storage (rows + scales), its round trip and its failure modes."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from engine.model.dit import PRESETS, DiT, param_counts
from engine.modelfile import (
    QSCALE,
    JaTModel,
    ModelFileError,
    dequantize_rows,
    load_model,
    model_paths,
    quantize_rows,
    read_model_config,
    save_model,
)


def test_quantize_rows_error_is_at_most_half_a_step_per_row():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(48, 3, 5, generator=g) * torch.logspace(-4, 1, 48)[:, None, None]
    w[7] = 0.0  # an all-zero row
    q, scale = quantize_rows(w)
    assert q.dtype == torch.int8 and q.shape == w.shape and scale.shape == (48,)
    assert int(q.abs().max()) == 127
    back = dequantize_rows(q, scale)
    err = (back - w).abs().reshape(48, -1).amax(dim=1)
    assert torch.all(err <= scale * 0.5 + 1e-12)
    assert torch.all(back[7] == 0)
    # every row uses its own range: the smallest row is as precise, relatively, as the largest
    rel = err / w.abs().reshape(48, -1).amax(dim=1).clamp_min(1e-30)
    assert float(rel[torch.arange(48) != 7].max()) <= 0.5 / 127 + 1e-6


def test_dequantize_rejects_a_scale_of_the_wrong_shape():
    q, scale = quantize_rows(torch.randn(4, 8))
    with pytest.raises(ValueError, match="scale of shape"):
        dequantize_rows(q, scale[:3])


@pytest.fixture
def int8_path(tiny_model: JaTModel, tmp_path):
    return save_model(tmp_path / "tiny8", tiny_model, torch.int8)


def test_int8_file_is_smaller_and_loads_to_nearly_the_same_network(tiny_model, int8_path,
                                                                   tmp_path):
    fp16_path = save_model(tmp_path / "tiny16", tiny_model, torch.float16)
    tensors = load_file(str(int8_path))
    matrices = [k for k, v in tensors.items() if v.dtype == torch.int8]
    assert matrices and all(QSCALE + k in tensors for k in matrices)
    # what stays fp16 is small: biases, norms
    assert all(v.dtype in (torch.float16, torch.float32) for k, v in tensors.items()
               if k not in matrices and not k.startswith(QSCALE))
    assert int8_path.stat().st_size < 0.7 * fp16_path.stat().st_size
    meta = read_model_config(int8_path)
    assert meta["weights_dtype"] == "int8" and meta["schema_version"] == 2
    assert read_model_config(fp16_path)["schema_version"] == 1  # older readers keep reading

    loaded = load_model(int8_path)
    ref = tiny_model.net
    for k, v in ref.state_dict().items():  # each weight within half a quantisation step
        got = loaded.net.state_dict()[k]
        tol = float(v.abs().max()) / 254 + 1e-3 * float(v.abs().max()) + 1e-6
        assert torch.allclose(got, v.float(), atol=tol), k
    g = torch.Generator().manual_seed(1)
    z = torch.randn(2, ref.cfg.latent_channels, 8, generator=g)  # (B, C, T)
    cond = torch.randn(2, ref.cfg.latent_channels, 8, generator=g)
    t = torch.tensor([0.3, 0.9])
    with torch.no_grad():
        a, b = ref(z, t, cond), loaded.net(z, t, cond)
    assert float((a - b).norm() / a.norm()) < 0.02


def test_int8_matrix_without_its_scales_is_a_clear_error(int8_path):
    tensors = load_file(str(int8_path))
    dropped = next(k for k in tensors if k.startswith(QSCALE))
    del tensors[dropped]
    save_file(tensors, str(int8_path))
    with pytest.raises(ModelFileError, match="has no qscale"):
        load_model(int8_path)


def test_a_file_from_a_newer_schema_is_refused(int8_path):
    _, config = model_paths(int8_path)
    meta = json.loads(config.read_text())
    config.write_text(json.dumps({**meta, "schema_version": 99}))
    with pytest.raises(ModelFileError, match="newer JaT-SR"):
        load_model(int8_path)


def test_medium_preset_ships_in_16_mb_as_int8(tiny_model, tmp_path):
    run = PRESETS["medium"]
    net = DiT(run.model)
    assert 12_000_000 < param_counts(net)["total"] <= 16_000_000
    path = save_model(tmp_path / "medium", JaTModel(net, tiny_model.codec, run, {}), torch.int8)
    assert path.stat().st_size <= 16_000_000
