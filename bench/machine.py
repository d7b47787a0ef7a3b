"""What the benchmarks read about the machine itself."""

import os


def busy_cpu_seconds() -> float:
    """CPU time the whole machine has spent not idle, in seconds, every core together
    (/proc/stat): on a shared, loaded machine wall times swing by a factor of two between runs
    while CPU times stay within a few percent. Includes whatever else runs."""
    with open("/proc/stat") as stat:
        ticks = [int(value) for value in stat.readline().split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")
