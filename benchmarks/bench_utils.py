"""What the benchmark scripts share. They run as ``python benchmarks/NAME.py``, so this
folder is on ``sys.path`` and ``from bench_utils import cpu_seconds`` finds this file."""

from __future__ import annotations

import os


def cpu_seconds() -> float:
    """CPU time of this process, all threads (user + system): unlike wall time, it ignores
    other load on the machine."""
    times = os.times()
    return times.user + times.system
