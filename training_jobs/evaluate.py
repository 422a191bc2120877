"""The platform's evaluation of a built-in algorithm's model (Linear Learner, k-NN), as a
script-mode job of the XGBoost framework container: the same ``evaluation.json`` as train.py's,
and the platform's half of the model's inference pipeline (pipeline.py).

register_model scores the validation and test splits with the algorithm's model (a batch
transform job of the prepared CSV without its target, ``InputFilter: $[1:]``, answers in
``application/jsonlines``) and then starts this job. It is a training job in SageMaker's terms,
and it fits one thing: the decision threshold, chosen on the validation scores by the spec's
criterion, exactly as train.py chooses it. Everything else is measured on the test split.

Contract (the training toolkit's, as train.py's):

- channels ``validation`` and ``test`` (the prepared run's splits: target first, no header),
  ``scores`` (the transform's output: ``validation/<file>.out`` and ``test/<file>.out``, one
  prediction per line of ``<file>``, in its order) and ``schema`` (``schema.json``);
- hyperparameters ``algorithm``, ``objective_metric``, ``threshold_criterion``,
  ``false_positive_cost``, ``false_negative_cost``, ``trained_by`` and ``scored_by`` (the jobs
  whose model and scores these are);
- ``SM_OUTPUT_DATA_DIR/evaluation.json``; ``SM_MODEL_DIR``: ``schema.json``, ``model-info.json``
  (problem, classes, algorithm, threshold) and ``code/`` (pipeline.py and what it imports), the
  model folder of the pipeline's first and last containers.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pipeline import ALGORITHMS, scores_of
from train import INFERENCE_CODE, THRESHOLD_CRITERIA, judged, write_reports

PIPELINE_CODE = (*INFERENCE_CODE, "pipeline.py")
CODE_DIR = Path(__file__).resolve().parent  # the job's code: these scripts and dataset_spec.py beside them
SPLITS = ("validation", "test")
JSONLINES = "application/jsonlines"


def parse_hyperparameters(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description="evaluation of a built-in algorithm's model (SageMaker script mode)")
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


def paired(split_dir: Path, scores_dir: Path, algorithm: str, problem: str, classes: int) -> tuple[np.ndarray, Any]:
    """The split's targets and the algorithm's scores of the same records, file by file: each
    ``<file>`` of the split beside ``<file>.out`` of the transform, line by line."""
    targets, scores = [], []
    for path in sorted(p for p in split_dir.rglob("*") if p.is_file() and not p.name.startswith(".")):
        if path.stat().st_size == 0:
            continue
        y = pd.read_csv(path, header=None, usecols=[0], dtype=np.float64).to_numpy()[:, 0]  # the target
        answer = scores_dir / (str(path.relative_to(split_dir)) + ".out")
        if not answer.is_file():
            raise SystemExit(f"error: no scores for {path.name}: {answer} is missing")
        predictions = [json.loads(line) for line in answer.read_text(encoding="utf-8").splitlines() if line.strip()]
        if len(predictions) != len(y):
            raise SystemExit(f"error: {path.name} holds {len(y)} records, its scores {len(predictions)}")
        targets.append(y)
        scores.append(scores_of(predictions, algorithm, problem, classes))
    if not targets:
        raise SystemExit(f"error: the split {split_dir.name} holds no record")
    return np.concatenate(targets), np.concatenate(scores)


def run(env: dict[str, str], hp: dict[str, Any]) -> dict[str, Any]:
    started = time.perf_counter()
    schema_dir = Path(env["SM_CHANNEL_SCHEMA"])
    schema = json.loads((schema_dir / "schema.json").read_text(encoding="utf-8"))
    problem, classes = schema["target"]["problem"], len(schema["target"]["classes"])
    algorithm = hp["algorithm"]
    scores = Path(env["SM_CHANNEL_SCORES"])
    split = {
        name: paired(Path(env[f"SM_CHANNEL_{name.upper()}"]), scores / name, algorithm, problem, classes)
        for name in SPLITS
    }
    judgement, threshold = judged(problem, classes, hp, split["validation"], split["test"])
    evaluation = {
        **judgement,
        "algorithm": algorithm,
        # The rows each figure used: the algorithm trained on train (and, Linear Learner, chose its
        # own settings on validation); the threshold is chosen on validation; test is held out.
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
