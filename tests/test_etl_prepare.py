"""etl/prepare.py on a local Spark session, over the real UCI datasets and small crafted ones."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from dataset_spec import SpecError, normalise
from schema_encoder import SchemaEncoder

from tests.conftest import RAW_FILES, ROOT, SEED, Prepared, load_dataset_spec, raw_records, run_prepare

SPLITS = ("train", "validation", "test")
DATASETS = sorted(RAW_FILES)


def split_rows(output: Path, split: str) -> list[list[str]]:
    files = sorted((output / split).glob("*.csv"))
    assert files, f"no CSV in {output / split}"
    rows = []
    for path in files:
        with path.open(newline="") as handle:
            rows += list(csv.reader(handle))
    return rows


def rounded(values) -> tuple[float, ...]:
    return tuple(float(f"{float(v):.10g}") for v in values)


@pytest.mark.parametrize("name", DATASETS)
def test_output_is_sagemaker_csv_target_first_all_numeric_no_nulls(prepared, name):
    data = prepared[name]
    width = 1 + len(data.schema["feature_names"])
    classes = data.schema["target"]["classes"]
    for split in SPLITS:
        rows = split_rows(data.output, split)
        assert rows, split
        for row in rows:
            assert len(row) == width
            assert all(field != "" for field in row)
            numbers = [float(field) for field in row]  # no header: the first line is numbers too
            assert all(math.isfinite(n) for n in numbers)
            if classes:
                assert numbers[0] in range(len(classes))


@pytest.mark.parametrize("name", DATASETS)
def test_splits_follow_the_spec_fractions_and_keep_class_ratios(prepared, name):
    data = prepared[name]
    labels = {split: Counter(row[0] for row in split_rows(data.output, split)) for split in SPLITS}
    total = sum(sum(c.values()) for c in labels.values())
    assert total == data.report["rows_out"]
    classes = len(data.schema["target"]["classes"])
    for split in SPLITS:
        size = sum(labels[split].values())
        assert abs(size - data.spec.split[split] * total) <= classes + 1, (split, size)
        assert size == data.report["splits"][split]["rows"]
    overall = sum(labels.values(), Counter())
    for split in SPLITS:
        size = sum(labels[split].values())
        for label, count in overall.items():
            # Stratified: each class is split by the same fractions, to within one row.
            assert abs(labels[split][label] - data.spec.split[split] * count) <= 1, (split, label)
            assert abs(labels[split][label] / size - count / total) < 0.02 + 1 / size


@pytest.mark.parametrize("name", DATASETS)
def test_schema_round_trips_every_raw_record_into_its_training_row(prepared, name):
    """Encode the raw file in plain Python with schema.json: exactly the rows the job wrote."""
    data = prepared[name]
    encoder = SchemaEncoder(data.schema, invalid_numbers="impute")
    target = data.schema["target"]["column"]
    unique = {tuple(record.values()): record for record in raw_records(data)}  # equal in every column
    expected = Counter(
        rounded([encoder.encode_target(record[target]), *encoder.encode(record)])
        for record in unique.values()
        if _normalised(data.spec, target, record[target]) is not None
    )
    written = Counter(rounded(row) for split in SPLITS for row in split_rows(data.output, split))
    assert sum(written.values()) == data.report["rows_out"]
    assert written == expected


@pytest.mark.parametrize("name", DATASETS)
def test_baseline_is_the_training_split_as_an_endpoint_receives_it(prepared, name):
    """baseline/ holds the training split's records before any is dropped as an outlier: each one
    a line of the raw file (the features in the file's order, as written), which the schema
    encodes into a training row; comma separated, no header."""
    data = prepared[name]
    encoder = SchemaEncoder(data.schema, invalid_numbers="impute")
    columns = [c for c in data.schema["raw"]["columns"] if c in data.schema["input_columns"]]
    lines = file_lines(data.output / "baseline")
    train = data.report["splits"]["train"]["rows"]
    assert len(lines) == train + data.report["outliers_dropped"]
    raw = Counter(tuple(record[c] for c in columns) for record in raw_records(data))
    baseline = Counter(map(tuple, lines))
    assert not baseline - raw, "a baseline line that is not a record of the raw file"
    encoded = Counter(rounded(encoder.encode(dict(zip(columns, line, strict=True)))) for line in lines)
    trained = Counter(rounded(row[1:]) for row in split_rows(data.output, "train"))
    assert not trained - encoded, "a training row whose record is not in the baseline"
    assert lines[0] != columns  # no header


def _normalised(spec, column, value):
    """The value as the job reads it (None: missing)."""
    if value is None:
        return None
    text = value.strip()
    if text.lower() in spec.missing_values:
        return None
    feature = None if column == spec.target.column else spec.feature(column)
    numeric = (feature is not None and not feature.categorical) or (
        feature is None and (spec.target.problem == "regression" or spec.target.positive_above is not None)
    )
    if numeric:
        try:
            return float(text)
        except ValueError:
            return None
    return normalise(text, feature.aliases if feature else spec.target.aliases)


def test_schema_records_what_inference_needs(prepared):
    schema = prepared["bank-marketing"].schema
    assert schema["target"] == {
        "column": "y",
        "problem": "binary",
        "classes": ["no", "yes"],
        "labels": ["no", "yes"],
        "positive": "yes",
        "positive_above": None,
        "aliases": {},
    }
    assert schema["input_columns"][:3] == ["age", "job", "marital"]
    job = next(f for f in schema["features"] if f["column"] == "job")
    assert job["kind"] == "one-hot" and "admin." in job["categories"] and job["impute"] in job["categories"]
    assert schema["feature_names"][:2] == ["age", "job=admin."]
    car = prepared["car-evaluation"].schema
    assert car["target"]["classes"] == ["unacc", "acc", "good", "vgood"] == car["target"]["labels"]
    # Each class as the raw file first writes it, in the order of classes.
    vertebral = prepared["vertebral-column"].schema["target"]
    assert vertebral["classes"] == ["no", "ab"] and vertebral["labels"] == ["NO", "AB"]
    wine = prepared["wine-quality"].schema["target"]
    assert wine["labels"] == wine["classes"] == ["<= 5", "> 5"]
    assert next(f for f in car["features"] if f["column"] == "buying")["order"] == ["low", "med", "high", "vhigh"]


def test_report_counts_and_class_balance(prepared):
    report = prepared["bank-marketing"].report
    assert report["rows_in"] == 4119 and report["rows_out"] == 4119
    assert report["duplicates_dropped"] == 0 and report["missing_target_dropped"] == 0
    assert sum(report["splits"][s]["classes"]["yes"] for s in SPLITS) == 451  # 10.9% of 4,119
    assert report["missing_values"]["age"] == 0 and report["invalid_numbers"]["duration"] == 0
    wine = prepared["wine-quality"].report
    assert wine["duplicates_dropped"] == 240  # the red wine file repeats 240 rows exactly
    phases = ["read_normalise_deduplicate", "split", "fit", "transform", "write"]
    assert list(report["phases"]) == phases and sum(report["phases"].values()) <= report["seconds"] + 0.05


def test_vertebral_outliers_are_clipped_to_the_training_whiskers(prepared):
    data = prepared["vertebral-column"]
    feature = next(f for f in data.schema["features"] if f["column"] == "degree_spondylolisthesis")
    low, high = feature["clip"]
    index = 1 + data.schema["feature_names"].index("degree_spondylolisthesis")
    values = [float(row[index]) for split in SPLITS for row in split_rows(data.output, split)]
    assert min(values) >= low and max(values) <= high
    assert max(values) == pytest.approx(high)  # the 418 outlier is now the whisker


def test_success_marker_is_written_once_and_last(prepared):
    output = prepared["car-evaluation"].output
    files = [path for path in output.rglob("*") if path.is_file()]
    assert [p.relative_to(output).as_posix() for p in files if p.name == "_SUCCESS"] == ["_SUCCESS"]
    assert not [p for p in files if p.name.endswith(".crc")]
    success = (output / "_SUCCESS").stat().st_mtime_ns
    assert all(p.stat().st_mtime_ns <= success for p in files)


def test_same_seed_gives_identical_output_and_another_seed_does_not(spark, prepared, autopilot_car, tmp_path):
    first = prepared["car-evaluation"]
    # The same data and seed in another run (one that also writes Autopilot's view): the same splits.
    again = autopilot_car
    other = run_prepare(spark, "car-evaluation", tmp_path / "other", seed=SEED + 1)
    for split in SPLITS:
        assert split_rows(again.output, split) == split_rows(first.output, split)
    schema = json.loads((again.output / "schema.json").read_text())
    assert schema.pop("autopilot") and schema == json.loads((first.output / "schema.json").read_text())
    assert split_rows(other.output, "train") != split_rows(first.output, "train")


def test_same_seed_gives_the_same_split_on_any_partitioning(spark, prepared, tmp_path):
    """Car evaluation's rows in three files, in another order, read in small splits (so that the
    shuffle has as many partitions, more than the cores the one file is read with): the same
    prepared files as the run on the one file."""
    import random

    first = prepared["car-evaluation"]
    lines = first.raw.read_text().splitlines()
    random.Random(7).shuffle(lines)
    folder = tmp_path / "raw"
    folder.mkdir()
    for part in range(3):
        (folder / f"part-{part}.data").write_text("\n".join(lines[part::3]) + "\n")
    cores = spark.sparkContext.defaultParallelism
    spark.conf.set("spark.sql.files.maxPartitionBytes", str(first.raw.stat().st_size // (cores + 4)))
    try:
        again = run_prepare(spark, "car-evaluation", tmp_path / "out", raw=folder)
        partitions = int(spark.conf.get("spark.sql.shuffle.partitions"))
    finally:
        spark.conf.unset("spark.sql.files.maxPartitionBytes")
    assert partitions > cores  # the job took its shuffle partitions from the input's splits
    assert again.report["splits"] == first.report["splits"]
    for split in SPLITS:
        assert split_rows(again.output, split) == split_rows(first.output, split)


# --- statistics: approximate quartiles within the stated error of the exact ones ----------------


def rank_error(values: list[float], value: float, level: float) -> int:
    """How many ranks ``value`` is from the exact ``level`` quantile of ``values``: the value at
    rank ceil(level * n), counting from 1 (0: it is that value)."""
    import bisect

    ordered = sorted(values)
    below, through = bisect.bisect_left(ordered, value), bisect.bisect_right(ordered, value)
    target = math.ceil(level * len(ordered))
    if below < target <= through:
        return 0
    return below + 1 - target if target <= below else target - through


def stated_error(count: int) -> int:
    """The rank error percentile_approx allows at the job's accuracy: count / 10,000, rounded up."""
    import prepare

    return math.ceil(count / prepare.PERCENTILE_ACCURACY)


