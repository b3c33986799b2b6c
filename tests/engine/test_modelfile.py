"""Model files: int8 storage (rows + scales), int4 (groups + scales), round trips, failures."""

from __future__ import annotations

import argparse
import dataclasses
import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from engine.model.dit import PRESETS, DiT, param_counts
from engine.modelfile import (
    INT4,
    INT4_KEEP_INT8,
    QSCALE,
    QSCALE4,
    WEIGHT_DTYPES,
    JaTModel,
    ModelFileError,
    dequantize_groups,
    dequantize_rows,
    load_model,
    model_paths,
    quantize_groups,
    quantize_rows,
    read_model_config,
    save_model,
)
from engine.training.cli import add_weights_argument, weights_dtype


def _output_error(ref: torch.nn.Module, net: torch.nn.Module) -> float:
    """Relative L2 distance of two networks' predictions on one fixed random input."""
    g = torch.Generator().manual_seed(1)
    z = torch.randn(2, ref.cfg.latent_channels, 8, generator=g)  # (B, C, T)
    cond = torch.randn(2, ref.cfg.latent_channels, 8, generator=g)
    t = torch.tensor([0.3, 0.9])
    with torch.no_grad():
        a, b = ref(z, t, cond), net(z, t, cond)
    return float((a - b).norm() / a.norm())


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
    assert _output_error(ref, loaded.net) < 0.02


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


def test_quantize_groups_error_is_at_most_half_a_step_per_group():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(48, 3, 64, generator=g) * torch.logspace(-6, 1, 48)[:, None, None]
    w[7, 1, :32] = 0.0  # an all-zero group
    packed, scale = quantize_groups(w)  # K = 192: 6 groups a row
    assert packed.dtype == torch.uint8 and packed.shape == (48, 96)
    assert scale.dtype == torch.float16 and scale.shape == (48, 6)
    back = dequantize_groups(packed, scale, w.shape)
    assert back.dtype == torch.float32 and back.shape == w.shape
    groups = w.reshape(48, 6, 32)
    err = (back.reshape(48, 6, 32) - groups).abs().amax(dim=2)
    assert torch.all(err <= scale.float() * 0.5 + 1e-12)  # fp16 scales, tiny ones included
    assert torch.all(back[7, 1, :32] == 0) and scale[7, 2] == 1
    # each group uses its own range: scale ~= absmax / 7 (fp16-rounded up, never below)
    absmax = groups.abs().amax(dim=2)
    normal = absmax / 7 > 1e-4  # fp16 normal numbers: relative rounding <= 2**-10
    assert torch.all(scale.float() >= absmax / 7)
    assert torch.all(scale.float()[normal] <= absmax[normal] / 7 * (1 + 2**-10))


def test_int4_packing_layout():
    w = torch.zeros(1, 64)
    w[0, :6] = torch.tensor([7.0, -7.0, 0.0, 1.0, -1.0, 3.0])  # group 0: absmax 7 -> scale 1
    w[0, 32:34] = torch.tensor([14.0, -2.0])  # group 1: absmax 14 -> scale 2
    packed, scale = quantize_groups(w)
    assert scale.tolist() == [[1.0, 2.0]]
    # q + 8, even column in the low nibble: (7, -7) -> 15 | 1 << 4, (0, 1) -> 8 | 9 << 4, ...
    assert packed[0, :3].tolist() == [0x1F, 0x98, 0xB7]
    assert packed[0, 16].item() == 0x7F  # (7, -1) in group 1
    assert torch.all(packed[0, 3:16] == 0x88) and torch.all(packed[0, 17:] == 0x88)
    assert torch.equal(dequantize_groups(packed, scale), w)


def test_int4_zero_groups_stay_zero():
    w = torch.zeros(2, 64)
    w[1, 32:] = torch.linspace(-1, 1, 32)
    packed, scale = quantize_groups(w)
    assert scale.tolist() == [[1.0, 1.0], [1.0, scale[1, 1].item()]]
    assert torch.all(packed[0] == 0x88) and torch.all(packed[1, :16] == 0x88)
    back = dequantize_groups(packed, scale)
    assert torch.all(back[0] == 0) and torch.all(back[1, :32] == 0)
    assert float((back[1, 32:] - w[1, 32:]).abs().max()) <= float(scale[1, 1]) / 2


def test_int4_rejects_rows_of_partial_groups_and_scales_of_the_wrong_shape():
    with pytest.raises(ValueError, match="whole groups"):
        quantize_groups(torch.randn(4, 48))
    packed, scale = quantize_groups(torch.randn(4, 64))
    with pytest.raises(ValueError, match="scale of shape"):
        dequantize_groups(packed, scale[:, :1])
    with pytest.raises(ValueError, match="cannot be"):
        dequantize_groups(packed, scale, (4, 32))


