"""Script-mode XGBoost trainer: SageMaker's XGBoost framework container, or a laptop, unchanged.

The container contract (https://github.com/aws/sagemaker-training-toolkit, ENVIRONMENT_VARIABLES):

- hyperparameters arrive as ``--name value`` arguments;
- data in ``SM_CHANNEL_TRAIN``, ``SM_CHANNEL_VALIDATION``, ``SM_CHANNEL_TEST`` (SageMaker CSV
  from etl/prepare.py: no header, target first) and the prepared run's ``schema.json`` in
  ``SM_CHANNEL_SCHEMA``;
- the model goes to ``SM_MODEL_DIR``: ``xgboost-model.json``, ``schema.json`` and
  ``model-info.json`` (problem, classes, decision threshold), what inference.py loads, and
  ``code/`` with inference.py, schema_encoder.py and dataset_spec.py for the serving container;
- reports go to ``SM_OUTPUT_DATA_DIR``: ``evaluation.json`` (also copied beside the model).

How the model is fitted, in two steps that never look at the test channel:

1. Choice on validation. Boosters are trained on the train channel and stopped early on the
   validation channel's log loss (``logloss``, ``mlogloss``; ``rmse`` for regression): a proper
   score that moves with every round, where AUC or the error rate of a few hundred rows stays
   flat for dozens of rounds and stops training too soon. ``num_round`` is the most rounds,
   ``early_stopping_rounds`` the rounds without improvement before stopping (0: no early
   stopping, all ``num_round`` rounds). When ``min_child_weight`` is not given and the problem is
   a classification, it is chosen here too, among 1 (XGBoost's default), 0.1 and 0.01, by the
   same validation loss (the earlier candidate on a tie): a classification leaf's weight is a
   sum of ``p(1 - p)``, which shrinks as the model grows sure, so the default can stop a booster
   from refining regions it already mostly gets right (car evaluation, a noise-free full
   factorial, chooses 0.01). A ``min_child_weight`` that is given is used as it is (a tuning
   job's range, for example).
2. Refit (``refit``, true by default). A booster with the chosen settings is trained on the train
   and validation channels together, for the chosen number of rounds, without early stopping;
   it is the model saved, and ``best_iteration`` is its last round. With ``refit`` false the
   early-stopping booster is saved, as before, and ``best_iteration`` is its best round.

The validation metrics, and the binary decision threshold, come from the validation scores of
the step-1 booster, which did not train on the validation rows (they did choose its rounds). The
test metrics come from the saved model, at that threshold. ``evaluation.json``'s ``fit`` says
how the saved model was fitted: ``refit``, the channels and rows it trained on (``refit_on``,
``rows``), its ``rounds``, the stopping metric, the ``min_child_weight`` used and each candidate's
rounds and validation loss.

The metrics are printed as
``metric <channel>:<name>=<value>`` lines, which the job's metric definitions (and a tuning
job's objective) parse from the log. Evaluation on the test channel: for binary problems
AUC-ROC, accuracy, precision, recall, specificity, F1, log loss, the decision threshold chosen
on validation (best F1, Youden's J or accuracy, or the least expected cost of the errors), the
cost per record where the spec prices the errors, and the confusion matrix, each also at 0.5;
for multiclass accuracy, macro F1 and the confusion matrix; for regression MSE, RMSE, MAE and R².

``run_local.py`` sets this contract up in a temporary tree and runs this script in a subprocess.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn import metrics as skm

MODEL_FILE = "xgboost-model.json"
# Inference code travels inside model.tar.gz (code/), as SageMaker's framework containers
# expect with SAGEMAKER_SUBMIT_DIRECTORY=/opt/ml/model/code: an isolated endpoint cannot fetch it.
# dataset_spec.py (the raw file's number rules, from etl/) sits beside this script in the training
# code, as schema_encoder.py imports it.
INFERENCE_CODE = ("inference.py", "schema_encoder.py", "dataset_spec.py")
INFO_FILE = "model-info.json"
EVALUATION_FILE = "evaluation.json"
METRIC_LINE = "metric {channel}:{name}={value:.6f}"
# The regular expression of the job's metric definitions, for a metric name and a channel.
METRIC_REGEX = r"metric {channel}:{name}=([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"

# Booster parameters this trainer accepts, with their types. Anything else is refused by name.
BOOSTER = {
    "eta": float,
    "max_depth": int,
    "min_child_weight": float,
    "subsample": float,
    "colsample_bytree": float,
    "gamma": float,
    "alpha": float,
    "lambda": float,
    "max_bin": int,
    "scale_pos_weight": float,
    "tree_method": str,
}
DEFAULTS = {
    "num_round": 300,
    "early_stopping_rounds": 25,
    "seed": 42,
    "objective_metric": "",
    "threshold_criterion": "f1",
    "false_positive_cost": None,
    "false_negative_cost": None,
    "refit": True,
}
# min_child_weight's candidates when it is not given (classification: see the module docstring).
MIN_CHILD_WEIGHTS = (1.0, 0.1, 0.01)
# The validation loss that stops training early and chooses among the candidates, per problem.
STOPPING_METRIC = {"binary": "logloss", "multiclass": "mlogloss", "regression": "rmse"}
THRESHOLD_CRITERIA = ("f1", "youden", "accuracy", "cost")  # dataset_spec.THRESHOLD_CRITERIA


def boolean(value: str) -> bool:
    """A true/false hyperparameter as SageMaker passes it: a string (``str(True)`` is ``True``)."""
    words = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
    if value.strip().lower() not in words:
        raise argparse.ArgumentTypeError(f"expected true or false, not {value!r}")
    return words[value.strip().lower()]


def parse_hyperparameters(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description="XGBoost trainer (SageMaker script mode)")
    parser.add_argument("--num_round", type=int, default=DEFAULTS["num_round"])
    parser.add_argument("--early_stopping_rounds", type=int, default=DEFAULTS["early_stopping_rounds"])
    parser.add_argument("--refit", type=boolean, default=DEFAULTS["refit"])
    parser.add_argument("--seed", type=int, default=DEFAULTS["seed"])
    parser.add_argument("--objective_metric", default=DEFAULTS["objective_metric"])
    parser.add_argument("--threshold_criterion", choices=THRESHOLD_CRITERIA, default=DEFAULTS["threshold_criterion"])
    parser.add_argument("--false_positive_cost", type=float, default=None)
    parser.add_argument("--false_negative_cost", type=float, default=None)
    for name, kind in BOOSTER.items():
        parser.add_argument(f"--{name}", type=kind, default=None)
    args, unknown = parser.parse_known_args(argv)
    if args.num_round < 1 or args.early_stopping_rounds < 0:
        parser.error("--num_round needs at least 1 round, --early_stopping_rounds 0 (off) or more")
    costs = (args.false_positive_cost, args.false_negative_cost)
    if args.threshold_criterion == "cost" and not all(c is not None and np.isfinite(c) and c > 0 for c in costs):
        parser.error("--threshold_criterion cost needs --false_positive_cost and --false_negative_cost above 0")
    # SageMaker may add its own sagemaker_* hyperparameters; anything else is a typo.
    stray = [a for a in unknown if a.startswith("--") and not a.startswith("--sagemaker_")]
    if stray:
        parser.error(f"unknown hyperparameters {stray}; known: {', '.join(sorted([*DEFAULTS, *BOOSTER]))}")
    return vars(args)


def read_channel(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Every file of a channel (SageMaker CSV: target first, no header), in name order."""
    files = sorted(p for p in Path(path).rglob("*") if p.is_file() and not p.name.startswith("."))
    if not files:
        raise SystemExit(f"error: channel {path} holds no file")
    frames = [pd.read_csv(f, header=None, dtype=np.float64) for f in files if f.stat().st_size > 0]
    data = pd.concat(frames, ignore_index=True).to_numpy()
    return data[:, 1:], data[:, 0]