def numbers(values, spec) -> list[float]:
    """The values a numeric column learns from: not missing, and numbers."""
    from dataset_spec import parse_number

    found = [parse_number(v) for v in values if v.strip().lower() not in spec.missing_values]
    return [n for n in found if n is not None]


@pytest.mark.parametrize("name", DATASETS)
def test_imputed_medians_and_whiskers_come_from_quartiles_within_the_stated_error(prepared, name):
    """Each numeric feature's median (and, where outliers are clipped, the quartiles behind its
    whiskers) against the exact quantiles of the training split's values, read from baseline/."""
    from dataset_spec import IQR_WHISKER

    data = prepared[name]
    columns = [c for c in data.schema["raw"]["columns"] if c in data.schema["input_columns"]]
    lines = file_lines(data.output / "baseline")
    checked = 0
    for entry in data.schema["features"]:
        if entry["kind"] != "numeric":
            continue
        values = numbers([line[columns.index(entry["column"])] for line in lines], data.spec)
        allowed = stated_error(len(values))
        assert rank_error(values, entry["impute"], 0.5) <= allowed, entry["column"]
        assert entry["impute"] in values  # a value of the split, not between two
        if entry["clip"]:
            low, high = entry["clip"]
            spread = (high - low) / (1 + 2 * IQR_WHISKER)
            for level, quartile in ((0.25, low + IQR_WHISKER * spread), (0.75, high - IQR_WHISKER * spread)):
                value = min(values, key=lambda v, q=quartile: abs(v - q))
                assert math.isclose(value, quartile, rel_tol=1e-9, abs_tol=1e-9), (entry["column"], level)
                assert rank_error(values, value, level) <= allowed, (entry["column"], level)
        checked += 1
    assert checked or name == "car-evaluation"  # car evaluation has no numeric feature


