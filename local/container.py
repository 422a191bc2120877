"""A warm container for script-mode entry points: each job runs in a fresh process of its own,
forked from a server that has already imported the framework container's libraries.

The SageMaker training toolkit starts the entry point as a new Python process with the job's
argv, environment and working folder. Importing NumPy, pandas, XGBoost and scikit-learn takes
about 2 s of that on this machine, for every one of a tuning job's training jobs. Here each job
is still its own process (nothing is shared between jobs: the process is forked, runs the
script as ``__main__`` and exits), but the libraries are loaded once, in the fork server, as
they sit installed in the container image. Standard library only: the fork server imports this
module.
"""

from __future__ import annotations

import importlib.util
import multiprocessing
import os
import runpy
import sys
import traceback
from pathlib import Path

# What the XGBoost framework container ships and train.py imports.
PRELOAD = ("numpy", "pandas", "xgboost", "sklearn.metrics")
_CONTEXT = None


def _context():
    global _CONTEXT
    if _CONTEXT is None:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([name for name in PRELOAD if importlib.util.find_spec(name.split(".")[0])])
        _CONTEXT = context
    return _CONTEXT


def run(
    program: str, argv: list[str], env: dict[str, str], cwd: Path, cpus: tuple[int, ...], logs: Path, timeout: float
) -> int | None:
    """Run ``program`` as ``__main__``; its exit code, or None when it ran past ``timeout``.
    stdout and stderr go to ``logs``/stdout.txt and ``logs``/stderr.txt."""
    process = _context().Process(target=_entry, args=(program, argv, env, str(cwd), cpus, str(logs)), daemon=True)
    process.start()
    process.join(timeout)
    if process.is_alive():
        process.kill()
        process.join()
        return None
    return process.exitcode


def _entry(program: str, argv: list[str], env: dict[str, str], cwd: str, cpus: tuple[int, ...], logs: str) -> None:
    for fd, name in ((1, "stdout.txt"), (2, "stderr.txt")):
        target = os.open(os.path.join(logs, name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(target, fd)
        os.close(target)
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115 - the process's own streams
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    if cpus and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, cpus)
    sys.argv = [program, *argv]
    sys.path.insert(0, cwd)
    code = 0
    try:
        runpy.run_path(program, run_name="__main__")
    except SystemExit as exit_:
        if isinstance(exit_.code, str):
            print(exit_.code, file=sys.stderr)
            code = 1
        else:
            code = exit_.code or 0
    except BaseException:
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