def booster_params(hp: dict[str, Any], problem: str, classes: int) -> dict[str, Any]:
    params: dict[str, Any] = {name: hp[name] for name in BOOSTER if hp.get(name) is not None}
    # The instance's cores, as the training toolkit reports them (SM_NUM_CPUS); a laptop's otherwise.
    params |= {"seed": hp["seed"], "nthread": int(os.environ.get("SM_NUM_CPUS") or os.cpu_count() or 1)}
    if problem == "binary":
        params |= {"objective": "binary:logistic"}
    elif problem == "multiclass":
        params |= {"objective": "multi:softprob", "num_class": classes}
    else:
        params |= {"objective": "reg:squarederror"}
    return params | {"eval_metric": [STOPPING_METRIC[problem]]}


@dataclass
class Candidate:
    """A booster trained on train and stopped early on validation, with what it was trained with."""

    params: dict[str, Any]
    booster: xgb.Booster
    rounds: int  # its best number of rounds on validation (the best iteration + 1)
    loss: float  # the validation loss after those rounds


def early_stopped(params: dict[str, Any], dtrain: xgb.DMatrix, dval: xgb.DMatrix, hp: dict[str, Any]) -> Candidate:
    """Boosting on ``dtrain`` for up to ``num_round`` rounds, stopped once the validation loss
    (``params``' eval_metric) has not improved for ``early_stopping_rounds`` rounds."""
    metric = params["eval_metric"][-1]
    log: dict[str, Any] = {}
    patience = hp["early_stopping_rounds"]
    stopping = [xgb.callback.EarlyStopping(rounds=patience, metric_name=metric, data_name="validation")]
    booster = xgb.train(
        params,
        dtrain,
        num_boost_round=hp["num_round"],
        evals=[(dval, "validation")],
        evals_result=log,
        callbacks=stopping if patience > 0 else None,
        verbose_eval=False,
    )
    rounds = booster.best_iteration + 1 if patience > 0 else booster.num_boosted_rounds()
    return Candidate(params, booster, rounds, float(log["validation"][metric][rounds - 1]))


