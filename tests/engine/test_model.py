"""DiT: shapes over presets and flags, adaLN-Zero at init, RoPE relativity, GQA == MHA."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from engine.config import ModelConfig
from engine.model.dit import PRESETS, DiT, param_counts
from engine.model.layers import Attention, RotaryEmbedding

TINY = PRESETS["tiny"].model


def test_v2_parameter_count_is_about_290m_not_230m():
    counts = param_counts(DiT(PRESETS["v2"].model))
    assert 285e6 < counts["total"] < 295e6
    # 16 blocks of ~17.3M each dominate.
    per_block = (counts["blocks.attn"] + counts["blocks.mlp"] + counts["blocks.ada_ln"]) / 16
    assert 17.0e6 < per_block < 17.6e6


def test_v2_matches_the_spec_shapes():
    net = DiT(PRESETS["v2"].model)
    assert net.patch_embed.down.in_features == 8192 and net.patch_embed.down.out_features == 512
    assert net.patch_embed.up.out_features == 1024
    assert net.final.linear.out_features == 4096
    assert len(net.blocks) == 16
    attn = net.blocks[0].attn
    assert (attn.heads, attn.kv_heads, attn.head_dim) == (16, 4, 64)
    assert net.blocks[0].ada_ln[-1].out_features == 6144


def test_small_preset_ships_under_8m_parameters():
    assert param_counts(DiT(PRESETS["small"].model))["total"] <= 8_000_000


@pytest.mark.parametrize("positions", ["rope", "learned"])
@pytest.mark.parametrize("kv_heads", [1, 2, 4])
@pytest.mark.parametrize("frames", [1, 8, 37])
def test_forward_backward_shapes(positions, kv_heads, frames):
    cfg = dataclasses.replace(TINY, positions=positions, kv_heads=kv_heads)
    net = DiT(cfg)
    # Make the output depend on the input so gradients flow everywhere.
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.02)
    z = torch.randn(2, cfg.latent_channels, frames, requires_grad=True)
    out = net(z, torch.rand(2), torch.randn_like(z))
    assert out.shape == z.shape
    out.square().mean().backward()
    assert z.grad is not None and torch.isfinite(z.grad).all()


def test_adaln_zero_every_block_is_identity_and_output_zero_at_init():
    net = DiT(TINY)
    x = torch.randn(2, 5, TINY.width)
    c = torch.randn(2, TINY.width)
    for block in net.blocks:
        assert torch.equal(block(x, c), x)
        assert not block.ada_ln[-1].weight.any()
    z = torch.randn(2, TINY.latent_channels, 12)
    assert not net(z, torch.rand(2), z).any()
    assert not net.final.linear.weight.any() and not net.final.ada_ln[-1].weight.any()


def test_rope_scores_depend_only_on_relative_offset():
    torch.manual_seed(0)
    rope = RotaryEmbedding(16)
    q, k = torch.randn(16), torch.randn(16)

    def score(i, j):
        qs = torch.zeros(1, 1, 20, 16)
        ks = torch.zeros(1, 1, 20, 16)
        qs[0, 0, i], ks[0, 0, j] = q, k
        return (rope(qs)[0, 0, i] * rope(ks)[0, 0, j]).sum()

    assert torch.allclose(score(3, 1), score(12, 10), atol=1e-5)
    assert torch.allclose(score(0, 7), score(9, 16), atol=1e-5)
    assert not torch.allclose(score(3, 1), score(3, 2), atol=1e-3)


def test_gqa_with_kv_heads_equal_to_heads_is_mha():
    torch.manual_seed(0)
    width, heads = 32, 4
    gqa = Attention(width, heads, heads, rope=None)
    x = torch.randn(2, 7, width)
    # Reference MHA with the same weights, explicit softmax.
    q = gqa.q(x).view(2, 7, heads, 8).transpose(1, 2)
    k, v = gqa.kv(x).view(2, 7, 2, heads, 8).permute(2, 0, 3, 1, 4)
    att = torch.softmax(q @ k.transpose(-1, -2) / 8**0.5, dim=-1)
    ref = gqa.proj((att @ v).transpose(1, 2).reshape(2, 7, width))
    assert torch.allclose(gqa(x), ref, atol=1e-5)


def test_gqa_groups_share_kv_heads():
    torch.manual_seed(0)
    attn = Attention(32, 4, 2, rope=None)
    x = torch.randn(1, 6, 32)
    q = attn.q(x).view(1, 6, 4, 8).transpose(1, 2)
    k, v = attn.kv(x).view(1, 6, 2, 2, 8).permute(2, 0, 3, 1, 4)
    k, v = k.repeat_interleave(2, 1), v.repeat_interleave(2, 1)
    att = torch.softmax(q @ k.transpose(-1, -2) / 8**0.5, dim=-1)
    ref = attn.proj((att @ v).transpose(1, 2).reshape(1, 6, 32))
    assert torch.allclose(attn(x), ref, atol=1e-5)


def test_learned_positions_reject_too_long_sequences():
    cfg = dataclasses.replace(TINY, positions="learned", max_tokens=4)
    net = DiT(cfg)
    z = torch.randn(1, cfg.latent_channels, 4 * cfg.patch_len + 1)
    with pytest.raises(ValueError, match="max_tokens"):
        net(z, torch.rand(1), z)


def test_config_validation_names_the_field():
    with pytest.raises(ValueError, match="kv_heads"):
        ModelConfig(heads=16, kv_heads=5)
    with pytest.raises(ValueError, match="positions"):
        ModelConfig(positions="alibi")
