"""The flat fused update: the same steps as MasterWeights + the fused AdamW with its clip,
views that stay bound, a non-finite norm that changes nothing, unused parameters as zeros."""

from __future__ import annotations

import copy

import pytest
import torch

from engine.flow import FlowObjective
from engine.model.dit import PRESETS, DiT
from engine.training.flat_master import FlatMaster
from engine.training.master import MasterWeights
from engine.training.update import clipped_step, make_adamw

BETAS, DECAY, LR = (0.9, 0.99), 0.01, 1e-3


def _tiny() -> tuple[DiT, FlowObjective]:
    torch.manual_seed(0)
    run = PRESETS["tiny"]
    net = DiT(run.model)
    for p in net.parameters():  # adaLN-Zero starts at zero: give every weight a gradient path
        torch.nn.init.normal_(p, std=0.05)
    return net, FlowObjective(run.flow)


def _backward(obj: FlowObjective, model: torch.nn.Module, seed: int, scale: float = 1.0
              ) -> None:
    g = torch.Generator().manual_seed(seed)
    channels = model.cfg.latent_channels
    x, cond = torch.randn(2, channels, 16, generator=g), torch.randn(2, channels, 16, generator=g)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, _ = obj.loss(model, x, cond, torch.Generator().manual_seed(seed))
    (loss * scale).backward()


@pytest.mark.parametrize("compiled", [False, True])
def test_the_steps_match_master_weights_and_the_fused_adamw(compiled):
    net, obj = _tiny()
    ref = copy.deepcopy(net)
    flat = FlatMaster(net, BETAS, weight_decay=DECAY, max_norm=0.05, compile=compiled)
    master = MasterWeights(ref)
    opt = make_adamw(ref.parameters(), LR, BETAS, DECAY)
    norms = []
    for seed in range(3):
        _backward(obj, flat.work, seed)
        _backward(obj, master.work, seed)
        norm = flat.step(LR)
        master.grads_to_master()
        ref_norm = clipped_step(opt, list(ref.parameters()), 0.05)
        master.master_to_work()
        assert norm.item() == pytest.approx(ref_norm.item(), rel=1e-5)
        norms.append(norm.item())
    assert min(norms) > 0.05  # every step was clipped
    assert flat.step_count.item() == 3
    for (name, p), q in zip(net.named_parameters(), ref.parameters(), strict=True):
        moved = (q - p.detach()).abs().max().item()
        assert torch.allclose(p, q, rtol=0, atol=1e-6), (name, moved)
    for w, p in zip(flat.work.parameters(), net.parameters(), strict=True):
        assert torch.equal(w, p.detach().to(torch.bfloat16))  # the master rounded
    assert all(p.grad is None for p in flat.work.parameters())


def test_the_parameters_stay_views_of_the_flat_buffers():
    net, obj = _tiny()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    flat = FlatMaster(net, BETAS, compile=False)
    for k, v in net.state_dict().items():  # binding copied the values in
        assert torch.equal(v, before[k]), k
    p32, w16 = flat.p32.data_ptr(), flat.w16.data_ptr()
    for p, w in zip(net.parameters(), flat.work.parameters(), strict=True):
        assert p.untyped_storage().data_ptr() == p32
        assert w.untyped_storage().data_ptr() == w16
        assert torch.equal(w, p.detach().to(torch.bfloat16))
    _backward(obj, flat.work, 0)
    flat.step(LR)
    offset = 0
    for p in net.parameters():  # the update reached the module's own parameters
        assert torch.equal(p.detach().reshape(-1), flat.p32[offset : offset + p.numel()])
        offset += p.numel()
    assert offset == flat.p32.numel()


def test_a_non_finite_gradient_changes_nothing():
    net, obj = _tiny()
    flat = FlatMaster(net, BETAS, compile=False)
    _backward(obj, flat.work, 0)
    flat.step(LR)
    state = [t.clone() for t in (flat.p32, flat.w16, flat.exp_avg, flat.exp_avg_sq,
                                 flat.step_count)]
    _backward(obj, flat.work, 1)
    next(flat.work.parameters()).grad[0] = float("nan")
    norm = flat.step(LR)
    assert not torch.isfinite(norm)
    after = (flat.p32, flat.w16, flat.exp_avg, flat.exp_avg_sq, flat.step_count)
    for a, b in zip(state, after, strict=True):
        assert torch.equal(a, b)
    _backward(obj, flat.work, 2)  # and the next finite step updates again
    flat.step(LR)
    assert flat.step_count.item() == 2 and not torch.equal(state[0], flat.p32)


def test_an_unused_parameter_is_updated_as_with_a_zero_gradient():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 4))
    flat = FlatMaster(net, BETAS, weight_decay=0.1, compile=False)
    flat.g16.fill_(3.0)  # what an earlier step left
    second = net[1].weight.detach().clone()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        flat.work[0](torch.randn(2, 4)).sum().backward()  # the second layer sits out
    flat.step(LR)
    k = net[0].weight.numel() + net[0].bias.numel()
    assert torch.count_nonzero(flat.exp_avg[:k]) > 0
    assert torch.count_nonzero(flat.exp_avg[k:]) == 0  # no stale gradient reached it
    # only the decoupled weight decay moved it
    assert torch.allclose(net[1].weight, second * (1 - LR * 0.1), rtol=1e-6, atol=0)