def candidate_params(hp: dict[str, Any], problem: str, classes: int) -> list[dict[str, Any]]:
    """The booster parameters tried on validation: the given ones, and where a classification
    leaves min_child_weight out, each of MIN_CHILD_WEIGHTS (the default first)."""
    params = booster_params(hp, problem, classes)
    if hp.get("min_child_weight") is not None or problem == "regression":
        # Squared error's hessian is 1 a row: there every candidate would grow the same trees.
        return [params]
    return [params | {"min_child_weight": weight} for weight in MIN_CHILD_WEIGHTS]


def error_counts(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For every threshold that changes a decision (each distinct score, and one above them all:
    nothing positive), the false positives and false negatives of predicting ``p >= threshold``."""
    scores = np.unique(p)
    above = np.nextafter(scores[-1], np.inf) if len(scores) else 0.5
    candidates = np.append(scores, above)
    positives, negatives = np.sort(p[y == 1]), np.sort(p[y == 0])
    false_negatives = np.searchsorted(positives, candidates, side="left")  # positives scored below it
    false_positives = len(negatives) - np.searchsorted(negatives, candidates, side="left")
    return candidates, false_positives, false_negatives


def choose_threshold(y: np.ndarray, p: np.ndarray, criterion: str, costs: tuple[float, float] | None = None) -> float:
    """The decision threshold on validation: maximising F1, Youden's J (TPR - FPR) or accuracy, or
    minimising the expected cost of the errors (``costs``: one false positive, one false
    negative). Among equally good thresholds the lowest is taken."""
    if criterion in ("accuracy", "cost"):
        candidates, false_positives, false_negatives = error_counts(y, p)
        if criterion == "cost":
            if costs is None:
                raise ValueError("the cost criterion needs the cost of a false positive and of a false negative")
            loss = costs[0] * false_positives + costs[1] * false_negatives
        else:
            loss = false_positives + false_negatives
        return float(min(candidates[int(np.argmin(loss))], 1.0))
    if criterion == "youden":
        fpr, tpr, thresholds = skm.roc_curve(y, p)
        best = int(np.argmax(tpr - fpr))
        return float(min(thresholds[best], 1.0))
    precision, recall, thresholds = skm.precision_recall_curve(y, p)
    f1 = np.divide(
        2 * precision * recall, precision + recall, out=np.zeros_like(precision), where=precision + recall > 0
    )
    best = int(np.argmax(f1[:-1])) if len(thresholds) else 0
    return float(thresholds[best]) if len(thresholds) else 0.5


def evaluate(
    problem: str,
    y: np.ndarray,
    p: np.ndarray,
    threshold: float | None,
    classes: int,
    costs: tuple[float, float] | None = None,
) -> dict[str, Any]:
    if problem == "binary":
        if threshold is None:
            raise ValueError("a binary problem is evaluated at a decision threshold; none was given")
        predicted = (p >= threshold).astype(int)
        tn, fp, fn, tp = skm.confusion_matrix(y, predicted, labels=[0, 1]).ravel()
        # What the errors cost, per record (costs: one false positive, one false negative).
        cost = {"cost": float((costs[0] * fp + costs[1] * fn) / len(y))} if costs and len(y) else {}
        return {
            "auc": float(skm.roc_auc_score(y, p)) if len(np.unique(y)) == 2 else float("nan"),
            "accuracy": float(skm.accuracy_score(y, predicted)),
            "precision": float(skm.precision_score(y, predicted, zero_division=0)),
            "recall": float(skm.recall_score(y, predicted, zero_division=0)),
            "specificity": float(tn / (tn + fp)) if tn + fp else 0.0,
            "f1": float(skm.f1_score(y, predicted, zero_division=0)),
            "log_loss": float(skm.log_loss(y, np.clip(p, 1e-15, 1 - 1e-15), labels=[0, 1])),
            "threshold": float(threshold),
            **cost,
            "confusion_matrix": {"tp": int(tp), "fp": int(fp), "fn": int(fn), "tn": int(tn)},
        }
    if problem == "multiclass":
        predicted = p.argmax(axis=1)
        return {
            "accuracy": float(skm.accuracy_score(y, predicted)),
            "macro_f1": float(
                skm.f1_score(y, predicted, average="macro", labels=list(range(classes)), zero_division=0)
            ),
            "confusion_matrix": skm.confusion_matrix(y, predicted, labels=list(range(classes))).tolist(),
        }
    mse = float(skm.mean_squared_error(y, p))
    return {
        "mse": mse,
        "rmse": float(np.sqrt(mse)),
        "mae": float(skm.mean_absolute_error(y, p)),
        "r2": float(skm.r2_score(y, p)),
    }


def judged(
    problem: str,
    classes: int,
    hp: dict[str, Any],
    validation: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
) -> tuple[dict[str, Any], float | None]:
    """A model judged by its scores (targets and scores of validation, then of test): for a binary
    problem the threshold chosen on validation by ``hp``'s criterion (and costs), and every metric
    of the problem on each split at it and at 0.5, printed as the job's metric lines. Returns the
    evaluation's common part and the threshold. evaluate.py judges a built-in algorithm's scores so."""
    (y_val, p_val), (y_test, p_test) = validation, test
    costs = (
        (hp["false_positive_cost"], hp["false_negative_cost"]) if hp.get("false_positive_cost") is not None else None
    )
    binary = problem == "binary"
    threshold = choose_threshold(y_val, p_val, hp["threshold_criterion"], costs) if binary else None
    on_validation = evaluate(problem, y_val, p_val, threshold, classes, costs)
    on_test = evaluate(problem, y_test, p_test, threshold, classes, costs)
    print_metrics("validation", on_validation)
    print_metrics("test", on_test)
    objective = hp["objective_metric"] or {"binary": "auc", "multiclass": "accuracy", "regression": "rmse"}[problem]
    judgement = {
        "problem": problem,
        "objective_metric": objective,
        "test": on_test,
        "validation": on_validation,
        # A binary model's metrics at the conventional 0.5 as well, beside the chosen threshold.
        **(
            {
                "threshold_criterion": hp["threshold_criterion"],
                "test_at_0.5": evaluate(problem, y_test, p_test, 0.5, classes, costs),
                "validation_at_0.5": evaluate(problem, y_val, p_val, 0.5, classes, costs),
            }
            if binary
            else {}
        ),
    }
    return judgement, threshold


def print_metrics(channel: str, values: dict[str, Any]) -> None:
    for name, value in values.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            print(METRIC_LINE.format(channel=channel, name=name, value=value), flush=True)


def train(env: dict[str, str], hp: dict[str, Any]) -> dict[str, Any]:
    started = time.perf_counter()
    schema_dir = Path(env["SM_CHANNEL_SCHEMA"])
    schema = json.loads((schema_dir / "schema.json").read_text(encoding="utf-8"))
    problem = schema["target"]["problem"]
    classes = len(schema["target"]["classes"])
    x_train, y_train = read_channel(env["SM_CHANNEL_TRAIN"])
    x_val, y_val = read_channel(env["SM_CHANNEL_VALIDATION"])
    x_test, y_test = read_channel(env["SM_CHANNEL_TEST"])
    features = schema["feature_names"]
    if x_train.shape[1] != len(features):
        raise SystemExit(f"error: the train channel has {x_train.shape[1]} features, schema.json names {len(features)}")

    dtrain = xgb.DMatrix(x_train, label=y_train, feature_names=features)
    dval = xgb.DMatrix(x_val, label=y_val, feature_names=features)
    dtest = xgb.DMatrix(x_test, label=y_test, feature_names=features)
    # 1. The choices, on validation: the rounds, and min_child_weight when it is not given. The
    # lowest validation loss wins; on a tie, the earlier candidate (XGBoost's default first).
    candidates = [early_stopped(params, dtrain, dval, hp) for params in candidate_params(hp, problem, classes)]
    chosen = min(candidates, key=lambda candidate: candidate.loss)
    rounds = chosen.rounds
    # 2. The saved model: refitted on train and validation with those choices, or the chosen
    # early-stopping booster itself. Either way it is used up to its round `rounds`.
    if hp["refit"]:
        dall = xgb.DMatrix(np.vstack([x_train, x_val]), label=np.concatenate([y_train, y_val]), feature_names=features)
        booster = xgb.train(chosen.params, dall, num_boost_round=rounds, verbose_eval=False)
        booster.set_attr(best_iteration=str(rounds - 1))  # its last round: the whole of it is the model
    else:
        booster = chosen.booster
    best = (0, rounds)
    stopping_metric = chosen.params["eval_metric"][-1]
    fit = {
        "refit": bool(hp["refit"]),
        "refit_on": ["train", "validation"] if hp["refit"] else ["train"],
        "rows": len(y_train) + len(y_val) if hp["refit"] else len(y_train),
        "rounds": rounds,
        "stopping_metric": stopping_metric,
        "min_child_weight": float(chosen.params.get("min_child_weight", 1.0)),
        "candidates": [
            {
                "min_child_weight": float(c.params.get("min_child_weight", 1.0)),
                "rounds": c.rounds,
                f"validation_{stopping_metric}": c.loss,
            }
            for c in candidates
        ],
        # Where the validation metrics and the threshold come from: never the refitted model.
        "validation_scored_by": "the early-stopping booster, trained on train only",
    }
    print(
        f"fit: min_child_weight {fit['min_child_weight']:g} and {rounds} rounds chosen on validation "
        f"({stopping_metric} {chosen.loss:.6f}); "
        + ("refitted on train + validation" if hp["refit"] else "trained on train")
        + f" ({fit['rows']} rows)",
        flush=True,
    )

    # Validation is scored by the booster that did not train on it; test by the saved model.
    p_val = chosen.booster.predict(dval, iteration_range=best)
    p_test = booster.predict(dtest, iteration_range=best)
    judgement, threshold = judged(problem, classes, hp, (y_val, p_val), (y_test, p_test))
    evaluation = {
        **judgement,
        "best_iteration": rounds - 1,
        "rows": {"train": len(y_train), "validation": len(y_val), "test": len(y_test)},
        "fit": fit,
        "hyperparameters": {k: v for k, v in hp.items() if v is not None},
        "seconds": round(time.perf_counter() - started, 2),
    }
    model_dir = Path(env["SM_MODEL_DIR"])
    output_dir = Path(env["SM_OUTPUT_DATA_DIR"])
    model_dir.mkdir(parents=True, exist_ok=True)
    output_dir.mkdir(parents=True, exist_ok=True)
    booster.save_model(model_dir / MODEL_FILE)
    shutil.copyfile(schema_dir / "schema.json", model_dir / "schema.json")
    (model_dir / "code").mkdir(exist_ok=True)
    for name in INFERENCE_CODE:
        shutil.copyfile(Path(__file__).resolve().parent / name, model_dir / "code" / name)
    info = {
        "problem": problem,
        "classes": schema["target"]["classes"],
        "threshold": threshold,
        "best_iteration": rounds - 1,  # inference scores with rounds 0 to this one
        "feature_names": features,
    }
    write_reports(model_dir, output_dir, info, evaluation)
    return evaluation


def write_reports(model_dir: Path, output_dir: Path, info: dict[str, Any], evaluation: dict[str, Any]) -> None:
    """model-info.json beside the model; evaluation.json in the job's output and beside the model."""
    (model_dir / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    for folder in (output_dir, model_dir):
        (folder / EVALUATION_FILE).write_text(json.dumps(evaluation, indent=2) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    hp = parse_hyperparameters(sys.argv[1:] if argv is None else argv)
    missing = [
        name
        for name in (
            "SM_CHANNEL_TRAIN",
            "SM_CHANNEL_VALIDATION",
            "SM_CHANNEL_TEST",
            "SM_CHANNEL_SCHEMA",
            "SM_MODEL_DIR",
            "SM_OUTPUT_DATA_DIR",
        )
        if name not in os.environ
    ]
    if missing:
        print(
            f"error: the SageMaker contract is not set up: missing {', '.join(missing)} (use run_local.py)",
            file=sys.stderr,
        )
        return 2
    evaluation = train(dict(os.environ), hp)
    objective = evaluation["objective_metric"]
    print(
        f"trained {evaluation['problem']} model: test {objective} = {evaluation['test'][objective]:.4f} "
        f"in {evaluation['seconds']} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
