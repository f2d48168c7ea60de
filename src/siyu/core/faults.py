"""Named fault points: crash tests make a process SIGKILL itself at an exact instant.

`SIYU_FAULTS="jobs.after_external:3,jobs.before_done:7"` kills the process at the 3rd time it passes
`fault("jobs.after_external")`, or the 7th time it passes `fault("jobs.before_done")`, whichever comes
first. Unset (production), `fault()` is a dictionary lookup that finds nothing.
"""

from __future__ import annotations

import os
import signal
import sys
from collections import Counter

# Where the worker can be killed; tests iterate over these.
POINTS: tuple[str, ...] = (
    "jobs.after_claim",  # the claim is committed, nothing of the batch has run
    "jobs.before_handler",  # about to start one job
    "jobs.before_external",  # an external job's start is committed, the call not yet made
    "jobs.after_external",  # the external call returned, its done mark not yet committed
    "jobs.before_done",  # the handler returned, the done mark not yet committed
    "jobs.after_done",  # the done mark is committed
    "broadcasts.mid_chunk",  # half of a broadcast chunk's recipients queued, the chunk not committed
)

_plan: dict[str, int] | None = None
_hits: Counter[str] = Counter()


def parse(spec: str) -> dict[str, int]:
    """`"a:3,b:7"` as {"a": 3, "b": 7}; raises ValueError naming a bad entry."""
    plan: dict[str, int] = {}
    for entry in filter(None, (part.strip() for part in spec.split(","))):
        name, _, count = entry.partition(":")
        if name not in POINTS or not count.isdigit() or int(count) < 1:
            raise ValueError(f"bad fault {entry!r}: expected <point>:<n>, point one of {', '.join(POINTS)}")
        plan[name] = int(count)
    return plan


def configure(spec: str | None) -> None:
    """Use this plan from now on (None: read SIYU_FAULTS again); hit counts start over."""
    global _plan
    _plan = None if spec is None else parse(spec)
    _hits.clear()


def fault(name: str) -> None:
    """Pass a fault point: at the planned hit, the process kills itself without any cleanup."""
    global _plan
    if _plan is None:
        from siyu.settings import get_settings

        _plan = parse(get_settings().faults)
    if name not in _plan:
        return
    _hits[name] += 1
    if _hits[name] == _plan[name]:
        sys.stderr.write(f"siyu fault {name}:{_hits[name]} hit, SIGKILL pid {os.getpid()}\n")
        sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGKILL)
