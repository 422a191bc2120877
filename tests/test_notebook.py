"""notebooks/starter.ipynb runs top to bottom, headless, on real prepared datasets, with no AWS
credentials: bank marketing (numeric and one-hot features, binary) and car evaluation (ordinal
features only, no numeric one, multiclass), the two ends of what the shipped specs hold."""

from __future__ import annotations

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import ROOT

# dataset -> what the notebook must say about it (its own summary line, and the trainer's)
EXPECTED = {
    "bank-marketing": ("bank-marketing: target 'y' (binary)", "trained binary model: test auc"),
    "car-evaluation": ("car-evaluation: target 'class' (multiclass)", "trained multiclass model: test accuracy"),
}


@pytest.mark.parametrize("dataset", sorted(EXPECTED))
def test_the_starter_notebook_runs_headless_on_real_data(dataset, prepared, tmp_path, monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PREPARED_DIR", str(prepared[dataset].output))
    monkeypatch.setenv("DATASET", dataset)
    monkeypatch.setenv("REPO_DIR", str(ROOT))
    monkeypatch.setenv("OUT_DIR", str(tmp_path / "model"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    notebook = nbformat.read(ROOT / "notebooks" / "starter.ipynb", as_version=4)
    NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()

    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    # distributions, scatter matrix (or the class shares per category), heat map, evaluation
    assert len(images) >= 4
    text = "\n".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    summary, trained = EXPECTED[dataset]
    assert summary in text
    assert trained in text
    assert (tmp_path / "model" / "output" / "evaluation.json").exists()
