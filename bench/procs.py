"""What the benchmarks learn about the processes they start and about the machine: peak memory, load, speed."""

from __future__ import annotations

import os
import time
from pathlib import Path

from devstack.services import Service


def _group_members(pgid: int) -> list[int]:
    """The processes of group ``pgid`` and their descendants (PostgreSQL's backends start sessions of their own)."""
    parents: dict[int, int] = {}
    groups: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After the command: state, parent, process group.
        parents[int(entry.name)], groups[int(entry.name)] = int(fields[1]), int(fields[2])
    members = {pid for pid, group in groups.items() if group == pgid}
    grew = True
    while grew:
        children = {pid for pid, parent in parents.items() if parent in members} - members
        members |= children
        grew = bool(children)
    return sorted(members)


def peak_rss_mb(service: Service) -> dict[str, float]:
    """Each running process of ``service`` (its process group: workers and children too) by ``command[pid]``,
    with its peak resident memory so far (the kernel's VmHWM), in MiB. Call it before stopping the service."""
    if service.process is None:
        return {}
    peaks: dict[str, float] = {}
    for pid in _group_members(service.process.pid):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            command = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                peaks[f"{command}[{pid}]"] = round(int(line.split()[1]) / 1024, 1)
    return peaks


def speed_gauge_ms() -> float:
    """Milliseconds of one fixed piece of pure Python (the best of three): how fast this machine runs Python
    right now. Figures of two runs compare only as far as their gauges do; this machine's has moved 2× from
    one session to the next."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        total = 0
        for n in range(300_000):
            total += n * n % 7
        best = min(best, time.perf_counter() - started)
    return round(best * 1000, 1)


def machine() -> dict[str, float]:
    """CPUs, the load average (1 and 5 minutes) and the speed gauge now: how shared, and how fast, the machine was."""
    one, five, _ = os.getloadavg()
    return {
        "cpus": float(os.cpu_count() or 0),
        "load_1m": round(one, 2),
        "load_5m": round(five, 2),
        "speed_gauge_ms": speed_gauge_ms(),
    }
