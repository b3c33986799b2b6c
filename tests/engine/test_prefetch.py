"""engine.training.prefetch: step batches reach the device one step ahead, unchanged."""

from __future__ import annotations

import pytest
import torch

from engine.training.prefetch import DevicePrefetcher


def _steps(n: int) -> list[list[dict[str, torch.Tensor]]]:
    g = torch.Generator().manual_seed(0)
    return [[{"hr": torch.randn(2, 1, 64, generator=g), "lr": torch.randn(1, 1, 64, generator=g),
              "lr_rows": torch.tensor([1]), "filter": torch.randn(2, 68, generator=g)}]
            for _ in range(n)]


def test_on_the_cpu_steps_pass_through_lazily() -> None:
    taken = []

    def source():
        for k, s in enumerate(_steps(3)):
            taken.append(k)
            yield s

    it = iter(DevicePrefetcher(source(), torch.device("cpu")))
    first = next(it)
    assert taken == [0] and first[0]["hr"].device.type == "cpu"
    assert len(list(it)) == 2


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_a_gpu_the_device_keys_arrive_equal_and_the_rest_stays_home() -> None:
    dev = torch.device("cuda")
    steps = _steps(4)
    pinned = [[{k: v.pin_memory() for k, v in mb.items()} for mb in s] for s in steps]
    taken = []

    def source():
        for k, s in enumerate(pinned):
            taken.append(k)
            yield s

    got = []
    for k, step in enumerate(DevicePrefetcher(source(), dev)):
        assert taken == list(range(min(k + 2, 4)))  # the next step is already on its way
        (mb,) = step
        assert {mb[x].device.type for x in ("hr", "lr", "lr_rows")} == {"cuda"}
        assert mb["filter"].device.type == "cpu"
        got.append((mb["hr"] * 2).cpu())  # a kernel on the training stream reads the copy
    for (mb,), out in zip(steps, got, strict=True):
        assert torch.equal(out, mb["hr"] * 2)
