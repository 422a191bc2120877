"""The twin's stand-in for Model Monitor's analyzer (local/monitor.py): a baseline in the analyzer's
formats, and the violations its documented checks find in captured traffic."""

from __future__ import annotations

import json

import pytest

from local import monitor

BASELINE = [[str(20 + i % 40), ["admin.", "services", "student"][i % 3], ""] for i in range(300)]


def test_a_baseline_names_the_headerless_columns_and_types_them():
    statistics, constraints = monitor.baseline(BASELINE)
    assert [f["name"] for f in statistics["features"]] == ["_c0", "_c1", "_c2"]
    assert [f["inferred_type"] for f in constraints["features"]] == ["Integral", "String", "Unknown"]
    age, job, _ = statistics["features"]
    assert age["numerical_statistics"]["common"] == {"num_present": 300, "num_missing": 0}
    assert (age["numerical_statistics"]["min"], age["numerical_statistics"]["max"]) == (20, 59)
    assert sum(b["count"] for b in age["numerical_statistics"]["distribution"]["kll"]["buckets"]) == 300
    assert job["string_statistics"]["distinct_count"] == 3
    assert constraints["features"][1]["string_constraints"]["domains"] == ["admin.", "services", "student"]
    assert constraints["features"][0]["num_constraints"] == {"is_non_negative": True}
    assert constraints["monitoring_config"]["distribution_constraints"]["comparison_threshold"] == 0.1
    json.dumps([statistics, constraints])  # what the job writes


def capture(rows: list[list[str]]) -> str:
    """One data-capture file: a request per line, as an endpoint writes them."""
    lines = []
    for row in rows:
        data = ",".join(row)
        endpoint_input = {"observedContentType": "text/csv", "mode": "INPUT", "data": data, "encoding": "CSV"}
        lines.append(json.dumps({"captureData": {"endpointInput": endpoint_input}, "eventVersion": "0"}))
    return "\n".join(lines) + "\n"


def checks(rows: list[list[str]]) -> dict[str, set[str]]:
    statistics, constraints = monitor.baseline(BASELINE)
    found: dict[str, set[str]] = {}
    for violation in monitor.violations(monitor.captured_rows([capture(rows)]), statistics, constraints):
        found.setdefault(violation["feature_name"], set()).add(violation["constraint_check_type"])
    return found


def test_traffic_like_the_baseline_breaks_no_constraint():
    assert checks(BASELINE[:150]) == {}


def test_shifted_numbers_and_unseen_categories_are_named_by_feature_and_check():
    drifted = [[str(int(age) + 40), "astronaut", empty] for age, _, empty in BASELINE[:100]]
    assert checks(drifted) == {
        "_c0": {"baseline_drift_check"},
        "_c1": {"categorical_values_check", "baseline_drift_check"},
    }


def test_a_client_that_sends_another_form_shows_as_extra_columns_or_types():
    assert checks([[*row, "yes"] for row in BASELINE[:120]]) == {"_c3": {"extra_column_check"}}
    assert checks([["old", job, ""] for _, job, _ in BASELINE[:120]])["_c0"] >= {"data_type_check"}
    assert checks([["", job, ""] for _, job, _ in BASELINE[:120]])["_c0"] >= {"completeness_check"}


# --- model quality ---


def answered(event_id: str, answer: str, at: str = "2026-11-24T13:05:00Z", inference_id: str | None = None) -> str:
    """One captured request with its CSV answer, as the endpoint writes it."""
    metadata = {"eventId": event_id, **({"inferenceId": inference_id} if inference_id else {}), "inferenceTime": at}
    data = {"endpointOutput": {"observedContentType": "text/csv", "mode": "OUTPUT", "data": answer, "encoding": "CSV"}}
    return json.dumps({"captureData": data, "eventMetadata": metadata, "eventVersion": "0"})


def label(event_id: str, value: str) -> str:
    """One uploaded label, as the README tells an application to write it."""
    record = {"groundTruthData": {"data": value, "encoding": "CSV"}, "eventMetadata": {"eventId": event_id}}
    return json.dumps({**record, "eventVersion": "0"})