def test_quartiles_of_41188_rows_are_within_five_ranks_of_the_exact_ones(spark):
    """bank-additional-full, the shipped spec: 41,188 values per column, so the stated error is
    5 ranks (the datasets above are small enough for 1)."""
    import prepare

    spec = load_dataset_spec("bank-marketing")
    full = RAW_FILES["bank-marketing"].with_name("bank-additional-full.csv")
    found = prepare.quartiles(prepare.records(prepare.read_raw(spark, str(full), spec), spec), spec)
    with full.open(newline="", encoding="utf-8") as handle:
        records = list(csv.DictReader(handle, delimiter=spec.delimiter))
    assert len(records) == 41188 and set(found) == {f.name for f in spec.features if f.kind == "numeric"}
    for column, levels in found.items():
        values = numbers([record[column] for record in records], spec)
        for level, value in zip((0.25, 0.5, 0.75), levels, strict=True):
            assert rank_error(values, value, level) <= stated_error(len(values)) == 5, (column, level)


# --- crafted data: duplicates, missing values, variants, outliers, unseen values ---------------

CRAFTED_SPEC = {
    "dataset": "crafted",
    "csv": {"delimiter": ",", "header": True},
    "target": {"column": "label", "problem": "binary", "positive": "yes"},
    "features": {
        "size": {"type": "numeric", "outliers": "drop"},
        "colour": {"type": "categorical", "encoding": "one-hot", "aliases": {"grey": "gray"}},
        "grade": {
            "type": "categorical",
            "encoding": "ordinal",
            "order": ["low", "mid", "high"],
            "aliases": {"medium": "mid"},
        },
    },
    "drop": ["comment"],
}


def crafted_rows() -> list[list[str]]:
    colours, grades = ["red", "gray", "blue"], ["low", "mid", "high"]
    rows = [[str(10 + i), colours[i % 3], grades[i % 3], "yes" if i % 4 == 0 else "no", f"row {i}"] for i in range(80)]
    rows += [
        ["12.5", " GREY ", "Medium", "no", "variant spellings"],
        ["12.50", "gray", "mid", "no", "the row above once normalised"],
        ["?", "red", "low", "yes", "missing size"],
        ["abc", "blue", "", "no", "invalid size, missing grade"],
        ["12", "red", "low", "", "missing target"],
        ["9999", "red", "high", "no", "an outlier"],
    ]
    return rows


def write_crafted(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["size", "colour", "grade", "label", "comment"])
        writer.writerows(rows)
    return path


def crafted_spec(**changes):
    from dataset_spec import parse_spec

    raw = {**CRAFTED_SPEC, **changes}
    return parse_spec(raw)


