"""Hardware facts: the CPU's model and what torch says it can do natively.

Used for advice (`bf16_warning`: bf16 asked for where it is emulated) and provenance
(the perf harness records them beside its figures). Imports torch, lazily.

Why it matters, measured with the base net, one thread per worker, batch 64:
- AMD EPYC with AVX2 only (no AVX-512, no AMX): bf16 trained at 686 samples/s against
  6,196 in fp32, 0.11x (`nox -s perf`, issue 10's report);
- AMD EPYC (Zen 4) with AVX512_BF16: bf16 1.19-1.51x faster than fp32 (base, BN, SK0.2);
- Intel Xeon with AMX: bf16 1.2-1.4x faster than fp32 on the small nets (README).
"""

from __future__ import annotations

import functools
import platform
from collections.abc import Iterable


@functools.cache
def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


@functools.cache
def cpu_capability() -> dict:
    """The CPU as torch sees it: vector ISA torch dispatches to, and native bf16 support."""
    import torch

    amx = bool(torch.cpu._is_amx_tile_supported())
    avx512_bf16 = bool(torch.cpu._is_avx512_bf16_supported())
    return {"model": cpu_model(), "isa": torch.backends.cpu.get_cpu_capability(),
            "amx": amx, "avx512_bf16": avx512_bf16, "bf16_native": amx or avx512_bf16}


def bf16_warning(precisions: Iterable[str], slots: Iterable[str]) -> str | None:
    """A warning when bf16 jobs will run on a CPU without native bf16, else None."""
    if "bf16" not in set(precisions) or "cpu" not in set(slots):
        return None
    cap = cpu_capability()
    if cap["bf16_native"]:
        return None
    return (f"bf16 asked for, but this CPU ({cap['model']}, {cap['isa']}) has no native bf16 "
            "(neither AMX nor AVX512_BF16), so torch emulates it: on such a CPU (an AMD EPYC "
            "with AVX2 only) bf16 trained at 0.11x the speed of fp32. Use precision=\"fp32\" "
            "here, or measure with `nox -s perf`")
