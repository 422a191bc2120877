"""Run the trainer locally under SageMaker's training contract, exactly as a training job would.

    python training_jobs/run_local.py --prepared DIR --out DIR [--spec datasets/NAME.json] [--hyperparameters JSON]

``--prepared`` is one run of the ETL job (``train/``, ``validation/``, ``test/``, ``schema.json``).
A temporary tree plays /opt/ml: the channels are copied into ``input/data/<channel>/``, the
``SM_*`` variables point at it, and ``train.py`` runs in a subprocess with the hyperparameters
as ``--name value`` arguments (the spec's ``training.hyperparameters``, then ``--hyperparameters``
on top). The model and the reports are copied to ``--out/model`` and ``--out/output``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CHANNELS = ("train", "validation", "test")
# What the training job's code holds (stacks/training.py ships the same files as sourcedir.tar.gz):
# the scripts, and the raw file's number rules from etl/ that schema_encoder.py imports.
CODE = (HERE / "train.py", HERE / "inference.py", HERE / "schema_encoder.py", HERE.parent / "etl" / "dataset_spec.py")


class Refused(Exception):
    """A command line that cannot run, said in one line."""


def read_spec(path: Path) -> dict[str, Any]:
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise Refused(f"cannot read the spec {path}: {error.strerror}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise Refused(f"the spec {path} is not JSON: {error}") from None
    if not isinstance(spec, dict):
        raise Refused(f"the spec {path} is not a JSON object")
    return spec


def check_matches(spec: Mapping[str, Any], path: Path, prepared: Path) -> None:
    """The spec is the one the prepared run was made with (schema.json names its dataset)."""
    try:
        dataset = json.loads((prepared / "schema.json").read_text(encoding="utf-8")).get("dataset")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError) as error:
        raise Refused(f"{prepared}/schema.json is not a prepared run's schema: {error}") from None
    if dataset != spec.get("dataset"):
        raise Refused(f"the spec {path} is for {spec.get('dataset')!r}, but {prepared} was prepared for {dataset!r}")


def hyperparameters_from_spec(spec: Mapping[str, Any], path: Path) -> dict[str, Any]:
    training = spec.get("training", {})
    if training.get("algorithm", "xgboost") != "xgboost":
        raise Refused(
            f"{path} trains with {training['algorithm']}, a SageMaker built-in algorithm; "
            "run_local runs the XGBoost trainer"
        )
    return {
        **training.get("hyperparameters", {}),
        **({"objective_metric": training["objective_metric"]} if "objective_metric" in training else {}),
        **({"threshold_criterion": training["threshold_criterion"]} if "threshold_criterion" in training else {}),
        **{name: training[name] for name in ("false_positive_cost", "false_negative_cost") if name in training},
    }


def contract(root: Path, hyperparameters: dict[str, Any]) -> dict[str, str]:
    """The environment SageMaker gives a script-mode training container."""
    data = root / "input" / "data"
    env = {f"SM_CHANNEL_{name.upper()}": str(data / name) for name in (*CHANNELS, "schema")}
    return env | {
        "SM_CHANNELS": json.dumps([*CHANNELS, "schema"]),
        "SM_MODEL_DIR": str(root / "model"),
        "SM_OUTPUT_DATA_DIR": str(root / "output" / "data"),
        "SM_OUTPUT_DIR": str(root / "output"),
        "SM_INPUT_DIR": str(root / "input"),
        "SM_HPS": json.dumps(hyperparameters),
        "SM_HOSTS": json.dumps(["algo-1"]),
        "SM_CURRENT_HOST": "algo-1",
        "SM_NUM_CPUS": str(os.cpu_count() or 1),
        "SM_NUM_GPUS": "0",
    }


def run(prepared: Path, out: Path, hyperparameters: dict[str, Any]) -> int:
    missing = [name for name in (*CHANNELS, "schema.json") if not (prepared / name).exists()]
    if missing:
        print(f"error: {prepared} is not a prepared run (missing {', '.join(missing)})", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="sm-local-") as tmp:
        root = Path(tmp)
        for channel in CHANNELS:
            shutil.copytree(prepared / channel, root / "input" / "data" / channel)
        (root / "input" / "data" / "schema").mkdir(parents=True)
        shutil.copyfile(prepared / "schema.json", root / "input" / "data" / "schema" / "schema.json")
        code = root / "code"  # the job's code folder, as SageMaker unpacks sourcedir.tar.gz
        code.mkdir()
        for module in CODE:
            shutil.copyfile(module, code / module.name)
        arguments = [item for name, value in hyperparameters.items() for item in (f"--{name}", str(value))]
        env = {**os.environ, **contract(root, hyperparameters)}
        result = subprocess.run([sys.executable, str(code / "train.py"), *arguments], env=env, check=False)
        if result.returncode != 0:
            return result.returncode
        out.mkdir(parents=True, exist_ok=True)
        for name, source in (("model", root / "model"), ("output", root / "output" / "data")):
            shutil.rmtree(out / name, ignore_errors=True)
            shutil.copytree(source, out / name)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prepared", required=True, type=Path, help="a prepared run folder from etl/prepare.py")
    parser.add_argument("--out", required=True, type=Path, help="where model/ and output/ go")
    parser.add_argument("--spec", type=Path, help="dataset spec whose training.hyperparameters to use")
    parser.add_argument("--hyperparameters", default="{}", help="JSON object of hyperparameters (on top of the spec's)")
    args = parser.parse_args(argv)
    try:
        extra = json.loads(args.hyperparameters)
    except json.JSONDecodeError as error:
        parser.error(f"--hyperparameters is not JSON: {error}")
    if not isinstance(extra, dict):
        parser.error("--hyperparameters must be a JSON object")
    try:
        if not args.prepared.is_dir():
            raise Refused(f"{args.prepared} is not a folder (a prepared run from etl/prepare.py)")
        from_spec = {}
        if args.spec:
            spec = read_spec(args.spec)
            if (args.prepared / "schema.json").is_file():
                check_matches(spec, args.spec, args.prepared)
            from_spec = hyperparameters_from_spec(spec, args.spec)
    except Refused as refused:
        print(f"error: {refused}", file=sys.stderr)
        return 2
    return run(args.prepared, args.out, {**from_spec, **extra})


if __name__ == "__main__":
    sys.exit(main())