def test_crafted_data_is_deduplicated_imputed_and_reported(spark, tmp_path):
    import prepare

    raw = write_crafted(tmp_path / "crafted.csv", crafted_rows())
    report = prepare.prepare(spark, str(raw), crafted_spec(), str(tmp_path / "out"), SEED)
    assert report["rows_in"] == 86
    # Duplicates are rows equal in every raw column: the two spellings of one row (which differ in
    # "comment", a dropped column, too) are two rows.
    assert report["duplicates_dropped"] == 0
    assert report["missing_target_dropped"] == 1
    assert report["missing_values"]["size"] == 2 and report["invalid_numbers"]["size"] == 1
    assert report["missing_values"]["grade"] == 1
    assert report["rows_out"] == report["rows_in"] - report["duplicates_dropped"] - 1 - report["outliers_dropped"]


def test_drop_removes_training_outliers_and_clips_everywhere_else(spark, tmp_path):
    import json

    import prepare

    rows = crafted_rows()
    rows += [[str(5000 + i), "red", "high", "no", f"outlier {i}"] for i in range(12)]
    raw = write_crafted(tmp_path / "crafted.csv", rows)
    report = prepare.prepare(spark, str(raw), crafted_spec(), str(tmp_path / "out"), SEED)
    schema = json.loads((tmp_path / "out" / "schema.json").read_text())
    low, high = next(f for f in schema["features"] if f["column"] == "size")["clip"]
    assert report["outliers_dropped"] > 0
    for split in SPLITS:
        sizes = [float(row[1]) for row in split_rows(tmp_path / "out", split)]
        assert all(low <= s <= high for s in sizes), split
    evaluation = sum(
        1 for s in ("validation", "test") for row in split_rows(tmp_path / "out", s) if float(row[1]) == high
    )
    assert evaluation > 0  # evaluation outliers are kept, clipped, as inference will see them


def test_train_split_is_written_in_one_file_per_training_instance(spark, tmp_path):
    import prepare

    raw = write_crafted(tmp_path / "crafted.csv", crafted_rows())
    spec = crafted_spec(training={"algorithm": "linear-learner", "instance_count": 3})
    prepare.prepare(spark, str(raw), spec, str(tmp_path / "out"), SEED)
    files = sorted((tmp_path / "out" / "train").glob("*.csv"))
    assert len(files) == 3 and all(f.stat().st_size > 0 for f in files)
    assert len(list((tmp_path / "out" / "test").glob("*.csv"))) == 1


def test_unseen_category_encodes_as_zeros_and_ordinal_variants_resolve(prepared):
    encoder = SchemaEncoder(prepared["bank-marketing"].schema)
    record = {column: "" for column in encoder.input_columns}
    record |= {"age": "41", "job": "astronaut", "duration": "100"}
    encoded = dict(zip(encoder.feature_names, encoder.encode(record), strict=True))
    assert all(encoded[name] == 0.0 for name in encoder.feature_names if name.startswith("job="))
    car = SchemaEncoder(prepared["car-evaluation"].schema)
    assert car.encode(["MEDIUM", "vhigh", "2", "2", "small", "low"])[0] == 1.0  # med is index 1


@pytest.mark.parametrize(
    ("changes", "column", "problem"),
    [
        ({"features": {**CRAFTED_SPEC["features"], "weight": {"type": "numeric"}}}, "weight", "not in the data"),
        ({"target": {"column": "outcome", "problem": "binary", "positive": "yes"}}, "outcome", "not in the data"),
        ({"drop": []}, "comment", "in the data but not in the spec"),
        (
            {
                "features": {
                    **CRAFTED_SPEC["features"],
                    "grade": {**CRAFTED_SPEC["features"]["grade"], "order": ["low", "mid"]},
                }
            },
            "grade",
            "values ['high'] seen in the data are missing from its order ['low', 'mid']",
        ),
        ({"target": {"column": "label", "problem": "binary", "positive": "maybe"}}, "label", "needs positive 'maybe'"),
        (
            {"target": {"column": "label", "problem": "multiclass", "classes": ["yes"]}},
            "label",
            "values ['no'] are not among",
        ),
        ({"target": {"column": "label", "problem": "regression"}}, "label", "has no number among its values"),
        (
            {"target": {"column": "label", "problem": "binary", "positive_above": 1}},
            "label",
            "has no number among its values",
        ),
        (
            {"features": {**CRAFTED_SPEC["features"], "colour": {"type": "numeric"}}},
            "colour",
            "has no number among its values",
        ),
    ],
)
def test_spec_that_does_not_fit_the_data_fails_before_writing(spark, tmp_path, changes, column, problem):
    import prepare

    raw = write_crafted(tmp_path / "crafted.csv", crafted_rows())
    output = tmp_path / "out"
    with pytest.raises(SpecError) as raised:
        prepare.prepare(spark, str(raw), crafted_spec(**changes), str(output), SEED)
    assert raised.value.dataset == "crafted" and raised.value.column == column
    assert problem in raised.value.problem
    assert not output.exists()  # nothing written, so no _SUCCESS


def test_empty_input_fails_cleanly(spark, tmp_path):
    import prepare

    raw = write_crafted(tmp_path / "crafted.csv", [])
    with pytest.raises(SpecError, match="no rows in"):
        prepare.prepare(spark, str(raw), crafted_spec(), str(tmp_path / "out"), SEED)
    assert not (tmp_path / "out").exists()


