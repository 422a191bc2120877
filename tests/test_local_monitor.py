"""The twin's stand-in for Model Monitor's analyzer (local/monitor.py): a baseline in the analyzer's
formats, and the violations its documented checks find in captured traffic."""

from __future__ import annotations

import json

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