@pytest.fixture
def int4_path(tiny_model: JaTModel, tmp_path):
    return save_model(tmp_path / "tiny4", tiny_model, INT4)


def _int4_expected(name: str, w: torch.Tensor) -> bool:
    """Whether a net tensor should be int4: a big matrix of whole 32-groups, not an input layer."""
    return (w.ndim >= 2 and w.numel() >= 4096 and w[0].numel() % 32 == 0
            and not name.startswith(INT4_KEEP_INT8))


def test_int4_file_is_smaller_than_int8_and_loads_to_its_dequantised_network(
        tiny_model, int8_path, int4_path):
    tensors = load_file(str(int4_path))
    nibbles = {k for k, v in tensors.items() if v.dtype == torch.uint8}
    assert {"net.blocks.0.attn.q.weight", "net.blocks.1.mlp.fc2.weight",
            "net.blocks.0.ada_ln.1.weight", "net.final.linear.weight"} <= nibbles
    for k, v in tiny_model.net.state_dict().items():  # the tiny preset's widths are 32-groups
        assert (f"net.{k}" in nibbles) == _int4_expected(k, v), k
    for k in nibbles:
        r, kk = tensors[k].shape[0], 2 * tensors[k].shape[1]
        assert tensors[QSCALE4 + k].dtype == torch.float16
        assert tensors[QSCALE4 + k].shape == (r, kk // 32)
    # the input layers stay int8 rows
    for k in ("net.patch_embed.down.weight", "net.t_embed.mlp.0.weight",
              "net.t_embed.mlp.2.weight"):
        assert tensors[k].dtype == torch.int8 and QSCALE + k in tensors, k
    assert int4_path.stat().st_size < 0.8 * int8_path.stat().st_size
    meta = read_model_config(int4_path)
    assert meta["weights_dtype"] == "int4" and meta["schema_version"] == 3
    assert read_model_config(int8_path)["schema_version"] == 2

    loaded = load_model(int4_path)
    state = loaded.net.state_dict()
    for k, v in tensors.items():  # exactly what the file holds, expanded
        if not k.startswith("net."):
            continue
        name = k[4:]
        if k in nibbles:
            want = dequantize_groups(v, tensors[QSCALE4 + k], state[name].shape)
        elif v.dtype == torch.int8:
            want = dequantize_rows(v, tensors[QSCALE + k])
        else:
            want = v.float()
        assert torch.equal(state[name], want), k
    # int4 is coarse on the tiny net (measured 0.15, int8 0.015); wrong nibbles give ~1
    assert _output_error(tiny_model.net, loaded.net) < 0.25


def test_int4_matrix_without_its_scales_is_a_clear_error(int4_path):
    tensors = load_file(str(int4_path))
    del tensors[QSCALE4 + "net.blocks.0.mlp.fc1.weight"]
    save_file(tensors, str(int4_path))
    with pytest.raises(ModelFileError, match="has no qscale4"):
        load_model(int4_path)


def test_int4_matrices_of_partial_groups_fall_back_to_int8(tiny_model, tmp_path):
    run = PRESETS["tiny"]
    run = dataclasses.replace(run, model=dataclasses.replace(run.model, width=80))
    net = DiT(run.model)  # attn K = 80: int8; mlp.fc2 K = 160: int4
    path = save_model(tmp_path / "odd", JaTModel(net, tiny_model.codec, run, {}), INT4)
    tensors = load_file(str(path))
    assert tensors["net.blocks.0.attn.q.weight"].dtype == torch.int8
    assert tensors["net.blocks.0.mlp.fc1.weight"].dtype == torch.int8
    assert tensors["net.blocks.0.mlp.fc2.weight"].dtype == torch.uint8
    for k, v in net.state_dict().items():
        big = v.ndim >= 2 and v.numel() >= 4096
        want = torch.uint8 if _int4_expected(k, v) else torch.int8 if big else torch.float16
        assert tensors[f"net.{k}"].dtype == want, k
    loaded = load_model(path)
    for k, v in net.state_dict().items():
        assert torch.allclose(loaded.net.state_dict()[k], v, atol=float(v.abs().max()) / 10), k


def test_cli_weights_choices_include_int4():
    p = argparse.ArgumentParser()
    add_weights_argument(p)
    assert weights_dtype(p.parse_args(["--weights", "int4"])) is INT4 is WEIGHT_DTYPES["int4"]