def test_a_rerun_that_fails_removes_nothing_and_leaves_no_stale_success(spark, tmp_path):
    """A failure during writing must not leave an earlier run's _SUCCESS behind."""
    import prepare

    output = tmp_path / "out"
    output.mkdir()
    (output / "_SUCCESS").write_text("")
    raw = write_crafted(tmp_path / "crafted.csv", crafted_rows())

    def failing_write(uri, text):
        raise OSError("disk full")

    original = prepare.write_text
    prepare.write_text = failing_write
    try:
        with pytest.raises(OSError, match="disk full"):
            prepare.prepare(spark, str(raw), crafted_spec(), str(output), SEED)
    finally:
        prepare.write_text = original
    assert not (output / "_SUCCESS").exists()


def test_command_line_runs_the_same_script_locally(spark, tmp_path, capsys):
    import prepare

    output = tmp_path / "car"
    arguments = ["--input", str(RAW_FILES["car-evaluation"]), "--spec", str(ROOT / "datasets" / "car-evaluation.json")]
    # main() as `python etl/prepare.py` calls it; its local Spark session is the one already running.
    assert prepare.main([*arguments, "--output", str(output), "--seed", "7"]) == 0
    assert "prepared car-evaluation: 1728 rows in, 1728 out" in capsys.readouterr().out
    assert (output / "_SUCCESS").exists()


def test_the_script_runs_as_a_command_and_names_a_broken_spec(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"dataset": "broken", "csv": {"header": True}}))
    env = {**os.environ, "PYTHONPATH": ""}
    command = [sys.executable, str(ROOT / "etl" / "prepare.py"), "--input", "x", "--spec", str(broken), "--output", "y"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env, check=False)
    assert result.returncode == 1, result.stderr[-3000:]
    assert result.stderr.strip() == "error: dataset 'broken': target is required and must be an object"


def test_command_line_reports_a_spec_error_in_one_line_and_writes_nothing(spark, tmp_path, capsys):
    import prepare

    broken = tmp_path / "broken.json"
    broken.write_text((ROOT / "datasets" / "car-evaluation.json").read_text().replace('"5more"', '"five"'))
    argv = ["--input", str(RAW_FILES["car-evaluation"]), "--spec", str(broken), "--output", str(tmp_path / "out")]
    assert prepare.main(argv, session=lambda in_glue: spark) == 1
    error = capsys.readouterr().err.strip()
    assert error == (
        "error: dataset 'car-evaluation', column 'doors': values ['5more'] seen in the data are missing "
        "from its order ['2', '3', '4', 'five']"
    )
    assert not (tmp_path / "out").exists()


def test_inside_glue_a_spec_error_fails_the_job_run_with_its_message(spark, tmp_path):
    import prepare

    broken = tmp_path / "broken.json"
    broken.write_text((ROOT / "datasets" / "car-evaluation.json").read_text().replace('"5more"', '"five"'))
    argv = ["--input", str(RAW_FILES["car-evaluation"]), "--spec", str(broken), "--output", str(tmp_path / "out")]
    glue_args = ["--JOB_ID", "j_1", "--JOB_RUN_ID", "jr_1", "--job-bookmark-option", "job-bookmark-disable"]
    with pytest.raises(SpecError, match="column 'doors'"):
        prepare.main(argv + glue_args, session=lambda in_glue: spark)


def test_spec_loader_used_by_tests_matches_files():
    assert load_dataset_spec("car-evaluation").name == "car-evaluation"


# --- issue 12: what the door lets through is counted, named or refused, never silently changed ---


def write_bytes(path: Path, header: list[str], lines: list[bytes]) -> Path:
    path.write_bytes(b"\n".join([",".join(header).encode(), *lines]) + b"\n")
    return path


def encoded(rows: list[list[str]]) -> list[bytes]:
    """Rows as CSV lines (quoted where a value holds a comma), UTF-8."""
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows(rows)
    return [line.encode() for line in text.getvalue().splitlines()]


TARGET_FEATURE_SPEC = {  # CRAFTED_SPEC with the numeric feature named "target", as a file may name it
    **CRAFTED_SPEC,
    "features": {
        "target": CRAFTED_SPEC["features"]["size"],
        **{k: v for k, v in CRAFTED_SPEC["features"].items() if k != "size"},
    },
    "missing_values": ["", "?"],
}
AWKWARD_HEADER = ["target", "colour", "grade", "label", "comment"]
SHORT, LONG = b"12,red,low", b"12,red,low,no,x,extra"


def awkward_lines() -> list[bytes]:
    """The crafted rows, a first label in another spelling, numbers Spark's cast takes but that
    are not numbers, rows with too few and too many fields, bytes that are not UTF-8, a category
    XGBoost cannot name, rows equal but for the dropped column, and one exact duplicate."""
    lines = encoded([["11.5", "red", "low", " Yes ", "the first label: 'Yes'"], *crafted_rows()])
    lines += encoded([[number, "blue", "mid", "no", f"not a number: {number}"] for number in NOT_NUMBERS])
    lines += [SHORT, LONG, b"14,r\xe9d,low,no,latin-1 bytes"]
    lines += encoded([["15", "<blue>", "low", "no", "a category with <"]])
    lines += encoded([["30", "blue", "high", "no", "first"], ["30", "blue", "high", "no", "second"]])
    lines += encoded([["31", "blue", "high", "no", "twice"], ["31", "blue", "high", "no", "twice"]])
    return lines


