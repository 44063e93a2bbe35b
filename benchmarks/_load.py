"""The load average around a benchmark: on the shared development machine a figure is only as good as the load
it ran under, so each benchmark prints it before and after (the docs quote both beside the figure)."""

import os
from collections.abc import Callable


def with_load(main: Callable[[], int]) -> int:
    """Run ``main`` between two lines giving the 1-minute load average and the core count; return its code."""
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
    code = main()
    print(f"load average after: {os.getloadavg()[0]:.1f}", flush=True)
    return code
