"""notebooks/starter.ipynb runs top to bottom, headless, on a real prepared dataset, with no AWS
credentials."""

from __future__ import annotations

import nbformat
from nbclient import NotebookClient

from tests.conftest import ROOT


def test_the_starter_notebook_runs_headless_on_real_data(prepared, tmp_path, monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PREPARED_DIR", str(prepared["bank-marketing"].output))
    monkeypatch.setenv("DATASET", "bank-marketing")
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
    assert len(images) >= 4  # histograms, scatter matrix, heat map, confusion matrix + ROC
    text = "\n".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "bank-marketing: target 'y' (binary)" in text
    assert "trained binary model: test auc" in text
    assert (tmp_path / "model" / "output" / "evaluation.json").exists()
