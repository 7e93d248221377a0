"""Reading a process tree from ``/proc``: the descendants of a pid, their status and command lines.

Shared by the fault tests (kill a whole ``ansible`` tree: its workers call setsid(), so the module is not in the
command's process group) and the benchmarks (peak RSS of the tree).
"""

from __future__ import annotations

from pathlib import Path

PROC = Path("/proc")


def _parents() -> dict[int, int]:
    """pid -> parent pid of every process alive now."""
    parents = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ')'
        parents[int(entry.name)] = int(stat.rpartition(")")[2].split()[1])
    return parents


def descendants(root: int) -> list[int]:
    """Pids of every process below ``root`` (not ``root`` itself)."""
    children: dict[int, list[int]] = {}
    for pid, parent in _parents().items():
        children.setdefault(parent, []).append(pid)
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def status(pid: int) -> dict[str, str]:
    """The fields of ``/proc/<pid>/status`` (empty when the process is gone)."""
    fields = {}
    try:
        for line in (PROC / str(pid) / "status").read_text().splitlines():
            key, _sep, value = line.partition(":")
            fields[key] = value.strip()
    except OSError:
        pass
    return fields


def kb(value: str | None) -> int:
    """Kilobytes of a status field such as ``VmHWM: 1234 kB`` (0 when missing)."""
    return int(value.split()[0]) if value else 0


def cmdline(pid: int) -> str:
    """The command line of ``pid``, arguments joined by spaces (empty when the process is gone)."""
    try:
        return (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""
