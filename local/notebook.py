"""A notebook run top to bottom on the twin, as a person in Studio runs it.

The twin is an emulated account inside this process (moto's, with the twin's hooks), so a kernel
in another process could not reach it: the cells run in an IPython shell here, in order, as the
person's role (every request they make is recorded, refused as AWS would refuse it where the
deployed policies say so, and proven afterwards), with the SDK's defaults file their JupyterLab
app would hold (``local.sdk``) and the notebook's settings in the environment.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from local.sdk import studio_defaults
from local.trace import acting_as

if TYPE_CHECKING:
    from local.platform import Twin

SDK_USER_CONFIG = "SAGEMAKER_USER_CONFIG_OVERRIDE"  # where the SDK reads the user's defaults file


class CellFailed(RuntimeError):
    """A cell raised: the notebook stops there, as Jupyter's "run all" does."""


@dataclass
class NotebookRun:
    outputs: list[str] = field(default_factory=list)  # each code cell's printed text, in order
    cells: int = 0


@contextlib.contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def run_notebook(
    twin: Twin, notebook: Path, *, person: str, user: str, environment: Mapping[str, str], folder: Path
) -> NotebookRun:
    """Run every code cell of ``notebook`` as ``person`` (a data scientist's role ARN) with
    ``user``'s SDK defaults file; ``environment`` is what the notebook reads (PREPARED_DIR...)."""
    import nbformat
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    defaults = folder / "sagemaker" / "config.yaml"
    defaults.parent.mkdir(parents=True, exist_ok=True)
    defaults.write_text(studio_defaults(twin, user), encoding="utf-8")
    cells = [c for c in nbformat.read(notebook, as_version=4).cells if c.cell_type == "code"]

    class Shell(InteractiveShell):
        def enable_gui(self, gui=None):  # no GUI event loop: figures are drawn by the Agg backend
            return None

    run = NotebookRun()
    shell = Shell(colors="NoColor")
    values = {**environment, SDK_USER_CONFIG: str(defaults), "MPLBACKEND": "Agg", "TMPDIR": str(folder)}
    tempfile.tempdir = None  # TMPDIR is read again
    try:
        # Studio's calls of the user's role carry the profile's name as source identity.
        with _environment(values), acting_as(person, source_identity=user):
            for number, cell in enumerate(cells, start=1):
                with capture_output() as captured:
                    result = shell.run_cell(cell.source, store_history=False)
                run.outputs.append(captured.stdout)
                run.cells = number
                if not result.success:
                    error = result.error_in_exec or result.error_before_exec
                    raise CellFailed(f"code cell {number} failed: {error!r}\n{captured.stdout[-2000:]}") from error
    finally:
        tempfile.tempdir = None
        shell.cleanup()
        Shell.clear_instance()
    return run