def test_predictions_are_joined_with_their_labels_by_inference_id_else_event_id_within_the_window():
    capture = "\n".join(
        [
            answered("e1", "0.9,yes", inference_id="order-1"),
            answered("e2", "0.2,no"),
            answered("e3", "0.7,yes", at="2026-11-24T15:00:00Z"),  # after the window
            answered("e4", "0.1,no\n0.8,yes"),  # two records, one label: not joined
            answered("e5", "0.3,no"),  # no label
        ]
    )
    labels = monitor.ground_truth(
        ["\n".join([label("order-1", "1"), label("e2", "1"), label("e3", "0"), label("e4", "1")])]
    )
    pairs = monitor.joined([capture], labels, "2026-11-24T13:00:00Z", "2026-11-24T14:00:00Z")
    assert pairs == [(["0.9", "yes"], "1"), (["0.2", "no"], "1")]
    # A later label of an event replaces an earlier one.
    assert monitor.ground_truth([label("e2", "1"), label("e2", "0")]) == {"e2": "0"}


def test_binary_metrics_are_read_at_the_models_threshold():
    pairs = [([f"{p}", "x"], y) for p, y in ((0.9, "1"), (0.6, "1"), (0.4, "0"), (0.55, "0"), (0.1, "0"))]
    environment = {"probability_attribute": "0", "probability_threshold_attribute": "0.5"}
    statistics = monitor.model_quality(pairs, "BinaryClassification", environment)
    metrics = statistics["binary_classification_metrics"]
    assert statistics["dataset"]["item_count"] == 5
    # Predicted 1 for 0.9, 0.6 and 0.55: two true positives, one false positive, two true negatives.
    assert metrics["confusion_matrix"] == {"0": {"0": 2, "1": 1}, "1": {"0": 0, "1": 2}}
    assert metrics["precision"]["value"] == 2 / 3 and metrics["recall"]["value"] == 1.0
    assert metrics["accuracy"]["value"] == 0.8 and metrics["auc"]["value"] == 1.0
    assert metrics["auc"]["standard_deviation"] == "NaN"  # fewer than 200 records
    at_higher = monitor.model_quality(
        pairs, "BinaryClassification", {**environment, "probability_threshold_attribute": "0.58"}
    )
    assert at_higher["binary_classification_metrics"]["accuracy"]["value"] == 1.0


def test_binary_labels_must_be_one_and_zero():
    with pytest.raises(ValueError, match="binary labels are 1 and 0"):
        monitor.model_quality(
            [(["0.9", "yes"], "yes")], "BinaryClassification",
            {"probability_attribute": "0", "probability_threshold_attribute": "0.5"},
        )  # fmt: skip


def test_multiclass_and_regression_metrics_read_their_columns():
    multiclass = [(["0.1", "0.9", "acc"], "acc"), (["0.8", "0.2", "unacc"], "acc"), (["0.7", "0.3", "unacc"], "unacc")]
    found = monitor.model_quality(multiclass, "MulticlassClassification", {"inference_attribute": "2"})
    metrics = found["multiclass_classification_metrics"]
    assert metrics["accuracy"]["value"] == 2 / 3
    assert metrics["confusion_matrix"] == {"acc": {"acc": 1, "unacc": 1}, "unacc": {"acc": 0, "unacc": 1}}
    regression = [(["3.0"], "1.0"), (["2.0"], "2.0"), (["1.0"], "3.0")]
    found = monitor.model_quality(regression, "Regression", {"inference_attribute": "0"})
    assert found["regression_metrics"]["mae"]["value"] == 4 / 3 and found["regression_metrics"]["r2"]["value"] == -3.0


def test_deviations_come_from_five_samples_of_eighty_percent_from_two_hundred_records():
    pairs = [([f"{(i % 10) / 10}", "x"], str(int(i % 10 >= 5 if i % 7 else i % 10 < 5))) for i in range(200)]
    environment = {"probability_attribute": "0", "probability_threshold_attribute": "0.5"}
    metrics = monitor.model_quality(pairs, "BinaryClassification", environment)["binary_classification_metrics"]
    assert isinstance(metrics["auc"]["standard_deviation"], float) and metrics["auc"]["standard_deviation"] > 0
    assert monitor.model_quality(pairs, "BinaryClassification", environment) == {
        "version": 0.0, "dataset": {"item_count": 200}, "binary_classification_metrics": metrics,
    }  # fmt: skip