NOT_NUMBERS = ["inf", "-Infinity", "1e999", "NaN", "1_000", "١٢"]


def test_awkward_rows_are_counted_left_out_or_invalid_and_labels_keep_their_first_spelling(spark, tmp_path):
    import prepare

    raw = write_bytes(tmp_path / "crafted.csv", AWKWARD_HEADER, awkward_lines())
    spec = crafted_spec(**{**TARGET_FEATURE_SPEC, "csv": {"header": True, "max_malformed_fraction": 0.05}})
    report = prepare.prepare(spark, str(raw), spec, str(tmp_path / "out"), SEED)

    assert report["rows_in"] == len(awkward_lines())
    assert report["malformed_dropped"] == 2
    short_row = awkward_lines().index(SHORT) + 1
    assert report["first_malformed"]["row"] == short_row and report["first_malformed"]["text"] == SHORT.decode()
    assert report["first_malformed"]["file"].endswith("crafted.csv")
    # "abc" of the crafted rows and the six that Python or Spark would read as numbers.
    assert report["invalid_numbers"]["target"] == 1 + len(NOT_NUMBERS)
    assert report["invalid_text"] == {"label": 0, "colour": 1, "grade": 0}
    # Only the exact repeat: rows apart in the dropped column or in spelling are different rows.
    assert report["duplicates_dropped"] == 1
    dropped = ("malformed_dropped", "duplicates_dropped", "missing_target_dropped", "outliers_dropped")
    assert report["rows_out"] == report["rows_in"] - sum(report[key] for key in dropped)

    schema = json.loads((tmp_path / "out" / "schema.json").read_text())
    assert schema["target"]["classes"] == ["no", "yes"] and schema["target"]["labels"] == ["no", "Yes"]
    colour = next(f for f in schema["features"] if f["column"] == "colour")
    assert "<blue>" in colour["categories"] and "r\ufffdd" not in colour["categories"]
    assert not [name for name in schema["feature_names"] if set(name) & set("[]<")]  # XGBoost refuses them
    assert schema["feature_names"][0] == "target"
    for split in SPLITS:
        assert all(math.isfinite(float(value)) for row in split_rows(tmp_path / "out", split) for value in row)


def test_more_malformed_rows_than_the_spec_allows_fail_the_run_naming_file_row_and_text(spark, tmp_path):
    import prepare

    raw = write_bytes(tmp_path / "crafted.csv", AWKWARD_HEADER, awkward_lines())
    with pytest.raises(SpecError) as raised:
        prepare.prepare(spark, str(raw), crafted_spec(**TARGET_FEATURE_SPEC), str(tmp_path / "out"), SEED)
    message = str(raised.value)
    assert "\n" not in message and message.startswith("dataset 'crafted': 2 of ")
    assert "csv.max_malformed_fraction 0.0" in message and "crafted.csv" in message
    assert f"row {awkward_lines().index(SHORT) + 1}: {SHORT.decode()!r}" in message
    assert not (tmp_path / "out").exists()


def test_rows_apart_only_in_a_dropped_column_are_not_duplicates(spark):
    """Bank marketing without duration: 19 rows repeat another in every other column."""
    import prepare
    from dataset_spec import parse_spec

    written = json.loads((ROOT / "datasets" / "bank-marketing.json").read_text())
    written["features"].pop("duration")
    spec = parse_spec({**written, "drop": ["duration"]})
    raw = prepare.read_raw(spark, str(RAW_FILES["bank-marketing"]), spec)
    rows = prepare.keyed(prepare.records(raw, spec), spec, SEED)
    assert rows.select("__data").distinct().count() == 4119 - 19  # the normalised rows: 19 repeat
    baseline = prepare.raw_feature_columns(raw.columns[:-3], spec)
    assert prepare.unique_rows(rows, spec, baseline).count() == 4119


def test_a_multiclass_target_with_one_class_in_the_data_is_refused(spark, tmp_path):
    import prepare

    rows = [row for row in crafted_rows() if row[3] == "no"]
    raw = write_crafted(tmp_path / "crafted.csv", rows)
    spec = crafted_spec(target={"column": "label", "problem": "multiclass", "classes": ["yes", "no"]})
    with pytest.raises(SpecError) as raised:
        prepare.prepare(spark, str(raw), spec, str(tmp_path / "out"), SEED)
    assert raised.value.column == "label" and "at least 2 classes; the data has ['no']" in raised.value.problem


@pytest.mark.parametrize(
    ("header", "column", "problem"),
    [
        (["size", "colour", "grade", "label", "size"], "size", "the header names 'size' twice (fields 1 and 5)"),
        (["size", "colour", "grade", "label", "Size"], "Size", "the header names 'Size' and 'size'"),
        (["size", "colour", "", "label", "comment"], None, "the header's field 3 has no name"),
    ],
)
def test_a_header_that_names_a_column_twice_or_not_at_all_is_refused(spark, tmp_path, header, column, problem):
    import prepare

    raw = write_bytes(tmp_path / "crafted.csv", header, encoded(crafted_rows()))
    with pytest.raises(SpecError) as raised:
        prepare.prepare(spark, str(raw), crafted_spec(), str(tmp_path / "out"), SEED)
    assert raised.value.column == column and problem in raised.value.problem


