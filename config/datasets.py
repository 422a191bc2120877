"""The dataset specs a synthesis deploys: every ``datasets/<name>.json``, and a user's own spec
files for ``make local SPEC=...``. Loaded and checked once per synthesis (``app.py``) and passed
down to the stacks: a broken spec fails synth, never a deployed job.

The specs are checked by the runtime's own parser (``etl/dataset_spec.py``, the module the Glue
job and the functions run), imported as a plain module of this repository.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from etl.dataset_spec import SpecError, load_spec

DATASETS_DIR = Path(__file__).resolve().parents[1] / "datasets"


def dataset_specs(extra: Iterable[Path] = (), folder: Path = DATASETS_DIR) -> dict[str, Path]:
    """Each dataset's name and spec file: those in ``folder``, then ``extra``."""
    found: dict[str, Path] = {}
    for path in sorted(folder.glob("*.json")):
        spec = load_spec(path.read_text(encoding="utf-8"), source=path.name)
        if spec.name != path.stem:
            raise SpecError(spec.name, None, f"the spec's file must be named {spec.name}.json, not {path.name}")
        found[spec.name] = path
    for path in extra:
        if not path.is_file():
            raise SpecError(path.stem, None, f"spec file {path} does not exist")
        spec = load_spec(path.read_text(encoding="utf-8"), source=str(path))
        if spec.name in found:
            raise SpecError(spec.name, None, f"{path} names a dataset that {found[spec.name]} already defines")
        found[spec.name] = path
    return found
