"""docs/architecture.svg stays true to the stacks the app synthesizes."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _drawing():
    spec = importlib.util.spec_from_file_location("architecture", ROOT / "docs" / "architecture.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def test_committed_picture_is_the_generated_one():
    drawing = _drawing()
    assert drawing.OUT.read_text(encoding="utf-8") == drawing.render(), "run: python docs/architecture.py"


def test_picture_marks_exactly_the_synthesized_stacks_as_built(dev):
    svg = (ROOT / "docs" / "architecture.svg").read_text(encoding="utf-8")
    built = set(re.findall(r'class="stack built" data-stack="(\w+)"', svg))
    planned = set(re.findall(r'class="stack planned" data-stack="(\w+)"', svg))
    # MlPlatform-<stage>-<Layer>[-<dataset>]: the picture draws each layer once.
    in_app = {stack.stack_name.split("-")[2] for stack in dev.stacks.values()}
    assert built == in_app
    assert not planned & in_app