def test_a_file_whose_header_differs_from_the_others_is_named(spark, tmp_path):
    import prepare

    folder = tmp_path / "raw"
    folder.mkdir()
    write_crafted(folder / "a.csv", crafted_rows())
    reordered = ["colour", "size", "grade", "label", "comment"]
    write_bytes(folder / "b.csv", reordered, encoded([[r[1], r[0], *r[2:]] for r in crafted_rows()]))
    with pytest.raises(SpecError) as raised:
        prepare.prepare(spark, str(folder), crafted_spec(), str(tmp_path / "out"), SEED)
    message = str(raised.value)
    assert "\n" not in message and "b.csv" in message and "colour, size, grade, label, comment" in message


def test_a_missing_input_is_named(spark, tmp_path):
    import prepare

    with pytest.raises(SpecError, match=r"^dataset 'crafted': input .*nowhere\.csv does not exist$"):
        prepare.prepare(spark, str(tmp_path / "nowhere.csv"), crafted_spec(), str(tmp_path / "out"), SEED)


def test_command_line_names_a_missing_path_or_unreadable_spec_in_one_line(tmp_path, capsys):
    import prepare

    def no_spark(in_glue):
        raise AssertionError("the paths are checked before Spark starts")

    spec = str(ROOT / "datasets" / "car-evaluation.json")
    latin = tmp_path / "latin.json"
    latin.write_bytes(b'{"dataset": "caf\xe9"}')
    cases = [
        (
            ["--input", str(tmp_path / "none.data"), "--spec", spec],
            f"error: dataset 'car-evaluation': input {tmp_path / 'none.data'} does not exist",
        ),
        (["--input", str(RAW_FILES["car-evaluation"]), "--spec", str(tmp_path / "none.json")], "error: spec "),
        (["--input", str(RAW_FILES["car-evaluation"]), "--spec", str(latin)], "error: spec "),
    ]
    for arguments, expected in cases:
        assert prepare.main([*arguments, "--output", str(tmp_path / "out")], session=no_spark) == 1
        error = capsys.readouterr().err
        assert error.startswith(expected) and error.count("\n") == 1, error
    assert not (tmp_path / "out").exists()


# --- the Autopilot view: the same rows, normalised but neither imputed nor encoded, as CSV -------

AUTOPILOT_TRAINING = {"train": "autopilot/train", "validation": "autopilot/validation"}
AUTOPILOT_SCORING = {"validation": "autopilot/scoring/validation", "test": "autopilot/scoring/test"}
# Values with a comma and with quotes (unquoted in the raw file: Spark's reader takes a doubled
# quote for a backslash-escaped one): written as RFC 4180 has them, read back whole.
COMMA, QUOTES = "Dark Navy, Blue", 'Pale "Sky" Blue'


def autopilot_spec(raw: dict):
    from dataset_spec import parse_spec

    return parse_spec({**raw, "training": {"algorithm": "autopilot"}})


def prepare_for_autopilot(spark, name: str, raw: Path, spec, output: Path) -> Prepared:
    import prepare

    report = prepare.prepare(spark, str(raw), spec, str(output), SEED)
    schema = json.loads((output / "schema.json").read_text(encoding="utf-8"))
    return Prepared(name, raw, output, spec, report, schema)


@pytest.fixture(scope="module")
def autopilot_car(spark, tmp_path_factory) -> Prepared:
    """Car evaluation, its shipped spec trained with Autopilot instead of XGBoost."""
    spec = autopilot_spec(json.loads((ROOT / "datasets" / "car-evaluation.json").read_text()))
    output = tmp_path_factory.mktemp("autopilot") / "car-evaluation"
    return prepare_for_autopilot(spark, "car-evaluation", RAW_FILES["car-evaluation"], spec, output)


@pytest.fixture(scope="module")
def autopilot_crafted(spark, tmp_path_factory) -> Prepared:
    """The crafted rows (variant spellings, missing and invalid values, an outlier to drop) and a
    value that needs quoting, trained with Autopilot."""
    root = tmp_path_factory.mktemp("autopilot-crafted")
    rows = [*crafted_rows(), ["13", COMMA, "low", "no", "a comma"]]
    rows += [[str(5000 + i), "red", "high", "no", f"outlier {i}"] for i in range(12)]
    lines = [*encoded(rows), f"14,{QUOTES},mid,no,quotes".encode()]
    raw = write_bytes(root / "crafted.csv", ["size", "colour", "grade", "label", "comment"], lines)
    return prepare_for_autopilot(spark, "crafted", raw, autopilot_spec(CRAFTED_SPEC), root / "out")


