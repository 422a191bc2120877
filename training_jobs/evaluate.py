"""The platform's evaluation of a built-in algorithm's model (Linear Learner, k-NN) or of an
Autopilot model, as a script-mode job of the XGBoost framework container: the same
``evaluation.json`` as train.py's, and the platform's half of the model's inference pipeline
(pipeline.py).

register_model scores the validation and test splits with the algorithm's model (a batch
transform job) and then starts this job. It is a training job in SageMaker's terms, and it fits
one thing: the decision threshold, chosen on the validation scores by the spec's criterion,
exactly as train.py chooses it. Everything else is measured on the test split.

Contract (the training toolkit's, as train.py's):

- channels ``validation`` and ``test``, ``scores`` (the transform's output: ``validation/<file>.out``
  and ``test/<file>.out``, one answer per line of ``<file>``, in its order) and ``schema``
  (``schema.json``). For Linear Learner and k-NN, ``validation`` and ``test`` are the prepared
  run's splits (target first as its label, no header) and the scores the algorithm's JSON lines
  (the transform of the prepared CSV without its target, ``InputFilter: $[1:]``, answers in
  ``application/jsonlines``). For Autopilot (``--algorithm autopilot``) they are the raw-feature
  view's scoring files (``autopilot/scoring/validation/`` and ``.../test/``: target first as the
  class name of schema.json's ``target.classes``, or the number for a regression; no header) and
  the scores Autopilot's ``text/csv`` (pipeline.autopilot_predictions: per line
  ``probabilities,labels``, or the value for a regression);
- hyperparameters ``algorithm``, ``objective_metric``, ``threshold_criterion``,
  ``false_positive_cost``, ``false_negative_cost``, ``trained_by`` and ``scored_by`` (the jobs
  whose model and scores these are);
- ``SM_OUTPUT_DATA_DIR/evaluation.json``; ``SM_MODEL_DIR``: ``schema.json``, ``model-info.json``
  (problem, classes, algorithm, threshold) and ``code/`` (pipeline.py and what it imports), the
  model folder of the pipeline's first and last containers.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from dataset_spec import parse_number
from pipeline import ALGORITHMS, AUTOPILOT, autopilot_predictions, scores_of
from train import INFERENCE_CODE, THRESHOLD_CRITERIA, judged, write_reports

PIPELINE_CODE = (*INFERENCE_CODE, "pipeline.py")
CODE_DIR = Path(__file__).resolve().parent  # the job's code: these scripts and dataset_spec.py beside them
SPLITS = ("validation", "test")
JSONLINES = "application/jsonlines"


def parse_hyperparameters(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description="evaluation of a built-in algorithm's or Autopilot's model (SageMaker script mode)"
    )
    parser.add_argument("--algorithm", choices=ALGORITHMS, required=True)
    parser.add_argument("--objective_metric", default="")
    parser.add_argument("--threshold_criterion", choices=THRESHOLD_CRITERIA, default="f1")
    parser.add_argument("--false_positive_cost", type=float, default=None)
    parser.add_argument("--false_negative_cost", type=float, default=None)
    parser.add_argument("--trained_by", default="")
    parser.add_argument("--scored_by", default="")
    args, unknown = parser.parse_known_args(argv)
    stray = [a for a in unknown if a.startswith("--") and not a.startswith("--sagemaker_")]
    if stray:
        parser.error(f"unknown hyperparameters {stray}")
    if args.threshold_criterion == "cost" and None in (args.false_positive_cost, args.false_negative_cost):
        parser.error("--threshold_criterion cost needs --false_positive_cost and --false_negative_cost")
    return vars(args)


def paired(
    split_dir: Path, scores_dir: Path, algorithm: str, problem: str, classes: list[str]
) -> tuple[np.ndarray, Any]:
    """The split's targets and the algorithm's scores of the same records, file by file: each
    ``<file>`` of the split beside ``<file>.out`` of the transform, line by line."""
    targets, scores = [], []
    for path in sorted(p for p in split_dir.rglob("*") if p.is_file() and not p.name.startswith(".")):
        if path.stat().st_size == 0:
            continue
        y = view_targets(path, problem, classes) if algorithm == AUTOPILOT else prepared_targets(path)
        answer = scores_dir / (str(path.relative_to(split_dir)) + ".out")
        if not answer.is_file():
            raise SystemExit(f"error: no scores for {path.name}: {answer} is missing")
        text = answer.read_text(encoding="utf-8")
        try:
            if algorithm == AUTOPILOT:
                predictions = autopilot_predictions(text, problem)
            else:
                predictions = [json.loads(line) for line in text.splitlines() if line.strip()]
            if len(predictions) != len(y):
                raise SystemExit(f"error: {path.name} holds {len(y)} records, its scores {len(predictions)}")
            scores.append(scores_of(predictions, algorithm, problem, classes))
        except ValueError as error:
            raise SystemExit(f"error: the scores {answer.name} of {path.name}: {error}") from None
        targets.append(y)
    if not targets:
        raise SystemExit(f"error: the split {split_dir.name} holds no record")
    return np.concatenate(targets), np.concatenate(scores)


def prepared_targets(path: Path) -> np.ndarray:
    """The targets of a prepared split's file: its first column, the label (or the value)."""
    return pd.read_csv(path, header=None, usecols=[0], dtype=np.float64).to_numpy()[:, 0]


