"""bf16 working weights, fp32 master weights and AdamW state in flat buffers: one fused update.

`MasterWeights` + the fused AdamW pass over every parameter four times a step: the bf16
gradients copied up into fp32 (6 bytes a parameter), their norm (4), AdamW (28: parameter,
gradient and both moments read, parameter and moments written), the master copied down into
bf16 (6): 44 bytes a parameter, 12.8 GB a step for the 290M-parameter `v2`. Here the master,
both moments and the working copy are views of four flat buffers (N,), so the whole update is
one elementwise pass that torch.compile fuses into a single kernel:

    gather  the bf16 gradients into one flat buffer            4 bytes a parameter
    norm    of that buffer, accumulated in fp32                  2
    update  clip + AdamW on fp32, the bf16 copy written beside  28 (14 read, 14 written)

34 bytes a parameter. The arithmetic is torch's fused AdamW's (decoupled weight decay, bias
corrections from a step count), with the clip coefficient min(1, max_norm / (norm + 1e-6))
applied to the gradient and a non-finite norm leaving weights, moments and step count as they
were (`engine.training.update.clipped_step`'s contract).

Gradient accumulation: `accumulate()` after each micro-batch's backward adds its bf16
gradients into an fp32 sum (N,) and drops them, so micro-batches never add up in bf16; `step`
then updates from that sum (4 more bytes a parameter, allocated at the first accumulation).

Where torch.compile cannot run (no Triton, no C++ compiler; or `compile=False`) the update is
torch's fused AdamW over the flat master, on the same moments and step count, with the
gradient copied up to fp32 first: 46 bytes a parameter. Run unfused, `_adamw`'s temporaries
cost more than that (CPU, `tiny`: 9.5-11.6 ms against 1.5-2.1 ms for the two-copy update).
"""

from __future__ import annotations

import copy
import logging

import torch
from torch import Tensor, nn

from engine.training.update import CLIP_EPS, clipped_step

log = logging.getLogger(__name__)


def _adamw(p: Tensor, g: Tensor, m: Tensor, v: Tensor, w: Tensor, step: Tensor, norm: Tensor,
           lr: Tensor, beta1: float, beta2: float, eps: float, weight_decay: float,
           max_norm: float) -> None:
    """In place: p, m, v (N,) fp32 and w (N,) bf16 from g (N,) bf16 or fp32; step (0-d)
    counts."""
    finite = torch.isfinite(norm)
    coef = (max_norm / (norm + CLIP_EPS)).clamp(max=1.0)
    grad = g.float() * torch.where(finite, coef, 0.0)  # (N,) fp32, clipped
    t = step + finite.float()
    m_new = m.lerp(grad, 1 - beta1)
    v_new = v * beta2 + (1 - beta2) * grad * grad
    bias1 = 1 - beta1 ** t
    bias2_sqrt = (1 - beta2 ** t).sqrt()
    p_new = p * (1 - lr * weight_decay) - (lr / bias1) * m_new / (v_new.sqrt() / bias2_sqrt + eps)
    p_new = torch.where(finite, p_new, p)
    p.copy_(p_new)
    m.copy_(torch.where(finite, m_new, m))
    v.copy_(torch.where(finite, v_new, v))
    w.copy_(p_new.to(w.dtype))
    step.copy_(t)