def file_lines(folder: Path) -> list[list[str]]:
    """The rows of the folder's one file (and the folder holds nothing else)."""
    files = [path for path in folder.iterdir() if path.is_file()]
    assert len(files) == 1 and files[0].suffix == ".csv", files
    with files[0].open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def autopilot_rows(data: Prepared, split: str) -> list[list[str]]:
    """The view's rows of a split, without the header: the scoring file's for validation and test
    (checked to equal the training file's rows), the training file's for train."""
    if split == "train":
        return file_lines(data.output / AUTOPILOT_TRAINING["train"])[1:]
    scoring = file_lines(data.output / AUTOPILOT_SCORING[split])
    if split in AUTOPILOT_TRAINING:
        assert Counter(map(tuple, file_lines(data.output / AUTOPILOT_TRAINING[split])[1:])) == Counter(
            map(tuple, scoring)
        )
    return scoring


def test_autopilot_view_is_one_csv_per_folder_headed_only_where_autopilot_trains(autopilot_car):
    data = autopilot_car
    header = [data.spec.target.column, *data.schema["input_columns"]]
    assert header == ["class", "buying", "maint", "doors", "persons", "lug_boot", "safety"]
    for folder in AUTOPILOT_TRAINING.values():
        assert file_lines(data.output / folder)[0] == header
    for folder in AUTOPILOT_SCORING.values():
        first = file_lines(data.output / folder)[0]
        assert first != header and first[0] in data.schema["target"]["classes"]
    assert data.schema["autopilot"] == {
        "columns": header,
        "training": {"train": "autopilot/train/", "validation": "autopilot/validation/"},
        "scoring": {"validation": "autopilot/scoring/validation/", "test": "autopilot/scoring/test/"},
    }
    # Still one _SUCCESS, last, and no .crc files.
    files = [path for path in data.output.rglob("*") if path.is_file()]
    assert [p.relative_to(data.output).as_posix() for p in files if p.name == "_SUCCESS"] == ["_SUCCESS"]
    assert not [p for p in files if p.name.endswith(".crc")]
    success = (data.output / "_SUCCESS").stat().st_mtime_ns
    assert all(p.stat().st_mtime_ns <= success for p in files)


@pytest.mark.parametrize("fixture", ["autopilot_car", "autopilot_crafted"])
def test_autopilot_view_holds_the_prepared_rows_and_scores_in_their_order(request, fixture):
    """Line i of a scoring file is line i of the prepared split: its class is the prepared label's,
    and encoded with schema.json (imputed, clipped, encoded) it is the prepared row."""
    data = request.getfixturevalue(fixture)
    encoder = SchemaEncoder(data.schema, invalid_numbers="impute")
    classes = data.schema["target"]["classes"]
    for split in SPLITS:
        view, prepared = autopilot_rows(data, split), split_rows(data.output, split)
        assert len(view) == len(prepared) == data.report["splits"][split]["rows"], split
        if split == "train":
            continue
        for line, row in zip(view, prepared, strict=True):
            assert line[0] == classes[int(row[0])]
            features = encoder.encode(dict(zip(data.schema["input_columns"], line[1:], strict=True)))
            assert rounded(features) == rounded(row[1:])


def test_autopilot_view_of_real_data_is_the_raw_records(autopilot_car):
    """Car evaluation has no duplicates, no missing value and writes in lower case: the view is the
    raw file, a column order and a shuffle apart."""
    data = autopilot_car
    columns = [data.spec.target.column, *data.schema["input_columns"]]
    raw = Counter(tuple(record[c] for c in columns) for record in raw_records(data))
    view = Counter(tuple(line) for split in SPLITS for line in autopilot_rows(data, split))
    assert view == raw and sum(view.values()) == 1728


def test_autopilot_view_is_normalised_but_not_imputed_clipped_or_encoded(autopilot_crafted):
    data = autopilot_crafted
    assert data.report["outliers_dropped"] > 0
    lines = [line for split in SPLITS for line in autopilot_rows(data, split)]
    by_row = Counter(tuple(line) for line in lines)
    # label, size, colour, grade: numbers as doubles, text trimmed, in lower case, aliases resolved.
    assert by_row[("no", "12.5", "gray", "mid")] == 2  # " GREY ", "Medium" and its normalised twin
    assert ("yes", "", "red", "low") in by_row  # size "?": missing, an empty field, not the median
    assert ("no", "", "blue", "") in by_row  # size "abc" (invalid) and grade "" (missing)
    assert ("no", "13.0", COMMA.lower(), "low") in by_row and ("no", "14.0", QUOTES.lower(), "mid") in by_row
    assert {line[2] for line in lines} == {"red", "gray", "blue", COMMA.lower(), QUOTES.lower()}
    assert {line[3] for line in lines} == {"low", "mid", "high", ""}
    sizes = [float(line[1]) for line in lines if line[1]]
    assert max(sizes) >= 5000  # evaluation outliers as they are: the prepared rows clip them
    assert not any(line[0] == "" for line in lines)  # rows without a target are left out
    folders = [AUTOPILOT_TRAINING["train"], *AUTOPILOT_SCORING.values()]
    text = "".join(path.read_text() for folder in folders for path in (data.output / folder).glob("*.csv"))
    assert '"dark navy, blue"' in text and '"pale ""sky"" blue"' in text and "\\" not in text


def test_no_autopilot_view_for_other_algorithms(prepared):
    data = prepared["car-evaluation"]
    assert data.spec.training.algorithm == "xgboost"
    assert not (data.output / "autopilot").exists() and "autopilot" not in data.schema