def view_targets(path: Path, problem: str, classes: list[str]) -> np.ndarray:
    """The targets of a raw-feature view's scoring file (CSV, no header, the target first): a
    class name as its index in ``classes``, a regression's number as it is."""
    index = {name: position for position, name in enumerate(classes)}
    targets: list[float] = []
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        for fields in reader:
            if not fields:
                continue  # a blank line holds no record
            where = f"{path.name}, line {reader.line_num}"
            if problem == "regression":
                number = parse_number(fields[0])
                if number is None:
                    raise SystemExit(f"error: {where}: the target {fields[0][:40]!r} is not a number")
                targets.append(number)
            elif fields[0] in index:
                targets.append(float(index[fields[0]]))
            else:
                raise SystemExit(f"error: {where}: the target {fields[0][:40]!r} is not one of the classes {classes}")
    return np.array(targets, dtype=np.float64)


def run(env: dict[str, str], hp: dict[str, Any]) -> dict[str, Any]:
    started = time.perf_counter()
    schema_dir = Path(env["SM_CHANNEL_SCHEMA"])
    schema = json.loads((schema_dir / "schema.json").read_text(encoding="utf-8"))
    problem, classes = schema["target"]["problem"], list(schema["target"]["classes"])
    algorithm = hp["algorithm"]
    scores = Path(env["SM_CHANNEL_SCORES"])
    split = {
        name: paired(Path(env[f"SM_CHANNEL_{name.upper()}"]), scores / name, algorithm, problem, classes)
        for name in SPLITS
    }
    judgement, threshold = judged(problem, len(classes), hp, split["validation"], split["test"])
    evaluation = {
        **judgement,
        "algorithm": algorithm,
        # The rows each figure used: the algorithm trained on train (and, Linear Learner, chose its
        # own settings on validation; Autopilot on its own part of train); the threshold is chosen
        # on validation; test is held out.
        "rows": {name: len(targets) for name, (targets, _) in split.items()},
        "trained_by": hp["trained_by"],
        "scored_by": hp["scored_by"],
        "hyperparameters": {k: v for k, v in hp.items() if v is not None},
        "seconds": round(time.perf_counter() - started, 2),
    }
    model_dir, output_dir = Path(env["SM_MODEL_DIR"]), Path(env["SM_OUTPUT_DATA_DIR"])
    (model_dir / "code").mkdir(parents=True, exist_ok=True)
    output_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(schema_dir / "schema.json", model_dir / "schema.json")
    for name in PIPELINE_CODE:
        shutil.copyfile(CODE_DIR / name, model_dir / "code" / name)
    info = {
        "problem": problem,
        "classes": schema["target"]["classes"],
        "algorithm": algorithm,
        "threshold": threshold,
        "feature_names": schema["feature_names"],
    }
    write_reports(model_dir, output_dir, info, evaluation)
    return evaluation


def main(argv: list[str] | None = None) -> int:
    hp = parse_hyperparameters(sys.argv[1:] if argv is None else argv)
    needed = ("SM_CHANNEL_VALIDATION", "SM_CHANNEL_TEST", "SM_CHANNEL_SCORES", "SM_CHANNEL_SCHEMA")
    missing = [name for name in (*needed, "SM_MODEL_DIR", "SM_OUTPUT_DATA_DIR") if name not in os.environ]
    if missing:
        print(f"error: the SageMaker contract is not set up: missing {', '.join(missing)}", file=sys.stderr)
        return 2
    evaluation = run(dict(os.environ), hp)
    objective = evaluation["objective_metric"]
    print(f"evaluated {hp['algorithm']}: test {objective} = {evaluation['test'][objective]:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
