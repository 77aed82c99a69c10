"""A stand-in for ZenML's step entrypoint in the step server's tests.

``main()`` reads ``sys.argv`` as the real entrypoint does: ``echo NAME``
prints the working directory, the value of the variable NAME and the
arguments; ``exit N`` exits with status N; ``sleep S`` sleeps S seconds;
``raise`` raises an exception.
"""

from __future__ import annotations

import os
import sys
import time


def main() -> None:
    """Act on ``sys.argv[1:]`` (see the module docstring)."""
    action, *rest = sys.argv[1:]
    if action == "echo":
        print(f"cwd={os.getcwd()}")
        print(f"var={os.environ.get(rest[0], '<unset>')}")
        print(f"argv={' '.join(sys.argv[1:])}", end="")
    elif action == "exit":
        print("about to exit")
        sys.exit(int(rest[0]))
    elif action == "sleep":
        print(f"sleeping pid={os.getpid()}", flush=True)
        time.sleep(float(rest[0]))
    elif action == "raise":
        raise RuntimeError("the fake step failed")