class FlatMaster:
    """A bf16 working copy of `master` and AdamW on flat fp32 buffers; `step()` updates both.

    `master`'s parameters become views of `self.p32` (N,); the working copy's of `self.w16`.
    Call `step(lr)` after the working copy's backward (and any all-reduce): it clips, updates
    the master and rounds it into the working copy, and drops the working gradients. With
    several micro-batches, call `accumulate()` after each backward instead, all-reduce
    `grad_sum` (with several processes), then `step(lr)`.
    """

    def __init__(self, master: nn.Module, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, max_norm: float = 1.0,
                 compile: bool = True):
        self.master = master
        params = list(master.parameters())
        device = params[0].device
        if any(p.dtype != torch.float32 or p.device != device for p in params):
            raise ValueError("FlatMaster needs fp32 master parameters on one device")
        self.spans, n = [], 0  # each parameter's slice of the flat buffers, in order
        for p in params:
            self.spans.append(slice(n, n + p.numel()))
            n += p.numel()
        self.p32 = torch.empty(n, device=device)  # (N,) fp32 master weights
        self._bind(params, self.p32)
        self.work = copy.deepcopy(master)
        self.w16 = self.p32.to(torch.bfloat16)  # (N,) the working copy
        self.work_params = list(self.work.parameters())
        self._bind(self.work_params, self.w16, copy_in=False)
        self.g16 = torch.zeros(n, dtype=torch.bfloat16, device=device)  # (N,) gathered grads
        self.exp_avg = torch.zeros(n, device=device)  # (N,)
        self.exp_avg_sq = torch.zeros(n, device=device)  # (N,)
        self.grad_sum: Tensor | None = None  # (N,) fp32, micro-batches' gradients so far
        self.accumulated = 0  # micro-batches in grad_sum since the last step
        self.step_count = torch.zeros((), device=device)  # updates applied (skips excluded)
        self._lr = torch.zeros((), device=device)
        self.hyper = {"beta1": betas[0], "beta2": betas[1], "eps": eps,
                      "weight_decay": weight_decay, "max_norm": max_norm}
        # compiled lazily at the first step; torch's fused AdamW for good if compiling fails
        self._update = (torch.compile(_adamw, fullgraph=True, dynamic=False) if compile
                        else None)
        self._fused: torch.optim.AdamW | None = None

    def _bind(self, params: list[nn.Parameter], flat: Tensor, copy_in: bool = True) -> None:
        """Make each parameter a view of its slice of `flat` (N,)."""
        for p, span in zip(params, self.spans, strict=True):
            view = flat[span].view_as(p)
            if copy_in:
                view.copy_(p.detach())
            p.data = view

    @torch.no_grad()
    def master_to_work(self) -> None:
        """Round the master into the working copy (after loading master weights)."""
        self.w16.copy_(self.p32)

    def optimizer_state(self, opt: torch.optim.Optimizer) -> dict:
        """The moments and step count in torch AdamW's `state_dict` format, so a checkpoint
        resumes under either precision. `opt`: an AdamW over the master's parameters that never
        steps, lent for its format (its param_groups, its lr); its state is left empty."""
        step = self.step_count.detach()
        for p, sl in zip(self.master.parameters(), self.spans, strict=True):
            opt.state[p] = {"step": step.clone(), "exp_avg": self.exp_avg[sl].view_as(p),
                            "exp_avg_sq": self.exp_avg_sq[sl].view_as(p)}
        try:
            return opt.state_dict()
        finally:
            opt.state.clear()

    @torch.no_grad()
    def load_optimizer_state(self, state: dict) -> None:
        """Moments and step count from an AdamW `state_dict` (`optimizer_state`'s or torch's
        own); a parameter with no state starts from zero moments."""
        saved = state["state"]
        steps = [float(s["step"]) for s in saved.values() if "step" in s]
        for i, sl in enumerate(self.spans):
            entry = saved.get(i)
            for name, flat in (("exp_avg", self.exp_avg), ("exp_avg_sq", self.exp_avg_sq)):
                if entry is None:
                    flat[sl].zero_()
                else:
                    flat[sl].copy_(entry[name].reshape(-1))
        self.step_count.fill_(max(steps, default=0.0))

    @torch.no_grad()
    def _gather(self) -> None:
        """The working gradients into `g16` (zeros for a parameter unused this step)."""
        torch.cat([p.new_zeros(p.numel()) if p.grad is None else p.grad.reshape(-1)
                   for p in self.work_params], out=self.g16)  # one kernel
        self.work.zero_grad(set_to_none=True)

    @torch.no_grad()
    def accumulate(self) -> None:
        """Add this micro-batch's working gradients into `grad_sum` (fp32) and drop them."""
        self._gather()
        if self.grad_sum is None:
            self.grad_sum = torch.zeros_like(self.p32)
        self.grad_sum.add_(self.g16)
        self.accumulated += 1

    @torch.no_grad()
    def drop_gradients(self) -> None:
        """Forget the working gradients and any accumulated sum (a step given up)."""
        self.work.zero_grad(set_to_none=True)
        if self.grad_sum is not None:
            self.grad_sum.zero_()
        self.accumulated = 0

    @torch.no_grad()
    def step(self, lr: float) -> Tensor:
        """Clip to max_norm, AdamW, round into the working copy; returns the pre-clip norm
        (0-d, on the device: read it when convenient). After `accumulate()` the update uses
        `grad_sum` (any working gradients left are added first) and clears it."""
        if self.accumulated and any(p.grad is not None for p in self.work_params):
            self.accumulate()
        if self.accumulated:
            grad = self.grad_sum  # (N,) fp32
        else:
            self._gather()
            grad = self.g16  # (N,) bf16
        norm = torch.linalg.vector_norm(grad, dtype=torch.float32)  # (,) fp32
        if self._update is not None:
            self._lr.fill_(lr)
            try:
                self._update(self.p32, grad, self.exp_avg, self.exp_avg_sq, self.w16,
                             self.step_count, norm, self._lr, **self.hyper)
            except Exception as exc:  # a compiler failure (no Triton, no C++ compiler): it
                # fails while tracing, before any buffer is written
                log.warning("flat AdamW falls back to torch's fused AdamW: torch.compile "
                            "failed (%s)",
                            str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
                self._update = None
        if self._update is None:
            self._fused_step(grad, norm, lr)
        if self.accumulated:
            self.grad_sum.zero_()
            self.accumulated = 0
        return norm

    def _fused_step(self, grad: Tensor, norm: Tensor, lr: float) -> None:
        """The same update by torch's fused AdamW over `p32`, on this object's moments and
        step count; grad (N,) bf16 or fp32, norm its (0-d) pre-clip norm."""
        if self._fused is None:
            h = self.hyper
            self._fused = torch.optim.AdamW([self.p32], lr=lr, betas=(h["beta1"], h["beta2"]),
                                            eps=h["eps"], weight_decay=h["weight_decay"],
                                            fused=True)
            self._fused.state[self.p32] = {"step": self.step_count, "exp_avg": self.exp_avg,
                                           "exp_avg_sq": self.exp_avg_sq}
        self._fused.param_groups[0]["lr"] = lr
        self.p32.grad = grad.float()  # (N,) fp32: a copy of bf16, grad_sum itself
        try:
            clipped_step(self._fused, [self.p32], self.hyper["max_norm"], norm)
        finally:
            self.p32.grad = None
        self.w16.copy_(self.p32)
