"""engine.cores: the CPU budget a container grants (cgroup v2 cpu.max)."""

from __future__ import annotations

from pathlib import Path

from engine.cores import cpu_budget


def test_cpu_budget_reads_the_cgroup_quota(tmp_path: Path) -> None:
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("1600000 100000\n")
    got = cpu_budget(cpu_max)
    assert got["cgroup_cores"] == 16.0
    assert got["affinity_cores"] is None or 1 <= got["affinity_cores"] <= got["logical_cores"]
    cpu_max.write_text("max 100000\n")
    assert cpu_budget(cpu_max)["cgroup_cores"] is None  # no quota
    assert cpu_budget(tmp_path / "absent")["cgroup_cores"] is None  # cgroup v1 / not Linux
    cpu_max.write_text("garbage\n")
    assert cpu_budget(cpu_max)["cgroup_cores"] is None


def test_usable_cores_is_the_smallest_budget() -> None:
    from engine.cores import usable_cores

    assert usable_cores({"logical_cores": 64, "affinity_cores": 32, "cgroup_cores": 7.5}) == 7
    assert usable_cores({"logical_cores": 8, "affinity_cores": None, "cgroup_cores": None}) == 8
    assert usable_cores({"logical_cores": 4, "affinity_cores": 4, "cgroup_cores": 0.5}) == 1
    assert usable_cores({"logical_cores": None, "affinity_cores": None,
                         "cgroup_cores": None}) == 1
    assert usable_cores() >= 1


def test_the_core_count_needs_no_torch() -> None:  # the corpus scan reads it, torch-free
    import subprocess
    import sys

    code = "import sys, engine.cores; engine.cores.usable_cores(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).parents[2])
    assert out.stdout.strip() == "False"
