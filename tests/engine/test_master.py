"""bf16 working weights with fp32 masters: the same gradients as autocast, the update rounded
back into the copy, no stale gradients, and the trainer's "bf16-master" precision."""

from __future__ import annotations

import argparse

import pytest
import torch

from engine.config import TrainConfig
from engine.flow import FlowObjective
from engine.model.dit import PRESETS, DiT
from engine.training.master import MasterWeights
from engine.training.update import clipped_step, make_adamw


def _tiny() -> tuple[DiT, FlowObjective, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    run = PRESETS["tiny"]
    net = DiT(run.model)
    for p in net.parameters():  # adaLN-Zero starts at zero: give every weight a gradient path
        torch.nn.init.normal_(p, std=0.05)
    channels = run.model.latent_channels
    x, cond = torch.randn(2, channels, 16), torch.randn(2, channels, 16)
    return net, FlowObjective(run.flow), x, cond


def _autocast() -> torch.autocast:
    return torch.autocast("cpu", dtype=torch.bfloat16)


def test_the_master_gets_the_gradients_autocast_would_give():
    net, obj, x, cond = _tiny()
    master = MasterWeights(net)
    ref = DiT(net.cfg)
    ref.load_state_dict(net.state_dict())
    for model, seed in ((ref, 5), (master.work, 5)):
        with _autocast():
            loss, _ = obj.loss(model, x, cond, torch.Generator().manual_seed(seed))
        loss.backward()
    master.grads_to_master()
    assert all(p.grad is None for p in master.work.parameters())  # dropped after the copy
    for (name, p), q in zip(net.named_parameters(), ref.parameters(), strict=True):
        assert p.grad.dtype == torch.float32
        scale = q.grad.norm().item()
        assert scale > 0, name
        # the same bf16 matmuls; only rounding inside the bf16 backward differs
        assert (p.grad - q.grad).norm().item() <= 0.02 * scale, name


def test_the_working_copy_is_bf16_and_follows_the_updated_master():
    net, obj, x, cond = _tiny()
    master = MasterWeights(net)
    assert all(p.dtype == torch.bfloat16 for p in master.work.parameters())
    assert all(b.dtype == torch.float32 for b in master.work.buffers())  # RoPE, time tables
    opt = make_adamw(net.parameters(), 1e-2, (0.9, 0.99), 0.0)
    before = [p.detach().clone() for p in net.parameters()]
    with _autocast():
        loss, _ = obj.loss(master.work, x, cond, torch.Generator().manual_seed(1))
    loss.backward()
    master.grads_to_master()
    clipped_step(opt, list(net.parameters()), 1.0)
    master.master_to_work()
    moved = 0
    for p, w, b in zip(net.parameters(), master.work.parameters(), before, strict=True):
        assert p.dtype == torch.float32
        assert torch.equal(w, p.detach().to(torch.bfloat16))
        moved += int(not torch.equal(p, b))
    assert moved == len(before)


def test_an_unused_parameter_keeps_no_stale_gradient():
    net = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 4))
    master = MasterWeights(net)
    for p in net.parameters():
        p.grad.fill_(3.0)  # what an earlier step left
    with _autocast():
        master.work[0](torch.randn(2, 4)).sum().backward()  # the second layer sits out
    master.grads_to_master()
    assert net[0].weight.grad.abs().sum() > 0
    assert torch.count_nonzero(net[1].weight.grad) == 0
    assert torch.count_nonzero(net[1].bias.grad) == 0


def test_the_config_takes_bf16_master_with_micro_batches():
    assert TrainConfig(precision="bf16-master").precision == "bf16-master"
    assert TrainConfig(precision="bf16-master", grad_accum=2).grad_accum == 2
    with pytest.raises(ValueError, match="precision"):
        TrainConfig(precision="fp16")


def test_the_flag_reaches_the_config_and_clashes_with_fp32():
    from engine.training.cli import add_train_arguments, train_config_from_args

    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    base = ["--data", "d", "--out", "o"]
    assert train_config_from_args(parser.parse_args(base)).precision == "bf16"
    args = parser.parse_args([*base, "--bf16-master"])
    assert train_config_from_args(args).precision == "bf16-master"
    with pytest.raises(ValueError, match="choose one"):
        train_config_from_args(parser.parse_args([*base, "--bf16-master", "--fp32"]))