def test_the_optimizer_state_round_trips_through_torch_adamw_format():
    net, obj = _tiny()
    ref = copy.deepcopy(net)
    flat = FlatMaster(net, BETAS, weight_decay=DECAY, compile=False)
    lender = make_adamw(net.parameters(), LR, BETAS, DECAY)
    for seed in range(2):
        _backward(obj, flat.work, seed)
        flat.step(LR)
    state = flat.optimizer_state(lender)
    assert not lender.state  # only lent
    # torch's AdamW resumes from it exactly where the flat update would have gone on
    ref.load_state_dict(net.state_dict())
    opt = make_adamw(ref.parameters(), LR, BETAS, DECAY)
    opt.load_state_dict(state)
    twin = FlatMaster(copy.deepcopy(net), BETAS, weight_decay=DECAY, compile=False)
    twin.load_optimizer_state(opt.state_dict())
    for name in ("exp_avg", "exp_avg_sq", "step_count"):
        assert torch.equal(getattr(twin, name), getattr(flat, name)), name
    assert flat.step_count.item() == 2
    for p in ref.parameters():
        assert opt.state[p]["step"].item() == 2
    fresh = FlatMaster(copy.deepcopy(net), BETAS, compile=False)
    fresh.load_optimizer_state(make_adamw(ref.parameters(), LR, BETAS, DECAY).state_dict())
    assert fresh.step_count.item() == 0 and torch.count_nonzero(fresh.exp_avg) == 0


def test_a_compiler_failure_falls_back_to_torchs_fused_adamw(monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("no compiler here")

    net, obj = _tiny()
    ref = FlatMaster(copy.deepcopy(net), BETAS, compile=False)
    flat = FlatMaster(net, BETAS, compile=False)
    flat._update = broken  # what a failing torch.compile'd function does at its first call
    for model in (flat, ref):
        _backward(obj, model.work, 0)
        model.step(LR)
    assert "falls back to torch's fused AdamW" in caplog.text
    assert torch.equal(flat.p32, ref.p32) and flat.step_count.item() == 1


def test_the_master_must_be_fp32_on_one_device():
    net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2))
    net[1].half()
    with pytest.raises(ValueError, match="fp32"):
        FlatMaster(net, BETAS, compile=False)


@pytest.mark.parametrize("compiled", [False, True])
def test_micro_batches_add_up_in_fp32(compiled):
    net, obj = _tiny()
    ref = copy.deepcopy(net)
    flat = FlatMaster(net, BETAS, weight_decay=DECAY, max_norm=0.05, compile=compiled)
    master = MasterWeights(ref)  # its bf16 copy gives the reference each micro-batch's grads
    opt = make_adamw(ref.parameters(), LR, BETAS, DECAY)
    sums = [torch.zeros_like(p) for p in ref.parameters()]
    for micro in range(3):
        _backward(obj, flat.work, micro, scale=1 / 3)
        flat.accumulate()
        assert all(p.grad is None for p in flat.work.parameters())
        _backward(obj, master.work, micro, scale=1 / 3)
        for total, w in zip(sums, master.work.parameters(), strict=True):
            total += w.grad.float()
        master.work.zero_grad(set_to_none=True)
    for p, total in zip(ref.parameters(), sums, strict=True):
        p.grad = total
    norm = flat.step(LR)
    ref_norm = clipped_step(opt, list(ref.parameters()), 0.05)
    # one fp32 reduction over the flat sum against torch's per-tensor norms: on the CPU they
    # part by ~2e-5 (the float64 norm lies between them). One step only: a later step's bf16
    # working copy turns such differences into a rounding step here and there.
    assert norm.item() == pytest.approx(ref_norm.item(), rel=1e-4)
    assert norm.item() > 0.05  # clipped
    assert flat.accumulated == 0 and not flat.grad_sum.any()  # cleared for the next step
    assert flat.step_count.item() == 1
    for (name, p), q in zip(net.named_parameters(), ref.parameters(), strict=True):
        assert torch.allclose(p, q, rtol=0, atol=1e-6), (name, (q - p.detach()).abs().max())


def test_gradients_left_after_accumulating_join_the_sum():
    net, obj = _tiny()
    a, b = FlatMaster(net, BETAS, compile=False), FlatMaster(copy.deepcopy(net), BETAS,
                                                              compile=False)
    for flat, accumulate_last in ((a, True), (b, False)):
        for micro in range(2):
            _backward(obj, flat.work, micro, scale=0.5)
            if micro == 0 or accumulate_last:
                flat.accumulate()
        flat.step(LR)
    assert torch.equal(a.p32, b.p32)
    assert not torch.equal(a.p32, FlatMaster(_tiny()[0], BETAS, compile=False).p32)  # it moved
