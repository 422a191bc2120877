"""A per-process scratch folder for the files synthesis assembles before CDK stages them as assets
(a Lambda folder with shared modules, the training code tarball).

CDK fingerprints an asset's content and copies it into the cloud assembly, so the source can live
anywhere: here a temporary folder removed when the process exits. Synthesis then writes nothing
into the repository, and two syntheses at once (parallel tests, a synth beside ``make local``)
never share a folder.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from functools import cache
from pathlib import Path


@cache
def build_folder() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="ml-platform-build-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder
