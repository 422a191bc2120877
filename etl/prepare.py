"""Prepare a raw dataset for SageMaker, as the Glue job and, unchanged, on a laptop.

    python etl/prepare.py --input PATH_OR_S3_URI --spec PATH_OR_S3_URI --output PATH_OR_S3_URI [--seed N]

Inside Glue (which adds its own ``--JOB_RUN_ID`` and friends) the job's Spark session is used;
anywhere else a local one, bound to 127.0.0.1.

What it does, in order:

1. read the raw CSV file(s) as strings; check the columns against the spec;
2. normalise: trim, lower-case categorical values and resolve the spec's aliases; the spec's
   missing-value markers become nulls; numeric columns are cast (unparseable values count as
   missing and are reported);
3. drop exact duplicates and rows whose target is missing; check the target and the ordinal
   values against the spec (a value outside an ordinal order fails the run);
4. split train/validation/test with the spec's fractions, stratified on the target for
   classification, in a shuffled order that depends only on the seed and the rows (a hash),
   so the same seed gives the same output on any cluster;
5. fit on the training split only (no leakage): medians and most frequent values for
   imputation, IQR whiskers for outliers, one-hot categories;
6. transform every split: impute; outliers per the spec (``clip`` to the whiskers; ``drop``
   removes training rows beyond them, and clips evaluation rows as inference will, because a
   request cannot be dropped and dropping test rows would flatter the metrics); encode (ordinal
   index, one-hot with all zeros for an unseen value); target to 0..k-1 (numeric for regression);
7. write ``train/``, ``validation/``, ``test/`` as SageMaker CSV (no header, target first),
   ``schema.json`` (everything inference needs to prepare a raw record the same way),
   ``report.json``, and ``_SUCCESS`` last. A run that fails writes no ``_SUCCESS``. When the
   spec trains with Autopilot, which does its own preparation, also its view of the same rows:
   the target (class name or number) and the features as step 2 leaves them (not imputed,
   clipped or encoded; missing: an empty field), with a header in ``autopilot/train/`` and
   ``autopilot/validation/``, and without one, in the order of ``validation/`` and ``test/``
   line by line, in ``autopilot/scoring/validation/`` and ``autopilot/scoring/test/``.
   Always ``baseline/``: the training split's records as an endpoint receives them, the features
   only, in the file's order, each value as the raw file writes it (not normalised), comma
   separated without a header; Model Monitor's baseline job reads it, so that the endpoint's
   captured requests are compared with what the model was trained on, in the same form.

Every problem with the spec or the data is raised as a SpecError naming dataset, column and
problem, before anything is written.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

from dataset_spec import IQR_WHISKER, NUMBER_PATTERN, WHITESPACE, DatasetSpec, SpecError, load_spec

SPLITS = ("train", "validation", "test")
SUCCESS = "_SUCCESS"
SCHEMA_FORMAT = "ml-platform/prepared-csv"
SCHEMA_VERSION = 1
_KEY, _LABEL, _SPLIT, _TARGET = "__shuffle_key", "__label", "__split", "__target"
# Each raw record's bookkeeping: its text when it has the wrong number of fields (else null), its
# file and position, the first of those among its duplicates, and the target as the file writes it.
_MALFORMED, _FILE, _POSITION, _ORDER, _WRITTEN = "__malformed", "__file", "__position", "__order", "__written"
_BOOKKEEPING = (_MALFORMED, _FILE, _POSITION)
_RAW = "__raw_"  # + the column's index: a record's values as read, beside the normalised ones
_INVALID = "__invalid_"  # + column: the value when it is present but not valid (else null)
# What Spark's UTF-8 decoder reads bytes that are not UTF-8 as: U+FFFD, the replacement character.
NOT_UTF8 = "\ufffd"
# XGBoost refuses "[", "]" and "<" in a feature name: output names escape them (and "%") as URLs do.
_NAME_ESCAPES = str.maketrans({"%": "%25", "[": "%5B", "]": "%5D", "<": "%3C"})
# Autopilot's view (spec algorithm "autopilot"): per split, the folder it trains on (with a
# header) and the folder a batch transform scores (no header, in the prepared file's row order).
AUTOPILOT_TRAINING = {"train": "autopilot/train", "validation": "autopilot/validation"}
AUTOPILOT_SCORING = {"validation": "autopilot/scoring/validation", "test": "autopilot/scoring/test"}
BASELINE = "baseline"  # the training split's raw records, for Model Monitor's baseline job


# --- storage: local paths and s3:// URIs --------------------------------------------------------


def _s3_parts(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def _s3():
    import boto3  # only where S3 is used: the Glue job, or a laptop with credentials

    return boto3.client("s3")


def read_text(uri: str) -> str:
    if uri.startswith("s3://"):
        bucket, key = _s3_parts(uri)
        return _s3().get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
    with open(uri, encoding="utf-8") as handle:
        return handle.read()


def write_text(uri: str, text: str) -> None:
    if uri.startswith("s3://"):
        bucket, key = _s3_parts(uri)
        _s3().put_object(Bucket=bucket, Key=key, Body=text.encode("utf-8"))
        return
    os.makedirs(os.path.dirname(uri) or ".", exist_ok=True)
    with open(uri, "w", encoding="utf-8") as handle:
        handle.write(text)


def remove(uri: str) -> None:
    if uri.startswith("s3://"):
        bucket, key = _s3_parts(uri)
        _s3().delete_object(Bucket=bucket, Key=key)
    elif os.path.exists(uri):
        os.remove(uri)


def join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *parts])


# --- Spark ----------------------------------------------------------------------------------------


def spark_session(in_glue: bool):
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName("ml-platform-prepare")
    if not in_glue:
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        builder = (
            builder.master("local[*]")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            # One shuffle partition per core: the data of one dataset fits a laptop.
            .config("spark.sql.shuffle.partitions", str(max(2, os.cpu_count() or 2)))
            # Adaptive execution re-plans each shuffle; on a laptop's data that costs more than it
            # saves (bank marketing: 6.9 s -> 5.9 s per run, measured on 2 cores).
            .config("spark.sql.adaptive.enabled", "false")
            # A short-lived JVM: the C1 compiler alone starts faster (measured in bench/prepare.py).
            .config("spark.driver.extraJavaOptions", "-XX:TieredStopAtLevel=1")
            # No .crc side files next to the CSVs: a SageMaker channel reads every file it gets.
            .config("spark.hadoop.fs.file.impl", "org.apache.hadoop.fs.RawLocalFileSystem")
        )
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    # Spark's own _SUCCESS in train/ etc. would look like ours to the training trigger.
    spark.sparkContext._jsc.hadoopConfiguration().set("mapreduce.fileoutputcommitter.marksuccessfuljobs", "false")
    return spark


def _col(name: str):
    from pyspark.sql import functions as F

    return F.col("`" + name.replace("`", "``") + "`")


def _trimmed(column):
    from pyspark.sql import functions as F

    space = "[" + "".join(f"\\x{ord(c):02x}" for c in WHITESPACE) + "]+"
    return F.regexp_replace(column, f"^{space}|{space}$", "")


def _lookup(mapping: Mapping[str, Any], column, default=None):
    """``mapping[column]`` as a Spark expression (``default`` where the value is not a key)."""
    from pyspark.sql import functions as F

    if not mapping:
        return column if default is None else F.lit(default)
    pairs = [F.lit(x) for item in mapping.items() for x in item]
    found = F.create_map(*pairs)[column]
    return F.coalesce(found, column if default is None else F.lit(default))


# --- the preparation ------------------------------------------------------------------------------


def _csv_reader(spark, spec: DatasetSpec, header: bool):
    return (
        spark.read.option("sep", spec.delimiter)
        .option("header", "true" if header else "false")
        .option("quote", '"')
        .option("recursiveFileLookup", "true")
    )


def _opened(spec: DatasetSpec, uri: str, read: Callable[[], Any]):
    """``read()``, with an input that does not exist or holds nothing named as such."""
    from pyspark.errors import AnalysisException

    try:
        return read()
    except AnalysisException as error:
        if error.getErrorClass() == "PATH_NOT_FOUND":
            raise SpecError(spec.name, None, f"input {uri} does not exist") from None
        if error.getErrorClass() == "UNABLE_TO_INFER_SCHEMA":
            raise SpecError(spec.name, None, f"no rows in {uri}") from None
        raise


def header_names(spark, uri: str, spec: DatasetSpec) -> list[str]:
    """The header as the file writes it (Spark's own header reading renames repeated names)."""
    first = _opened(spec, uri, lambda: _csv_reader(spark, spec, header=False).csv(uri)).first()
    if first is None:
        raise SpecError(spec.name, None, f"no rows in {uri}")
    names: list[str] = []
    for position, written in enumerate(first, 1):
        name = (written or "").strip(WHITESPACE)
        if not name:
            raise SpecError(spec.name, None, f"the header's field {position} has no name (header: {list(first)})")
        same = [index for index, other in enumerate(names, 1) if other.casefold() == name.casefold()]
        if same and names[same[0] - 1] == name:
            raise SpecError(spec.name, name, f"the header names {name!r} twice (fields {same[0]} and {position})")
        if same:
            problem = f"the header names {name!r} and {names[same[0] - 1]!r}, which differ only in case"
            raise SpecError(spec.name, name, f"{problem}; Spark cannot tell them apart")
        names.append(name)
    return [str(written) for written in first]


def read_raw(spark, uri: str, spec: DatasetSpec):
    """Every record of the raw file(s), every column as a string, with its file and position;
    ``__malformed`` holds the text of a record with the wrong number of fields (else null)."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType, StructField, StructType

    written = header_names(spark, uri, spec) if spec.header else list(spec.columns)
    names = [name.strip(WHITESPACE) for name in written]
    spec.check_columns(names)
    # Spark parses only the columns a query uses unless told otherwise, and then cannot tell a
    # record with the wrong number of fields from a good one.
    spark.conf.set("spark.sql.csv.parser.columnPruning.enabled", "false")
    schema = StructType([StructField(name, StringType()) for name in [*written, _MALFORMED]])
    reader = (
        _csv_reader(spark, spec, spec.header)
        .schema(schema)
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", _MALFORMED)
        .option("enforceSchema", "false")  # every file's header is checked against the first's
    )
    frame = _opened(spec, uri, lambda: reader.csv(uri)).toDF(*names, _MALFORMED)
    return frame.withColumn(_FILE, F.input_file_name()).withColumn(_POSITION, F.monotonically_increasing_id())


def unique_rows(frame):
    """The well-formed records, each once: duplicates are records equal in every column of the
    file (those the spec drops too). Each keeps the first file and position it appears at.
    ``frame`` is :func:`read_raw`'s, or :func:`records` (whose other columns follow from those)."""
    from pyspark.sql import functions as F

    columns = [c for c in frame.columns if c not in _BOOKKEEPING]
    first = F.min(F.struct(F.col(_FILE), F.col(_POSITION))).alias(_ORDER)
    return frame.where(F.col(_MALFORMED).isNull()).groupBy(*[_col(c) for c in columns]).agg(first)


def _numeric(spec: DatasetSpec, column: str) -> bool:
    target = spec.target
    if column == target.column:
        return target.problem == "regression" or target.positive_above is not None
    return not spec.feature(column).categorical


def _labelled_target(spec: DatasetSpec) -> bool:
    """A target of labels (binary with a positive label, or multiclass), not of numbers."""
    return not _numeric(spec, spec.target.column)


def _number(text):
    """``text`` as a double when it is a number (dataset_spec.NUMBER_PATTERN) and finite, else null."""
    from pyspark.sql import functions as F

    number = F.when(text.rlike(NUMBER_PATTERN), text.cast("double"))
    return F.when(number.between(-sys.float_info.max, sys.float_info.max), number)


def normalised(frame, spec: DatasetSpec, keep: tuple[Any, ...] = ()):
    """The target and the features: trimmed, missing markers as nulls, numbers as doubles,
    categorical values lower-cased with aliases resolved; a value present but invalid (not a
    finite number; bytes that are not UTF-8) is null, and kept in ``__invalid_<column>``. A
    target of labels is also kept trimmed as written (``__written``)."""
    from pyspark.sql import functions as F

    target = spec.target
    columns = []
    flags = []
    for name in [target.column, *(f.name for f in spec.features)]:
        text = _trimmed(_col(name))
        present = F.when(~F.lower(text).isin(list(spec.missing_values)) & text.isNotNull(), text)
        if _numeric(spec, name):
            value = _number(present)
        else:
            aliases = target.aliases if name == target.column else spec.feature(name).aliases
            value = _lookup(aliases, F.lower(F.when(~present.contains(NOT_UTF8), present)))
        columns.append(value.alias(name))
        flags.append(F.when(value.isNull(), present).alias(_INVALID + name))
    if _labelled_target(spec):
        columns.append(F.when(_col(target.column).isNotNull(), _trimmed(_col(target.column))).alias(_WRITTEN))
    return frame.select(*columns, *flags, *keep)


def records(raw, spec: DatasetSpec):
    """Each raw record normalised (:func:`normalised`), its values as read beside (``__raw_<i>``)
    and its bookkeeping: what every later step reads, so the expressions run once per record."""
    from pyspark.sql import functions as F

    read = [_col(c).alias(f"{_RAW}{i}") for i, c in enumerate(c for c in raw.columns if c not in _BOOKKEEPING)]
    return normalised(raw, spec, keep=(*read, *(F.col(c) for c in _BOOKKEEPING)))


def statistics(clean, spec: DatasetSpec):
    """One pass over the :func:`records`: rows, malformed rows (and the first of them), and per
    column the missing values, the invalid ones and the smallest invalid one, of the well-formed."""
    from pyspark.sql import functions as F

    good = F.col(_MALFORMED).isNull()
    columns = [spec.target.column, *(f.name for f in spec.features)]
    first = F.struct(F.col(_FILE).alias("file"), F.col(_POSITION).alias("position"), F.col(_MALFORMED).alias("text"))
    return clean.select(
        F.count(F.lit(1)).alias("rows"),
        F.sum((~good).cast("int")).alias("malformed"),
        F.min(F.when(~good, first)).alias("first_malformed"),
        *[F.sum(F.when(good, _col(c).isNull().cast("int"))).alias(f"missing:{c}") for c in columns],
        *[F.sum(F.when(good, _col(_INVALID + c).isNotNull().cast("int"))).alias(f"invalid:{c}") for c in columns],
        *[F.min(F.when(good, _col(_INVALID + c))).alias(f"example:{c}") for c in columns],
    ).first()


def header_mismatch(spec: DatasetSpec, error: Exception) -> SpecError | None:
    """Spark's refusal of a file whose header is not the first file's (through py4j: as text)."""
    text = str(error)
    where = re.search(r"CSV file: (\S+)", text)
    if "CSV header" not in text or not where:
        return None
    found = re.search(r"Header: (.*)\s+Schema: (.*)", text)
    if found:
        header = f"the header {found.group(1).strip()}, not the first file's {found.group(2).strip()}"
    else:
        header = "a header of another number of columns than the first file's"
    problem = f"file {where.group(1)} has {header}: every file of a dataset has the same columns in the same order"
    return SpecError(spec.name, None, problem)


def first_malformed(frame, stats) -> dict[str, Any] | None:
    """The first record with the wrong number of fields: its file, its row in the file (the
    header and empty lines not counted) and its text."""
    from pyspark.sql import functions as F

    first = stats["first_malformed"]
    if first is None:
        return None
    same_file = (F.col(_FILE) == first["file"]) & (F.col(_POSITION) <= first["position"])
    return {"file": first["file"], "row": frame.where(same_file).count(), "text": first["text"]}


def check_malformed(spec: DatasetSpec, stats, first: dict[str, Any] | None, width: int) -> None:
    rows, malformed = stats["rows"], stats["malformed"]
    if first is None or malformed <= spec.max_malformed_fraction * rows:
        return
    names = "the header" if spec.header else "csv.columns"
    where = f"the first: {first['file']}, row {first['row']}: {first['text']!r}"
    hint = " (no row has them: check csv.delimiter)" if malformed == rows else ""
    raise SpecError(
        spec.name,
        None,
        f"{malformed} of {rows} rows have a number of fields other than the {width} {names} names{hint}, "
        f"more than csv.max_malformed_fraction {spec.max_malformed_fraction} allows; {where}",
    )


def check_numbers(spec: DatasetSpec, stats) -> None:
    """A numeric column without a single number is a mistake of the spec, not missing data."""
    good = stats["rows"] - stats["malformed"]
    for column in [spec.target.column, *(f.name for f in spec.features)]:
        invalid = stats[f"invalid:{column}"]
        if not _numeric(spec, column) or not invalid or good - stats[f"missing:{column}"] > 0:
            continue
        if column == spec.target.column:
            what = "a regression target" if spec.target.problem == "regression" else "a target with positive_above"
            hint = f"{what} is numeric"
        else:
            hint = "is it categorical?"
        example = stats[f"example:{column}"]
        problem = f"has no number among its values ({invalid} are not numbers, such as {example!r}): {hint}"
        raise SpecError(spec.name, column, problem)


def first_spellings(labelled, spec: DatasetSpec) -> dict[str, str]:
    """Each class of a target of labels and the value it first appears as in the raw data
    (trimmed; first by file, then position): ``{"ab": "AB"}``."""
    from pyspark.sql import functions as F

    first = F.min(F.struct(F.col(_ORDER), F.col(_WRITTEN))).alias("first")
    rows = labelled.groupBy(_col(spec.target.column).alias("class")).agg(first).collect()
    return {row["class"]: row["first"][_WRITTEN] for row in rows}


def _label_expression(spec: DatasetSpec, classes: list[str]):
    from pyspark.sql import functions as F

    target = spec.target
    value = _col(target.column)
    if target.problem == "regression":
        return value.cast("double")
    if target.positive_above is not None:
        return (value > F.lit(float(target.positive_above))).cast("int")
    if target.problem == "binary":
        return (value == F.lit(target.positive)).cast("int")
    return _lookup({c: i for i, c in enumerate(classes)}, value).cast("int")


def distinct_values(frame, columns: dict[str, Any]) -> dict[str, set[str]]:
    """The distinct non-null values of several (string) expressions, in one Spark job."""
    from pyspark.sql import functions as F

    if not columns:
        return {}
    pairs = F.explode(
        F.array(*[F.struct(F.lit(n).alias("c"), e.cast("string").alias("v")) for n, e in columns.items()])
    )
    seen: dict[str, set[str]] = {name: set() for name in columns}
    for row in frame.select(pairs.alias("p")).select("p.c", "p.v").where(F.col("v").isNotNull()).distinct().collect():
        seen[row["c"]].add(row["v"])
    return seen


def checked_values(frame, spec: DatasetSpec) -> dict[str, set[str]]:
    """Distinct ordinal values and sides of positive_above, for the checks (the classes of a
    target of labels come with their first spellings: :func:`first_spellings`)."""
    from pyspark.sql import functions as F

    target = spec.target
    columns: dict[str, Any] = {f.name: _col(f.name) for f in spec.features if f.kind == "ordinal"}
    if target.positive_above is not None:
        columns[_LABEL] = _col(target.column) > F.lit(float(target.positive_above))
    return distinct_values(frame, columns)


def target_classes(spec: DatasetSpec, seen: set[str]) -> list[str]:
    """The target's classes in label order (index = label), checked against the values seen."""
    target = spec.target
    if target.problem == "regression":
        return []
    if target.positive_above is not None:
        if seen != {"true", "false"}:
            raise SpecError(
                spec.name, target.column, f"every value falls on one side of positive_above={target.positive_above}"
            )
        return [f"<= {target.positive_above}", f"> {target.positive_above}"]
    values = sorted(seen)
    if target.problem == "binary":
        if target.positive not in values or len(values) != 2:
            raise SpecError(
                spec.name,
                target.column,
                f"a binary target needs positive {target.positive!r} and one other value; the data has {values}",
            )
        return [next(v for v in values if v != target.positive), target.positive]
    if target.classes:
        unknown = [v for v in values if v not in target.classes]
        if unknown:
            raise SpecError(spec.name, target.column, f"values {unknown} are not among classes {list(target.classes)}")
    if len(values) < 2:
        raise SpecError(
            spec.name, target.column, f"a multiclass target needs at least 2 classes; the data has {values}"
        )
    return list(target.classes) or values


def target_labels(spec: DatasetSpec, classes: list[str], spellings: Mapping[str, str]) -> list[str]:
    """Each class as it first appears in the raw data (a class never seen: as the spec names it)."""
    return [spellings.get(c, c) for c in classes] if _labelled_target(spec) else list(classes)


def check_ordinals(spec: DatasetSpec, seen: dict[str, set[str]]) -> None:
    for feature in spec.features:
        if feature.kind != "ordinal":
            continue
        outside = sorted(seen.get(feature.name, set()) - set(feature.order))
        if outside:
            raise SpecError(
                spec.name,
                feature.name,
                f"values {outside} seen in the data are missing from its order {list(feature.order)}",
            )


def with_split(frame, spec: DatasetSpec, seed: int):
    """Adds the shuffle key (a hash of seed and row) and the split, stratified on the label."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    data_columns = [spec.target.column, *(f.name for f in spec.features)]
    keyed = frame.withColumn(_KEY, F.xxhash64(F.lit(seed), *[_col(c) for c in data_columns]))
    # The row itself breaks hash ties, then its values as read (rows that normalise alike).
    order = [F.col(_KEY), *[_col(c) for c in data_columns], *[F.col(c) for c in frame.columns if c.startswith(_RAW)]]
    if spec.target.problem == "regression":
        window, whole = Window.orderBy(*order), Window.partitionBy()
    else:
        window, whole = Window.partitionBy(_LABEL).orderBy(*order), Window.partitionBy(_LABEL)
    position = (F.row_number().over(window) - 1) / F.count(F.lit(1)).over(whole)
    train, validation = spec.split["train"], spec.split["train"] + spec.split["validation"]
    split = F.when(position < train, "train").when(position < validation, "validation").otherwise("test")
    return keyed.withColumn(_SPLIT, split)


def fit(train, spec: DatasetSpec) -> list[dict[str, Any]]:
    """Per feature, what the transform needs, learnt from the training split only."""
    from pyspark.sql import functions as F

    numeric = [f for f in spec.features if f.kind == "numeric"]
    categorical = [f for f in spec.features if f.categorical]
    quartiles: dict[str, list[float | None]] = {}
    if numeric:
        row = train.select(
            *[F.expr(f"percentile(`{f.name}`, array(0.25, 0.5, 0.75))").alias(f.name) for f in numeric]
        ).first()
        quartiles = {f.name: row[f.name] for f in numeric}
    counts: dict[str, dict[str, int]] = {}
    if categorical:
        pairs = F.explode(F.array(*[F.struct(F.lit(f.name).alias("c"), _col(f.name).alias("v")) for f in categorical]))
        grouped = (
            train.select(pairs.alias("p")).select("p.c", "p.v").where(F.col("v").isNotNull()).groupBy("c", "v").count()
        )
        for row in grouped.collect():
            counts.setdefault(row["c"], {})[row["v"]] = row["count"]

    fitted: list[dict[str, Any]] = []
    for feature in spec.features:
        if feature.kind == "numeric":
            q1, median, q3 = quartiles.get(feature.name) or (None, None, None)
            if q1 is None or median is None or q3 is None:
                raise SpecError(spec.name, feature.name, "has no value in the training split to learn from")
            clip = None
            if feature.outliers != "keep":
                spread = IQR_WHISKER * (q3 - q1)
                clip = [q1 - spread, q3 + spread]
            fitted.append(
                {
                    "column": feature.name,
                    "kind": "numeric",
                    "impute": median,
                    "clip": clip,
                    "outliers": feature.outliers,
                    "outputs": [feature_name(feature.name)],
                }
            )
            continue
        values = counts.get(feature.name, {})
        if not values:
            raise SpecError(spec.name, feature.name, "has no value in the training split to learn from")
        mode = min(values, key=lambda v: (-values[v], v))  # most frequent; ties to the first value
        entry: dict[str, Any] = {
            "column": feature.name,
            "kind": feature.kind,
            "impute": mode,
            "aliases": dict(feature.aliases),
        }
        if feature.kind == "ordinal":
            entry |= {"order": list(feature.order), "outputs": [feature_name(feature.name)]}
        else:
            categories = sorted(values)
            entry |= {"categories": categories, "outputs": [feature_name(f"{feature.name}={c}") for c in categories]}
        fitted.append(entry)
    check_feature_names(spec, fitted)
    return fitted


def feature_name(text: str) -> str:
    """A name XGBoost takes for an output feature: "[", "]", "<" (and "%") escaped as in URLs."""
    return text.translate(_NAME_ESCAPES)


def check_feature_names(spec: DatasetSpec, fitted: list[dict[str, Any]]) -> None:
    """XGBoost needs each output feature's name once ("a=b" could be feature "a", value "b")."""
    seen: set[str] = set()
    for entry in fitted:
        for name in entry["outputs"]:
            if name in seen:
                problem = f"its output feature {name!r} has the name of another feature's; XGBoost needs each once"
                raise SpecError(spec.name, entry["column"], problem)
            seen.add(name)


def transform(frame, fitted: list[dict[str, Any]]):
    """Target first, then the encoded features, plus the key and split for writing. The outputs
    are named by position: the schema names them (a feature may be called "target")."""
    from pyspark.sql import functions as F

    columns = [F.col(_LABEL).alias(_TARGET)]
    for entry in fitted:
        value = F.coalesce(_col(entry["column"]), F.lit(entry["impute"]))
        if entry["kind"] == "numeric":
            if entry["clip"] is not None:
                low, high = entry["clip"]
                value = F.least(F.greatest(value, F.lit(low)), F.lit(high))
            columns.append(value.cast("double"))
        elif entry["kind"] == "ordinal":
            columns.append(_lookup({v: i for i, v in enumerate(entry["order"])}, value).cast("int"))
        else:
            columns += [(value == F.lit(c)).cast("int") for c in entry["categories"]]
    named = [columns[0], *(column.alias(f"__feature_{i}") for i, column in enumerate(columns[1:]))]
    return frame.select(*named, F.col(_KEY), F.col(_SPLIT))


def outlier_filter(fitted: list[dict[str, Any]]):
    """True for rows inside the whiskers of every ``drop`` feature (after imputation)."""
    from pyspark.sql import functions as F

    keep = F.lit(True)
    for entry in fitted:
        if entry["kind"] == "numeric" and entry["outliers"] == "drop":
            low, high = entry["clip"]
            value = F.coalesce(_col(entry["column"]), F.lit(entry["impute"]))
            keep = keep & value.between(low, high)
    return keep


def autopilot_view(kept, spec: DatasetSpec, classes: list[str]):
    """The rows as Autopilot reads them: the target (its class, ``classes[label]``; the number for
    regression), then every feature as :func:`normalised` leaves it (no imputation, clipping or
    encoding; missing is null), named as the spec names them; plus the key and split for writing."""
    from pyspark.sql import functions as F

    target = F.array(*[F.lit(c) for c in classes])[F.col(_LABEL)] if classes else F.col(_LABEL)
    features = [_col(f.name) for f in spec.features]
    return kept.select(target.alias(spec.target.column), *features, F.col(_KEY), F.col(_SPLIT))


def write_autopilot(view, output_uri: str) -> None:
    """:func:`autopilot_view` as CSV, one file per folder, each ordered as the prepared splits are
    (by the shuffle key), so line i of a scoring file is line i of the prepared split's file."""
    from pyspark.sql import functions as F

    folders = [(split, folder, True) for split, folder in AUTOPILOT_TRAINING.items()]
    folders += [(split, folder, False) for split, folder in AUTOPILOT_SCORING.items()]
    for split, folder, header in folders:
        part = view.where(F.col(_SPLIT) == split).repartitionByRange(1, _KEY).sortWithinPartitions(_KEY)
        (
            part.drop(_KEY, _SPLIT)
            .write.mode("overwrite")
            .option("header", "true" if header else "false")
            # RFC 4180, as Autopilot (pandas) reads it: a quote inside a value is doubled, not
            # escaped with a backslash (Spark's default).
            .option("escape", '"')
            # Null (missing) is an empty field, and so is an empty text (Spark would write "").
            .option("emptyValue", "")
            .csv(join(output_uri, folder))
        )


def raw_feature_columns(file_columns: list[str], spec: DatasetSpec) -> list[str]:
    """The ``__raw_<i>`` columns of the features, in the file's order: a features-only request's
    layout (``training_jobs/schema_encoder.py``)."""
    features = {f.name for f in spec.features}
    return [f"{_RAW}{i}" for i, name in enumerate(file_columns) if name in features]


def write_baseline(train, raw_features: list[str], output_uri: str) -> None:
    """The training split's records, before outliers are dropped (a request is never dropped), as
    an endpoint receives them: one comma-separated file, no header, values as read."""
    (
        train.select(*raw_features)
        .coalesce(1)
        .write.mode("overwrite")
        .option("header", "false")
        .option("escape", '"')
        .option("emptyValue", "")
        .csv(join(output_uri, BASELINE))
    )


def autopilot_layout(spec: DatasetSpec) -> dict[str, Any]:
    """Where :func:`write_autopilot` writes and the columns of its files, for schema.json."""
    return {
        "columns": [spec.target.column, *(f.name for f in spec.features)],
        "training": {split: folder + "/" for split, folder in AUTOPILOT_TRAINING.items()},
        "scoring": {split: folder + "/" for split, folder in AUTOPILOT_SCORING.items()},
    }


def prepare(spark, input_uri: str, spec: DatasetSpec, output_uri: str, seed: int = 42) -> dict[str, Any]:
    """Run the preparation; returns the report (also written as report.json)."""
    from pyspark.sql import functions as F

    started = time.perf_counter()
    raw = read_raw(spark, input_uri, spec)
    clean = records(raw, spec).cache()
    try:
        stats = statistics(clean, spec)
    except Exception as error:  # Spark's own, through py4j
        mismatch = header_mismatch(spec, error)
        if mismatch is None:
            raise
        raise mismatch from None
    rows_in = stats["rows"]
    if rows_in == 0:
        raise SpecError(spec.name, None, f"no rows in {input_uri}")
    malformed = first_malformed(clean, stats)
    check_malformed(spec, stats, malformed, len(raw.columns) - 3)
    check_numbers(spec, stats)

    unique = unique_rows(clean).cache()
    labelled = unique.where(_col(spec.target.column).isNotNull())
    spellings = first_spellings(labelled, spec) if _labelled_target(spec) else {}
    seen = checked_values(labelled, spec)
    classes = target_classes(spec, seen.get(_LABEL, set(spellings)))
    check_ordinals(spec, seen)

    columns = [_col(c) for c in [spec.target.column, *(f.name for f in spec.features)]]
    raw_features = raw_feature_columns(raw.columns[:-3], spec)
    split = with_split(
        labelled.select(*columns, *raw_features).withColumn(_LABEL, _label_expression(spec, classes)), spec, seed
    )
    split = split.cache()
    fitted = fit(split.where(F.col(_SPLIT) == "train"), spec)
    kept = split.where((F.col(_SPLIT) != "train") | outlier_filter(fitted))
    prepared = transform(kept.drop(*raw_features), fitted).cache()

    balance: dict[str, dict[str, int]] = {s: {} for s in SPLITS}
    for row in prepared.groupBy(_SPLIT, _TARGET).count().collect():
        label = classes[int(row[_TARGET])] if classes else "all"
        balance[row[_SPLIT]][label] = balance[row[_SPLIT]].get(label, 0) + row["count"]
    rows_out = sum(sum(b.values()) for b in balance.values())
    if any(not balance[s] for s in SPLITS):
        raise SpecError(spec.name, None, f"too few rows ({rows_out}) to fill train, validation and test")
    rows_unique = unique.count()
    rows_labelled = split.count()

    # --- writing: nothing above this line writes; _SUCCESS goes last ---
    remove(join(output_uri, SUCCESS))
    names = [c for c in prepared.columns if c not in (_KEY, _SPLIT)]
    for name in SPLITS:
        # One file per training instance for train (SageMaker shards a channel by S3 key), so
        # a multi-instance job gets a share each; ranges of the shuffle key keep it reproducible.
        files = spec.training.instance_count if name == "train" else 1
        part = prepared.where(F.col(_SPLIT) == name).repartitionByRange(files, _KEY).sortWithinPartitions(_KEY)
        part.select(*names).write.mode("overwrite").option("header", "false").csv(join(output_uri, name))
    write_baseline(split.where(F.col(_SPLIT) == "train"), raw_features, output_uri)
    autopilot = spec.training.algorithm == "autopilot"
    if autopilot:
        write_autopilot(autopilot_view(kept, spec, classes), output_uri)

    labels = target_labels(spec, classes, spellings)
    schema = build_schema(spec, fitted, classes, labels, seed, input_uri, balance, raw.columns[:-3])
    if autopilot:
        schema["autopilot"] = autopilot_layout(spec)
    columns_in = [spec.target.column, *(f.name for f in spec.features)]
    report = {
        "dataset": spec.name,
        "input": input_uri,
        "seed": seed,
        "rows_in": rows_in,
        "malformed_dropped": stats["malformed"],
        "first_malformed": malformed,
        "duplicates_dropped": rows_in - stats["malformed"] - rows_unique,
        "missing_target_dropped": rows_unique - rows_labelled,
        "outliers_dropped": rows_labelled - rows_out,
        "rows_out": rows_out,
        "missing_values": {c: stats[f"missing:{c}"] for c in columns_in},
        "invalid_numbers": {c: stats[f"invalid:{c}"] for c in columns_in if _numeric(spec, c)},
        "invalid_text": {c: stats[f"invalid:{c}"] for c in columns_in if not _numeric(spec, c)},
        "splits": {s: {"rows": sum(balance[s].values()), "classes": balance[s]} for s in SPLITS},
        "seconds": round(time.perf_counter() - started, 2),
    }
    write_text(join(output_uri, "schema.json"), json.dumps(schema, indent=2) + "\n")
    write_text(join(output_uri, "report.json"), json.dumps(report, indent=2) + "\n")
    write_text(join(output_uri, SUCCESS), "")
    for frame in (clean, unique, split, prepared):
        frame.unpersist()
    return report


def build_schema(spec, fitted, classes, labels, seed, input_uri, balance, raw_columns) -> dict[str, Any]:
    target = spec.target
    return {
        "format": SCHEMA_FORMAT,
        "version": SCHEMA_VERSION,
        "dataset": spec.name,
        "seed": seed,
        "source": input_uri,
        # The raw file's layout, so that serving reads a line of it as the job did: its delimiter
        # and every column in file order (the target and the dropped columns among them).
        "raw": {"delimiter": spec.delimiter, "columns": list(raw_columns)},
        "missing_values": list(spec.missing_values),
        "input_columns": [f.name for f in spec.features],
        "target": {
            "column": target.column,
            "problem": target.problem,
            "classes": classes,
            # Each class as it first appears in the raw data ("AB" where classes hold "ab").
            "labels": labels,
            "positive": target.positive,
            "positive_above": target.positive_above,
            "aliases": dict(target.aliases),
        },
        "features": fitted,
        "feature_names": [name for entry in fitted for name in entry["outputs"]],
        "splits": {s: sum(balance[s].values()) for s in SPLITS},
    }


# --- command line ---------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", required=True, help="raw CSV file or folder (path or s3:// URI)")
    parser.add_argument("--spec", required=True, help="dataset spec JSON (path or s3:// URI)")
    parser.add_argument("--output", required=True, help="output folder (path or s3:// URI)")
    parser.add_argument("--seed", type=int, default=42)
    return parser.parse_known_args(argv)


def unreadable_spec(uri: str) -> str | None:
    """Why a local spec file cannot be read, in one line (None: it can, or it is on S3)."""
    if uri.startswith("s3://"):
        return None
    try:
        read_text(uri)
    except FileNotFoundError:
        return f"spec {uri} does not exist"
    except UnicodeDecodeError as error:
        return f"spec {uri} is not UTF-8 text ({error.reason} at byte {error.start})"
    except OSError as error:
        return f"spec {uri} cannot be read ({error.strerror})"
    return None


def main(argv: list[str] | None = None, session: Callable[[bool], Any] = spark_session) -> int:
    args, extra = parse_args(sys.argv[1:] if argv is None else argv)
    in_glue = "--JOB_RUN_ID" in extra
    if extra and not in_glue:
        print(f"error: unknown arguments {extra}", file=sys.stderr)
        return 2
    problem = None if in_glue else unreadable_spec(args.spec)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 1
    try:
        spec = load_spec(read_text(args.spec), source=args.spec)
        if not in_glue and not args.input.startswith("s3://") and not os.path.exists(args.input):
            raise SpecError(spec.name, None, f"input {args.input} does not exist")  # before Spark starts
        report = prepare(session(in_glue), args.input, spec, args.output, args.seed)
    except SpecError as error:
        if in_glue:
            raise  # the job run fails with this message (and the operators hear of it)
        print(f"error: {error}", file=sys.stderr)
        return 1
    splits = ", ".join(f"{s} {report['splits'][s]['rows']}" for s in SPLITS)
    print(
        f"prepared {spec.name}: {report['rows_in']} rows in, {report['rows_out']} out ({splits}) "
        f"in {report['seconds']} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
