"""CPU seconds of a command's whole process tree: the way to compare two versions of a Spark step
on a machine other people are using (wall time there says more about them than about the step).

The Spark driver JVM outlives the Python process that started it (it exits when its parent's pipe
closes), so ``time`` misses it. This runs the command as a child of a Linux *child subreaper*:
orphans anywhere below (JVMs, Jupyter kernels, ``spark-pipelines``) are re-parented here and
waited for, so ``getrusage(RUSAGE_CHILDREN)`` counts every process of the tree. Linux only.

    python benchmarks/cpu_time.py -- medilake_lab run 01 -w /tmp/wh
"""

from __future__ import annotations

import argparse
import ctypes
import os
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

PR_SET_CHILD_SUBREAPER = 36  # <linux/prctl.h>


@dataclass(frozen=True)
class TreeTime:
    """What a command's process tree cost: ``user``/``system`` CPU seconds of all its processes,
    ``wall`` seconds until the command exited, ``drain`` seconds more until its last orphan
    (typically the Spark JVM shutting down) exited, and the command's exit ``code``."""

    user: float
    system: float
    wall: float
    drain: float
    code: int

    @property
    def cpu(self) -> float:
        """User + system CPU seconds."""
        return self.user + self.system


def tree_time(cmd: Sequence[str], env: dict[str, str] | None = None) -> TreeTime:
    """Run ``cmd`` (environment: this one plus ``env``) and measure its whole process tree. Makes
    this process a child subreaper for good and waits for *every* child it has: call it from a
    process of its own (the command line below, or a benchmark script), never from one holding
    other children (a test session with a Spark JVM would wait for it forever).

    Raises
    ------
    OSError: not on Linux (no child subreaper), or ``cmd`` cannot be started.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    code = subprocess.run(list(cmd), env={**os.environ, **(env or {})}, check=False).returncode
    wall = time.perf_counter() - start
    while True:  # the orphans adopted meanwhile
        try:
            os.wait()
        except ChildProcessError:
            break
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return TreeTime(user=after.ru_utime - before.ru_utime, system=after.ru_stime - before.ru_stime,
                    wall=wall, drain=time.perf_counter() - start - wall, code=code)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("cmd", nargs=argparse.REMAINDER, help="the command, after --")
    cmd = [arg for arg in parser.parse_args(argv).cmd if arg != "--"] or parser.error("no command given")
    took = tree_time(cmd)
    print(f"cpu {took.cpu:.1f} s (user {took.user:.1f}, sys {took.system:.1f}); wall {took.wall:.1f} s "
          f"+ {took.drain:.1f} s until the last orphan exited; exit {took.code}", file=sys.stderr)
    return took.code


if __name__ == "__main__":
    sys.exit(main())
