"""Benchmark: the platform's model quality beside a plain reference, per shipped dataset and seed.

    python bench/quality.py
    python bench/quality.py --seeds 1 2 3 --datasets car-evaluation

Each dataset is prepared with etl/prepare.py under each seed (its own split) and trained with
training_jobs/run_local.py and the shipped spec, as a data scientist runs them. The reference is
scikit-learn's HistGradientBoosting (classifier or regressor, its defaults, random_state = the
seed) fitted on the same prepared train and validation rows together and scored on the same
test rows, with the metric the spec's gate uses. Prints each run, and per dataset the mean of
both and the gap. Target (issue 14): the project at or above the reference on every dataset.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

from common import ROOT, run

sys.path.insert(0, str(ROOT / "training_jobs"))
sys.path.insert(0, str(ROOT))

SEEDS = (1, 2, 3)


def reference(prepared: Path, problem: str, metric: str, seed: int) -> float:
    """HistGradientBoosting fitted on train + validation, scored on test with ``metric``."""
    import numpy as np
    import train as trainer
    from sklearn import metrics
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    x_train, y_train = trainer.read_channel(prepared / "train")
    x_val, y_val = trainer.read_channel(prepared / "validation")
    x_test, y_test = trainer.read_channel(prepared / "test")
    x, y = np.vstack([x_train, x_val]), np.concatenate([y_train, y_val])
    if problem == "regression":
        predicted = HistGradientBoostingRegressor(random_state=seed).fit(x, y).predict(x_test)
        scores = {
            "rmse": float(np.sqrt(metrics.mean_squared_error(y_test, predicted))),
            "mae": float(metrics.mean_absolute_error(y_test, predicted)),
            "r2": float(metrics.r2_score(y_test, predicted)),
        }
        return scores[metric]
    model = HistGradientBoostingClassifier(random_state=seed).fit(x, y)
    if problem == "binary":
        p = model.predict_proba(x_test)[:, 1]
        if metric == "auc":
            return float(metrics.roc_auc_score(y_test, p))
        threshold = trainer.choose_threshold(y_val, model.predict_proba(x_val)[:, 1], "f1")
        return float(trainer.evaluate("binary", y_test, p, threshold, 2)[metric])
    predicted = model.predict(x_test)
    if metric == "macro_f1":
        return float(metrics.f1_score(y_test, predicted, average="macro"))
    return float(metrics.accuracy_score(y_test, predicted))


def fitted(evaluation: dict) -> str:
    """How the trainer fitted the model it saved (evaluation.json's ``fit``), in a few words."""
    fit = evaluation.get("fit")
    if not fit:
        return ""
    return (
        f"; {fit['rounds']} rounds, min_child_weight {fit['min_child_weight']:g}, "
        f"trained on {' + '.join(fit['refit_on'])} ({fit['rows']} rows)"
    )


def main() -> int:
    from local.__main__ import DATA_FILES, SHARED_DATA

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS), help="split seeds (default: 1 2 3)")
    parser.add_argument("--datasets", nargs="+", default=sorted(DATA_FILES), help="shipped datasets (default: all)")
    args = parser.parse_args()
    summary = []
    with tempfile.TemporaryDirectory(prefix="bench-quality-") as tmp:
        for dataset in args.datasets:
            spec_path = ROOT / "datasets" / f"{dataset}.json"
            spec = json.loads(spec_path.read_text())
            project, references = [], []
            for seed in args.seeds:
                prepared, out = Path(tmp) / f"{dataset}-{seed}", Path(tmp) / f"{dataset}-{seed}-model"
                raw = SHARED_DATA / DATA_FILES[dataset]
                run([sys.executable, str(ROOT / "etl" / "prepare.py"), "--input", str(raw),
                     "--spec", str(spec_path), "--output", str(prepared), "--seed", str(seed)])  # fmt: skip
                run([sys.executable, str(ROOT / "training_jobs" / "run_local.py"), "--prepared", str(prepared),
                     "--out", str(out), "--spec", str(spec_path)])  # fmt: skip
                evaluation = json.loads((out / "output" / "evaluation.json").read_text())
                problem, metric = evaluation["problem"], evaluation["objective_metric"]
                ours = float(evaluation["test"][metric])
                theirs = reference(prepared, problem, metric, seed)
                project.append(ours)
                references.append(theirs)
                line = f"{dataset} seed {seed}: test {metric} {ours:.4f} (reference {theirs:.4f})"
                print(line + fitted(evaluation), flush=True)
            lower = metric in ("rmse", "mae", "log_loss")
            mean_ours, mean_ref = statistics.mean(project), statistics.mean(references)
            level = mean_ours <= mean_ref if lower else mean_ours >= mean_ref
            summary.append(
                f"{dataset}: mean test {metric} {mean_ours:.4f} against the reference's {mean_ref:.4f}, "
                f"gap {mean_ours - mean_ref:+.4f} "
                f"({'at or above' if level else 'BELOW'} the reference; {spec['training'].get('algorithm', 'xgboost')})"
            )
    print("\n".join(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
