"""How a Snakemake job's script fails: the traceback goes to the rule's log, one line naming the fix to the terminal.

A script sends stderr to its log first (workflow/scripts/*.py), so without this a failed job reads on the terminal
as a bare `CalledProcessError`:

    sys.stderr = open(snakemake.log[0], "w")
    from covbench.jobs import reported
    with reported(snakemake):
        fetch(...)
"""

import sys
import traceback
from contextlib import contextmanager

from covbench import atomic


def reason(error: BaseException) -> str:
    """Our errors are one line that names the fix; anything else gets its type, the log has the traceback."""
    text = atomic.one_line(error)
    return text if type(error).__module__.startswith("covbench") else f"{type(error).__name__}: {text}"


@contextmanager
def reported(snakemake):
    """Run a job's body: warnings (a damaged file made again) reach the terminal too, and an error becomes its
    traceback in the log plus `error in rule <rule>: <one line> (log: <path>)` on the terminal, exit status 1."""
    atomic.TERMINAL.append(sys.__stderr__)
    try:
        yield
    except Exception as error:
        traceback.print_exc()  # the rule's log
        sys.stderr.flush()
        print(
            f"error in rule {snakemake.rule}: {reason(error)} (log: {snakemake.log[0]})",
            file=sys.__stderr__,
            flush=True,
        )
        sys.exit(1)
    finally:
        atomic.TERMINAL.remove(sys.__stderr__)
