"""Run a ``studio`` command of *this* checkout in a child process and time it.

The evaluations (a card's whole-process figures) and ``studio bench`` time commands as a user
runs them: a fresh interpreter, start to exit. The child runs this checkout's code (its folder
is the working directory and first on ``PYTHONPATH``: an installed ``studio`` elsewhere is not
measured instead), under a small launcher process, so the peak memory and CPU time are those
of the command's own processes, not of the process that forked it. Paths in the arguments
must be absolute.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import StudioError

ROOT = str(Path(__file__).resolve().parents[2])  # holds this studio/

_LAUNCHER = ("import resource, subprocess, sys, time\n"
             "t0 = time.perf_counter()\n"
             "r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL)\n"
             "wall = time.perf_counter() - t0\n"
             "u = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
             "print(f'@@child {wall} {u.ru_utime + u.ru_stime} {u.ru_maxrss}', file=sys.stderr)\n"
             "sys.exit(r.returncode)\n")


@dataclass
class ChildRun:
    seconds: float  # wall time of the command alone (the launcher's own start excluded)
    cpu_seconds: float  # user + system time of the command's processes
    peak_mib: int  # peak resident memory of the largest of them
    code: int  # exit code (-9: killed at the timeout)
    stderr: str  # the end of what it wrote to stderr

    @property
    def ok(self) -> bool:
        return self.code == 0

    def last_line(self) -> str:
        lines = self.stderr.strip().splitlines()
        return lines[-1] if lines else f"exit code {self.code}"


def child_env(env: dict | None = None) -> dict:
    """This process's environment plus ``env``, with this checkout first on ``PYTHONPATH``."""
    out = dict(os.environ, **(env or {}))
    out["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, out.get("PYTHONPATH", "")) if p)
    return out


def run_python(args: list[str], env: dict | None = None, timeout: float = 300) -> ChildRun:
    """Run ``python ARGS`` (this interpreter; e.g. ``["-m", "studio", ...]`` or ``["-c", code]``)
    with this checkout's code and time it; ``env`` is added to this process's environment."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", _LAUNCHER, sys.executable, *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=child_env(env), cwd=ROOT, start_new_session=True)
    try:
        err = proc.communicate(timeout=timeout)[1]
        code = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the launcher and the command it started
        err = proc.communicate()[1] + f"\ntimed out after {timeout:g} s".encode()
        code = -9
    err = err.decode(errors="replace")
    wall, cpu, peak = time.perf_counter() - t0, 0.0, 0
    lines = []
    for line in err.splitlines():
        if line.startswith("@@child "):
            w, c, kib = line.split()[1:]
            wall, cpu, peak = float(w), float(c), int(kib) // 1024
        else:
            lines.append(line)
    return ChildRun(wall, cpu, peak, code, "\n".join(lines)[-2000:])


def run_studio(*args: str, env: dict | None = None, timeout: float = 300, check: bool = False) -> ChildRun:
    """Run and time ``studio ARGS``; with ``check``, a failed run raises StudioError with its error."""
    r = run_python(["-m", "studio", *args], env, timeout)
    if check and not r.ok:
        raise StudioError(f"studio {args[0] if args else ''} failed: {r.stderr.strip()[-300:] or r.last_line()}")
    return r
