"""Assets that synthesis assembles itself, through CDK's local bundling.

A function's code is its handler folder plus the shared runtime modules; the training code is a
``sourcedir.tar.gz`` built from ``training_jobs/``. CDK stages both: it calls :class:`Assemble`
with a folder inside the cloud assembly's output directory, fingerprints what was written there
(``AssetHashType.OUTPUT``, so a change to a shared module changes every asset that ships it) and
keeps it as the asset. Synthesis writes nothing into the repository, and two syntheses with
different output directories never share a folder. No container image is ever pulled: local
bundling always succeeds, and the image CDK requires to be named is never used.
https://docs.aws.amazon.com/cdk/api/v2/python/aws_cdk/ILocalBundling.html
"""

from __future__ import annotations

import gzip
import io
import shutil
import tarfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, BundlingOutput, DockerImage, ILocalBundling

NEVER_PULLED = DockerImage.from_registry("local-bundling-only")
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc")


@jsii.implements(ILocalBundling)
class Assemble:
    """Local bundling by a plain function that writes the asset into the folder it is given."""

    def __init__(self, write: Callable[[Path], None]) -> None:
        self._write = write

    def try_bundle(self, output_dir: str, *_options: Any, **_keywords: Any) -> bool:
        self._write(Path(output_dir))
        return True


def bundling(write: Callable[[Path], None], *, archived: bool = False) -> dict[str, Any]:
    """Keyword arguments for an asset (``Code.from_asset``, ``assets.Asset``) assembled by ``write``."""
    return {
        "asset_hash_type": AssetHashType.OUTPUT,
        "bundling": BundlingOptions(
            image=NEVER_PULLED,
            local=Assemble(write),
            output_type=BundlingOutput.ARCHIVED if archived else BundlingOutput.NOT_ARCHIVED,
        ),
    }


def folder_with(source: Path, modules: Iterable[Path]) -> Callable[[Path], None]:
    """``source``'s files and ``modules`` beside them."""
    modules = tuple(modules)

    def write(output: Path) -> None:
        shutil.copytree(source, output, ignore=IGNORED, dirs_exist_ok=True)
        for module in modules:
            shutil.copyfile(module, output / module.name)

    return write


def tarball_of(
    source: Path, names: Iterable[str], archive: str, *, shared: Iterable[Path] = ()
) -> Callable[[Path], None]:
    """``names`` from ``source``, and the ``shared`` modules beside them, as one gzipped tar named
    ``archive``; byte-stable (no times, fixed modes), so its hash changes only with the files'
    contents."""
    files = [(name, source / name) for name in names] + [(module.name, module) for module in shared]

    def write(output: Path) -> None:
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for name, path in files:
                data = path.read_bytes()
                info = tarfile.TarInfo(name)
                info.size, info.mtime, info.mode = len(data), 0, 0o644
                tar.addfile(info, io.BytesIO(data))
        (output / archive).write_bytes(gzip.compress(raw.getvalue(), mtime=0))

    return write
