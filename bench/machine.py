"""What the benchmarks read about the machine itself."""

import os


def busy_cpu_seconds() -> float:
    """CPU time the whole machine has spent not idle, in seconds, every core together
    (/proc/stat): on a shared, loaded machine wall times swing by a factor of two between runs
    while CPU times stay within a few percent. Includes whatever else runs."""
    with open("/proc/stat") as stat:
        ticks = [int(value) for value in stat.readline().split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(root_pid: int) -> float:
    """CPU time of a process and all its descendants, in seconds, those that have exited too:
    a reaped child's time is in its parent's cutime and cstime (/proc/PID/stat), so gunicorn
    workers recycled by --max-requests and PostgreSQL backends that disconnected still count.
    Reads only this machine's /proc, so the server must run here."""
    own: dict[int, int] = {}
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                # After the command name in parentheses: state, ppid, …; utime, stime, cutime and
                # cstime are the 12th to 15th of those fields.
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:  # exited while we looked
            continue
        pid = int(entry)
        own[pid] = sum(int(value) for value in fields[11:15])
        children.setdefault(int(fields[1]), []).append(pid)
    ticks, pending = 0, [root_pid]
    while pending:
        pid = pending.pop()
        ticks += own.get(pid, 0)
        pending.extend(children.get(pid, ()))
    return ticks / os.sysconf("SC_CLK_TCK")


def parent_pid(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("PPid:"))
