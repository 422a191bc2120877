"""python -m local refuses bad input with one message and exit status 2, before the twin starts;
extra spec files for `make local SPEC=...` are checked like the shipped ones."""

from __future__ import annotations

import json

import pytest

from local.__main__ import main
from tests.conftest import ROOT


@pytest.fixture
def run(capsys, tmp_path):
    """python -m local with its state (where each refusal writes its report) in a temporary folder."""

    def invoke(*argv: str) -> tuple[int, str]:
        if "--state" not in argv:
            argv = (*argv, "--state", str(tmp_path / "state"))
        code = main(list(argv))
        return code, capsys.readouterr().err.strip()

    return invoke


def test_a_folder_without_an_assembly_says_to_synthesize_first_and_the_report_says_so(run, tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    (state / "report.json").write_text('{"dataset": "an earlier run", "failures": []}')
    code, message = run("--assembly", str(tmp_path), "--state", str(state))
    assert code == 2
    assert message == f"error: {tmp_path} holds no manifest.json: run `make synth` (or `cdk synth`) first"
    report = json.loads((state / "report.json").read_text())
    assert report["steps"] == [] and report["failures"] == [f"input: {message.removeprefix('error: ')}"]


def test_a_manifest_without_artifacts_is_not_an_assembly(run, tmp_path):
    (tmp_path / "manifest.json").write_text("{}")
    code, message = run("--assembly", str(tmp_path), "--state", str(tmp_path / "state"))
    assert code == 2 and message.startswith(f"error: {tmp_path / 'manifest.json'} is not a cloud assembly manifest")


def test_an_unknown_dataset_names_the_ones_the_assembly_has(run, dev):
    code, message = run("--assembly", str(dev.outdir), "--dataset", "iris")
    assert code == 2
    assert message == (
        f"error: dataset 'iris' has no spec in {dev.outdir}; "
        "known: bank-marketing, car-evaluation, vertebral-column, wine-quality"
    )


def test_a_missing_data_file_is_named(run, dev, tmp_path):
    code, message = run("--assembly", str(dev.outdir), "--data", str(tmp_path / "none.csv"))
    assert (code, message) == (2, f"error: {tmp_path / 'none.csv'} is not a file")


def test_a_spec_that_is_not_json_is_refused(run, dev, tmp_path):
    spec = tmp_path / "spec.json"
    spec.write_text("{not json")
    code, message = run("--assembly", str(dev.outdir), "--spec", str(spec))
    assert code == 2 and message.startswith(f"error: {spec}: not a readable JSON spec")


def test_a_spec_whose_dataset_the_assembly_lacks_says_to_synthesize_it(run, dev, tmp_path):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"dataset": "spine"}))
    code, message = run("--assembly", str(dev.outdir), "--spec", str(spec))
    assert code == 2 and message.startswith(f"error: dataset 'spine' has no spec in {dev.outdir}")


def test_extra_spec_files_are_checked_like_the_shipped_ones(tmp_path):
    from config.datasets import dataset_specs
    from etl.dataset_spec import SpecError

    own = json.loads((ROOT / "datasets" / "vertebral-column.json").read_text())
    (tmp_path / "spine.json").write_text(json.dumps({**own, "dataset": "spine"}))
    specs = dataset_specs((tmp_path / "spine.json",))
    assert specs["spine"] == tmp_path / "spine.json" and "bank-marketing" in specs

    (tmp_path / "twin.json").write_text(json.dumps(own))
    with pytest.raises(SpecError, match=r"names a dataset that .*vertebral-column\.json already defines"):
        dataset_specs((tmp_path / "twin.json",))
    with pytest.raises(SpecError, match="does not exist"):
        dataset_specs((tmp_path / "missing.json",))
    (tmp_path / "broken.json").write_text(json.dumps({"dataset": "broken", "csv": {}}))
    with pytest.raises(SpecError, match=r"dataset .broken.: csv\.header must be true or false"):
        dataset_specs((tmp_path / "broken.json",))
