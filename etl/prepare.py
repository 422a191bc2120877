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
   imputation, IQR whiskers for outliers, one-hot categories. Medians and quartiles are
   approximate (percentile_approx at accuracy 10,000): a value of the split at a rank within
   n / 10,000 (rounded up) of the exact quantile's, n the split's values; no interpolation;
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

How it runs: one pass reads, normalises and deduplicates the records (one shuffle, by the split's
stratum and a bucket of the shuffle key, serves the deduplication and the split) and caches the
unique rows; every later step reads that cache: the statistics and checks, the split (a row's
rank is its bucket's offset plus its rank in the bucket), one aggregation for the fit, and the
writes, which run at once. report.json's ``phases`` gives the seconds of each.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from dataset_spec import IQR_WHISKER, NUMBER_PATTERN, WHITESPACE, DatasetSpec, SpecError, load_spec

SPLITS = ("train", "validation", "test")
SUCCESS = "_SUCCESS"
SCHEMA_FORMAT = "ml-platform/prepared-csv"
SCHEMA_VERSION = 1
_KEY, _LABEL, _SPLIT, _TARGET = "__shuffle_key", "__label", "__split", "__target"
# Each raw record's bookkeeping: its text when it has the wrong number of fields (else null), its
# file and position (of a unique row: the first among its duplicates), and the target as the file
# writes it.
_MALFORMED, _FILE, _POSITION, _WRITTEN = "__malformed", "__file", "__position", "__written"
_BOOKKEEPING = (_MALFORMED, _FILE, _POSITION)
_RAW = "__raw_"  # + the column's index: a record's values as read, beside the normalised ones
_INVALID = "__invalid_"  # + column: the value when it is present but not valid (else null)
# Each unique row's bookkeeping: its stratum (its class, or side of positive_above; null for a
# record that is malformed or has no target: it is not split), its bucket (the shuffle key's top
# BUCKET_BITS bits), how many records it stands for, and its rank in its bucket in the split's order.
_STRATUM, _BUCKET, _COUNT, _RANK = "__stratum", "__bucket", "__count", "__rank"
# The row as the deduplication and the split read it: its normalised values, its invalid ones and
# its values as read, each a struct (see keyed).
_DATA, _FLAGS, _READ = "__data", "__flags", "__read"
# The training split's records as a raw file writes them, for Model Monitor: RFC 4180 quoting
# (a quote doubled), an empty field for a missing value.
_BASELINE = "__baseline"
BASELINE_CSV = {"escape": '"', "emptyValue": ""}
# Buckets per stratum: the split's unit of work, so that a class is split by many tasks at once
# (one per class would leave all cores but two idle on a binary target). The driver holds their
# offsets: strata times 2 ** BUCKET_BITS small rows.
BUCKET_BITS = 10
# percentile_approx's accuracy (Spark's default): 1 / PERCENTILE_ACCURACY is the largest error of
# a quartile or median, as a fraction of the training split's rows, in the rank of the value chosen.
PERCENTILE_ACCURACY = 10_000
# Wider rows than this are not compiled into one method per stage (see prepare).
CODEGEN_MAX_FIELDS = 30
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


# Below this input size the local JVM compiles with C1 alone, which starts faster, and the job
# ends before C2's faster code would pay off (measured in bench/prepare.py, 2 cores: 4,119 rows
# 10 s against 11 s; 250,000 rows, 35 MB, the same either way; 1,000,000 rows 35 s against 60 s),
# in Spark's default heap of 1 GB. A larger input gets both compilers and a larger heap.
LARGE_INPUT_BYTES = 32 * 1024 * 1024


def spark_session(in_glue: bool, input_bytes: int | None = None):
    """Glue's session, or a local one for an input of ``input_bytes`` (None: small)."""
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
            # One shuffle partition per core until a run knows its input (prepare() sets its own).
            .config("spark.sql.shuffle.partitions", str(max(2, os.cpu_count() or 2)))
            # Adaptive execution re-plans each shuffle; on a laptop's data that costs more than it
            # saves (bank marketing: 6.9 s -> 5.9 s per run, measured on 2 cores).
            .config("spark.sql.adaptive.enabled", "false")
            # No .crc side files next to the CSVs: a SageMaker channel reads every file it gets.
            .config("spark.hadoop.fs.file.impl", "org.apache.hadoop.fs.RawLocalFileSystem")
        )
        if input_bytes is None or input_bytes < LARGE_INPUT_BYTES:
            builder = builder.config("spark.driver.extraJavaOptions", "-XX:TieredStopAtLevel=1")
        else:
            builder = builder.config("spark.driver.memory", _driver_memory())
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    # Spark's own _SUCCESS in train/ etc. would look like ours to the training trigger.
    spark.sparkContext._jsc.hadoopConfiguration().set("mapreduce.fileoutputcommitter.marksuccessfuljobs", "false")
    return spark


def _driver_memory() -> str:
    """The local JVM's heap: a quarter of the machine's memory, from 1 GB (Spark's default, which
    spills the sort of a million rows to disk) to 4 GB."""
    try:
        machine = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows): Spark's default
        return "1g"
    return f"{max(1, min(4, machine // 4 // 2**30))}g"


def local_bytes(uri: str) -> int | None:
    """The size of a local input, a file or the files under a folder (None: on S3)."""
    if uri.startswith("s3://"):
        return None
    if os.path.isfile(uri):
        return os.path.getsize(uri)
    return sum(os.path.getsize(os.path.join(folder, name)) for folder, _, names in os.walk(uri) for name in names)


def _col(name: str):
    from pyspark.sql import functions as F

    return F.col("`" + name.replace("`", "``") + "`")


def _lookup(mapping: Mapping[str, Any], column, default=None):
    """``mapping[column]`` as a Spark expression (``default`` where the value is not a key)."""
    from pyspark.sql import functions as F

    if not mapping:
        return column if default is None else F.lit(default)
    pairs = [F.lit(x) for item in mapping.items() for x in item]
    found = F.create_map(*pairs)[column]
    return F.coalesce(found, column if default is None else F.lit(default))


# --- the preparation ------------------------------------------------------------------------------


class Phases:
    """The seconds each phase of a run took, for report.json. Spark is lazy: a phase's figure is
    the time of the Spark jobs its own code runs, which includes the work of the steps before it
    that no job has run yet."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._started = self._mark = time.perf_counter()

    def end(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = round(now - self._mark, 2)
        self._mark = now

    def total(self) -> float:
        return round(time.perf_counter() - self._started, 2)


def shuffle_partitions(spark, raw) -> int:
    """Shuffle partitions that suit the data: one per split of the input (Spark reads a file in
    splits of at most 128 MB), and at least one per core. Spark's default, 200, is for a
    cluster; on a laptop's data its tasks cost more than they share."""
    return max(spark.sparkContext.defaultParallelism, raw.rdd.getNumPartitions())


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


def _numeric(spec: DatasetSpec, column: str) -> bool:
    target = spec.target
    if column == target.column:
        return target.problem == "regression" or target.positive_above is not None
    return not spec.feature(column).categorical


def _labelled_target(spec: DatasetSpec) -> bool:
    """A target of labels (binary with a positive label, or multiclass), not of numbers."""
    return not _numeric(spec, spec.target.column)


def _data_columns(spec: DatasetSpec) -> list[str]:
    return [spec.target.column, *(f.name for f in spec.features)]


def normalised(frame, spec: DatasetSpec, source: Mapping[str, Any]):
    """The target and the features (each the text ``source`` gives for it): trimmed, missing
    markers as nulls, numbers as doubles, categorical values lower-cased with aliases resolved; a
    value present but invalid (not a finite number; bytes that are not UTF-8) is null, and kept
    in ``__invalid_<column>``. A target of labels is also kept trimmed as written (``__written``).
    The other columns of ``frame`` are kept.

    Each step is a projection of its own, so that a value is trimmed, matched and cast once per
    record: written as one expression, every branch that reads the trimmed text would trim it
    again, and the generated code grows too large for the JVM to compile (measured: 4x slower)."""
    from pyspark.sql import functions as F

    target = spec.target
    columns = _data_columns(spec)
    kept = [F.col(c) for c in frame.columns]
    text = frame.select(
        *kept, *[F.btrim(source[c], F.lit(WHITESPACE)).alias(f"__text{i}") for i, c in enumerate(columns)]
    )
    missing = list(spec.missing_values)
    present = text.select(
        *kept,
        *[F.col(f"__text{i}") for i in range(len(columns))],
        *[
            F.when(~F.lower(F.col(f"__text{i}")).isin(missing), F.col(f"__text{i}")).alias(f"__present{i}")
            for i in range(len(columns))
        ],
    )
    values = []
    for i, name in enumerate(columns):
        value = F.col(f"__present{i}")
        if _numeric(spec, name):
            value = F.when(value.rlike(NUMBER_PATTERN), value.cast("double"))
        else:
            aliases = target.aliases if name == target.column else spec.feature(name).aliases
            value = _lookup(aliases, F.lower(F.when(~value.contains(NOT_UTF8), value)))
        values.append(value.alias(f"__value{i}"))
    read = present.select(*kept, F.col("__text0"), *[F.col(f"__present{i}") for i in range(len(columns))], *values)
    finals = []
    for i, name in enumerate(columns):
        value = F.col(f"__value{i}")
        if _numeric(spec, name):  # finite: Spark's cast reads "1e999" as infinity
            value = F.when(value.between(-sys.float_info.max, sys.float_info.max), value)
        finals.append(value.alias(name))
    checked = read.select(*kept, *[F.col(f"__present{i}") for i in range(len(columns))], F.col("__text0"), *finals)
    flags = [F.when(_col(c).isNull(), F.col(f"__present{i}")).alias(_INVALID + c) for i, c in enumerate(columns)]
    written = [F.col("__text0").alias(_WRITTEN)] if _labelled_target(spec) else []
    return checked.select(*[_col(c) for c in columns], *flags, *written, *kept)


def records(raw, spec: DatasetSpec):
    """Each raw record normalised (:func:`normalised`), its values as read beside (``__read``, a
    struct of ``__raw_<i>``: one column to carry through every step, not one per column) and its
    bookkeeping: what every later step reads, so the expressions run once per record."""
    from pyspark.sql import functions as F

    names = [c for c in raw.columns if c not in _BOOKKEEPING]
    values = F.struct(*[_col(c).alias(f"{_RAW}{i}") for i, c in enumerate(names)]).alias(_READ)
    read = raw.select(values, *[F.col(c) for c in _BOOKKEEPING])
    return normalised(read, spec, {c: F.col(_READ).getField(f"{_RAW}{names.index(c)}") for c in _data_columns(spec)})


def _stratum(spec: DatasetSpec):
    """What the split is stratified on: the class (the side of positive_above), or one stratum for
    regression. It stands for the label one to one once the target's checks have passed."""
    from pyspark.sql import functions as F

    target = spec.target
    value = _col(target.column)
    if target.problem == "regression":
        return F.lit("all")
    if target.positive_above is not None:
        return value > F.lit(float(target.positive_above))
    return value


def keyed(rows, spec: DatasetSpec, seed: int):
    """What the deduplication and the split read of each of the :func:`records`, narrow so that
    the shuffle moves little: the shuffle key (a hash of seed and row), the stratum (null for a
    record that is malformed or has no target: it is not split), the key's bucket, the row
    (``__data``: the normalised target and features), its invalid values (``__flags``), its
    values as read (``__read``), the target as written, and its bookkeeping."""
    from pyspark.sql import functions as F

    columns = _data_columns(spec)
    splittable = F.col(_MALFORMED).isNull() & _col(spec.target.column).isNotNull()
    written = [F.col(_WRITTEN)] if _labelled_target(spec) else []
    return rows.select(
        F.xxhash64(F.lit(seed), *[_col(c) for c in columns]).alias(_KEY),
        F.when(splittable, _stratum(spec)).alias(_STRATUM),
        F.struct(*[_col(c) for c in columns]).alias(_DATA),
        F.struct(*[_col(_INVALID + c) for c in columns]).alias(_FLAGS),
        F.col(_READ),
        *written,
        *[F.col(c) for c in _BOOKKEEPING],
    ).withColumn(_BUCKET, F.shiftright(F.col(_KEY), 64 - BUCKET_BITS))  # a lower bucket: lower keys


def unique_rows(rows, spec: DatasetSpec, baseline: list[str]):
    """The :func:`keyed` records, each once, with the columns of :func:`records` again: duplicates
    are records equal in every column of the file (those the spec drops too) and in their
    malformed text. Each keeps the first file and position it appears at, how many
    records it stands for (``__count``) and, when it is split, its rank in its bucket in the
    split's order (``__rank``, from 1).

    One shuffle, by stratum and bucket, serves both the deduplication and the split: duplicates
    share their key, so they meet in one bucket, next to each other in the split's order (the
    shuffle key, the row itself to break ties, then its values as read: rows that normalise
    alike). Structs order as their fields do in turn."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    # Duplicates sort together, the first in the file last: the last of each run of equal records
    # stands for the run, and how many they are is how far it is from the last of the run before.
    within = Window.partitionBy(_BUCKET, _STRATUM).orderBy(
        _KEY, _DATA, _READ, _MALFORMED, F.col(_FILE).desc(), F.col(_POSITION).desc()
    )
    record = F.struct(_READ, _MALFORMED)
    marked = rows.select(
        "*",
        (~F.lead(record).over(within).eqNullSafe(record)).alias("__last"),
        F.row_number().over(within).alias("__seen"),
    )
    unique = marked.where("__last").select(
        "*",
        (F.col("__seen") - F.lag("__seen", 1, 0).over(within)).alias(_COUNT),
        F.row_number().over(within).alias(_RANK),
    )
    columns = _data_columns(spec)
    written = [F.col(_WRITTEN)] if _labelled_target(spec) else []
    return unique.select(
        *[F.col(_DATA).getField(c).alias(c) for c in columns],
        *[F.col(_FLAGS).getField(_INVALID + c).alias(_INVALID + c) for c in columns],
        *written,
        F.to_csv(F.struct(*[F.col(_READ).getField(c) for c in baseline]), BASELINE_CSV).alias(_BASELINE),
        *[F.col(c) for c in (*_BOOKKEEPING, _KEY, _STRATUM, _BUCKET, _COUNT, _RANK)],
    )


def statistics(unique, spec: DatasetSpec) -> dict[str, Any]:
    """One pass over the :func:`unique_rows`, each weighted by the records it stands for: rows,
    malformed rows (and the first of them), per column the missing values, the invalid ones and
    the smallest invalid one, of the well-formed; the unique well-formed rows and those that are
    split, the strata and the ordinal values of those. One aggregation without groups, so that
    Spark need not sort the rows to group them."""
    from pyspark.sql import functions as F

    good = F.col(_MALFORMED).isNull()
    split = F.col(_STRATUM).isNotNull()
    weight = F.col(_COUNT)
    columns = _data_columns(spec)
    ordinals = [f.name for f in spec.features if f.kind == "ordinal"]
    first = F.struct(F.col(_FILE).alias("file"), F.col(_POSITION).alias("position"), F.col(_MALFORMED).alias("text"))
    row = unique.select(
        F.coalesce(F.sum(weight), F.lit(0)).alias("rows"),
        F.coalesce(F.sum(F.when(~good, weight)), F.lit(0)).alias("malformed"),
        F.min(F.when(~good, first)).alias("first_malformed"),
        F.count(F.when(good, 1)).alias("unique"),
        F.count(F.when(split, 1)).alias("labelled"),
        *[F.coalesce(F.sum(F.when(good & _col(c).isNull(), weight)), F.lit(0)).alias(f"missing:{c}") for c in columns],
        *[
            F.coalesce(F.sum(F.when(good & _col(_INVALID + c).isNotNull(), weight)), F.lit(0)).alias(f"invalid:{c}")
            for c in columns
        ],
        *[F.min(F.when(good, _col(_INVALID + c))).alias(f"example:{c}") for c in columns],
        F.collect_set(F.col(_STRATUM)).alias("strata"),
        *[F.collect_set(F.when(split, _col(c))).alias(f"values:{c}") for c in ordinals],
    ).first()
    stats = row.asDict()
    stats["first_malformed"] = row["first_malformed"] and row["first_malformed"].asDict()
    stats["strata"] = [str(s).lower() if isinstance(s, bool) else str(s) for s in row["strata"]]
    stats["values"] = {c: set(row[f"values:{c}"]) for c in ordinals}
    return stats


def first_spellings(unique) -> dict[str, str]:
    """Each class of a target of labels and the value it first appears as in the raw data
    (trimmed; first by file, then position): ``{"ab": "AB"}``."""
    from pyspark.sql import functions as F

    first = F.min(F.struct(F.col(_FILE), F.col(_POSITION), F.col(_WRITTEN))).alias("first")
    rows = unique.where(F.col(_STRATUM).isNotNull()).groupBy(_STRATUM).agg(first).collect()
    return {row[_STRATUM]: row["first"][_WRITTEN] for row in rows}


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


def first_malformed(raw, stats) -> dict[str, Any] | None:
    """The first record with the wrong number of fields: its file, its row in the file (the
    header and empty lines not counted) and its text. ``raw`` is :func:`read_raw`'s: counting
    the row reads the file again, only when a record is malformed."""
    from pyspark.sql import functions as F

    first = stats["first_malformed"]
    if first is None:
        return None
    same_file = (F.col(_FILE) == first["file"]) & (F.col(_POSITION) <= first["position"])
    return {"file": first["file"], "row": raw.where(same_file).count(), "text": first["text"]}


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


def bucket_offsets(unique):
    """Per stratum and bucket of the split rows: how many rows of the stratum come before the
    bucket (``__offset``) and in the whole stratum (``__total``). A small table: its rows are
    strata times 2 ** BUCKET_BITS at most."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    counts = unique.where(F.col(_STRATUM).isNotNull()).groupBy(_STRATUM, _BUCKET).agg(F.count(F.lit(1)).alias("n"))
    earlier = Window.partitionBy(_STRATUM).orderBy(_BUCKET).rowsBetween(Window.unboundedPreceding, -1)
    return counts.select(
        _STRATUM,
        _BUCKET,
        F.coalesce(F.sum("n").over(earlier), F.lit(0)).alias("__offset"),
        F.sum("n").over(Window.partitionBy(_STRATUM)).alias("__total"),
    )


def with_split(unique, offsets, spec: DatasetSpec, classes: list[str]):
    """The split rows of :func:`unique_rows` with their label and split, stratified: in each
    stratum, a row's position is its rank in the split's order (the rows of earlier buckets,
    then its rank in its own) over the stratum's rows, so the split depends only on the seed and
    the rows, on any partitioning."""
    from pyspark.sql import functions as F

    split = unique.join(F.broadcast(offsets), [_STRATUM, _BUCKET])
    position = (F.col("__offset") + F.col(_RANK) - 1) / F.col("__total")
    train, validation = spec.split["train"], spec.split["train"] + spec.split["validation"]
    name = F.when(position < train, "train").when(position < validation, "validation").otherwise("test")
    return split.withColumn(_LABEL, _label_expression(spec, classes)).withColumn(_SPLIT, name)


def quartiles(train, spec: DatasetSpec) -> dict[str, list[float | None]]:
    """Each numeric feature's first quartile, median and third quartile in the training split, in
    one aggregation. Approximate: Spark's percentile_approx at PERCENTILE_ACCURACY, whose answer
    for a quantile p of n values is one of the values, at a rank within ceil(n / accuracy) of
    ceil(p * n) (one rank on fewer than 10,000 values), where the exact percentile interpolated
    between two values and held every distinct value of a column in memory at once."""
    from pyspark.sql import functions as F

    numeric = [f.name for f in spec.features if f.kind == "numeric"]
    if not numeric:
        return {}
    levels = [0.25, 0.5, 0.75]
    row = train.select(*[F.percentile_approx(_col(c), levels, PERCENTILE_ACCURACY).alias(c) for c in numeric]).first()
    return {c: row[c] for c in numeric}


def fit(train, spec: DatasetSpec) -> list[dict[str, Any]]:
    """Per feature, what the transform needs, learnt from the training split only: the
    :func:`quartiles` of the numeric features, and the counts of every categorical feature's
    values in one grouped aggregation."""
    from pyspark.sql import functions as F

    categorical = [f for f in spec.features if f.categorical]
    numbers = quartiles(train, spec)
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
            q1, median, q3 = numbers.get(feature.name) or (None, None, None)
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


def write_autopilot(view, output_uri: str) -> list[Callable[[], None]]:
    """:func:`autopilot_view` as CSV, one file per folder, each ordered as the prepared splits are
    (by the shuffle key), so line i of a scoring file is line i of the prepared split's file: the
    writes, one per folder, for :func:`run_all`."""
    from pyspark.sql import functions as F

    def write(split: str, folder: str, header: bool) -> None:
        part = view.where(F.col(_SPLIT) == split).coalesce(1).sortWithinPartitions(_KEY)
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

    folders = [(split, folder, True) for split, folder in AUTOPILOT_TRAINING.items()]
    folders += [(split, folder, False) for split, folder in AUTOPILOT_SCORING.items()]
    return [partial(write, split, folder, header) for split, folder, header in folders]


def write_split(prepared, name: str, spec: DatasetSpec, output_uri: str) -> None:
    """One split of :func:`transform`'s rows as SageMaker CSV, in the order of the shuffle key."""
    from pyspark.sql import functions as F

    # One file per training instance for train (SageMaker shards a channel by S3 key), so a
    # multi-instance job gets a share each; ranges of the shuffle key keep it reproducible. One
    # file is one task either way: coalescing to it spares a shuffle of the encoded rows.
    files = spec.training.instance_count if name == "train" else 1
    part = prepared.where(F.col(_SPLIT) == name)
    part = part.coalesce(1) if files == 1 else part.repartitionByRange(files, _KEY)
    names = [c for c in prepared.columns if c not in (_KEY, _SPLIT)]
    part = part.sortWithinPartitions(_KEY).select(*names)
    part.write.mode("overwrite").option("header", "false").csv(join(output_uri, name))


def run_all(writes: list[Callable[[], None]]) -> None:
    """Every write at once, each a Spark job of its own: a file is written by one task, so one
    after the other they would leave all cores but one idle. Raises the first write's error
    once all have ended."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=len(writes), thread_name_prefix="write") as pool:
        futures = [pool.submit(write) for write in writes]
    for future in futures:
        future.result()


def raw_feature_columns(file_columns: list[str], spec: DatasetSpec) -> list[str]:
    """The ``__raw_<i>`` columns of the features, in the file's order: a features-only request's
    layout (``training_jobs/schema_encoder.py``)."""
    features = {f.name for f in spec.features}
    return [f"{_RAW}{i}" for i, name in enumerate(file_columns) if name in features]


def write_baseline(train, raw_features: list[str], output_uri: str) -> None:
    """The training split's records, before outliers are dropped (a request is never dropped), as
    an endpoint receives them: one comma-separated file, no header, values as read. They come
    from :func:`unique_rows`'s ``__baseline`` line, read back with the options it was written
    with (one column of the cache instead of one per feature)."""
    from pyspark.sql import functions as F

    schema = ", ".join(f"{c} STRING" for c in raw_features)
    record = F.from_csv(F.col(_BASELINE), schema, BASELINE_CSV).alias("record")
    (
        train.select(record)
        .select("record.*")
        .coalesce(1)
        .write.mode("overwrite")
        .option("header", "false")
        .options(**BASELINE_CSV)
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

    phases = Phases()
    # Spark generates one method for a stage's expressions unless an operator's rows have more
    # fields than this; the normalisation of a few dozen columns then grows past what the JVM
    # compiles (8,000 bytes), and runs interpreted (measured: 2x slower at 1M rows).
    spark.conf.set("spark.sql.codegen.maxFields", str(CODEGEN_MAX_FIELDS))
    raw = read_raw(spark, input_uri, spec)
    spark.conf.set("spark.sql.shuffle.partitions", str(shuffle_partitions(spark, raw)))
    baseline = raw_feature_columns(raw.columns[:-3], spec)
    unique = unique_rows(keyed(records(raw, spec), spec, seed), spec, baseline).cache()
    offsets = bucket_offsets(unique).cache()
    try:
        try:
            stats = statistics(unique, spec)  # the first pass: it reads, normalises and deduplicates
        except Exception as error:  # Spark's own, through py4j
            mismatch = header_mismatch(spec, error)
            if mismatch is None:
                raise
            raise mismatch from None
        rows_in = stats["rows"]
        if rows_in == 0:
            raise SpecError(spec.name, None, f"no rows in {input_uri}")
        malformed = first_malformed(raw, stats)
        check_malformed(spec, stats, malformed, len(raw.columns) - 3)
        check_numbers(spec, stats)
        classes = target_classes(spec, set(stats["strata"]))
        check_ordinals(spec, stats["values"])
        spellings = first_spellings(unique) if _labelled_target(spec) else {}
        phases.end("read_normalise_deduplicate")

        offsets.count()
        split = with_split(unique, offsets, spec, classes)
        phases.end("split")

        train = split.where(F.col(_SPLIT) == "train")
        fitted = fit(train, spec)
        phases.end("fit")

        kept = split.where((F.col(_SPLIT) != "train") | outlier_filter(fitted))
        label = F.col(_LABEL) if classes else F.lit(0)  # a regression target: one class, "all"
        balance: dict[str, dict[str, int]] = {s: {} for s in SPLITS}
        for row in kept.groupBy(_SPLIT, label.alias(_LABEL)).count().orderBy(_LABEL).collect():
            name = classes[int(row[_LABEL])] if classes else "all"
            balance[row[_SPLIT]][name] = row["count"]
        rows_out = sum(sum(b.values()) for b in balance.values())
        if any(not balance[s] for s in SPLITS):
            raise SpecError(spec.name, None, f"too few rows ({rows_out}) to fill train, validation and test")
        prepared = transform(kept, fitted)
        phases.end("transform")

        # --- writing: nothing above this line writes; _SUCCESS goes last ---
        remove(join(output_uri, SUCCESS))
        autopilot = spec.training.algorithm == "autopilot"
        writes: list[Callable[[], None]] = [partial(write_split, prepared, s, spec, output_uri) for s in SPLITS]
        writes.append(partial(write_baseline, train, baseline, output_uri))
        if autopilot:
            writes += write_autopilot(autopilot_view(kept, spec, classes), output_uri)
        run_all(writes)
        phases.end("write")
    finally:
        for frame in (unique, offsets):
            frame.unpersist()

    labels = target_labels(spec, classes, spellings)
    schema = build_schema(spec, fitted, classes, labels, seed, input_uri, balance, raw.columns[:-3])
    if autopilot:
        schema["autopilot"] = autopilot_layout(spec)
    columns_in = _data_columns(spec)
    report = {
        "dataset": spec.name,
        "input": input_uri,
        "seed": seed,
        "rows_in": rows_in,
        "malformed_dropped": stats["malformed"],
        "first_malformed": malformed,
        "duplicates_dropped": rows_in - stats["malformed"] - stats["unique"],
        "missing_target_dropped": stats["unique"] - stats["labelled"],
        "outliers_dropped": stats["labelled"] - rows_out,
        "rows_out": rows_out,
        "missing_values": {c: stats[f"missing:{c}"] for c in columns_in},
        "invalid_numbers": {c: stats[f"invalid:{c}"] for c in columns_in if _numeric(spec, c)},
        "invalid_text": {c: stats[f"invalid:{c}"] for c in columns_in if not _numeric(spec, c)},
        "splits": {s: {"rows": sum(balance[s].values()), "classes": balance[s]} for s in SPLITS},
        "seconds": phases.total(),
        "phases": phases.seconds,
    }
    write_text(join(output_uri, "schema.json"), json.dumps(schema, indent=2) + "\n")
    write_text(join(output_uri, "report.json"), json.dumps(report, indent=2) + "\n")
    write_text(join(output_uri, SUCCESS), "")
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
        spark = spark_session(in_glue, local_bytes(args.input)) if session is spark_session else session(in_glue)
        report = prepare(spark, args.input, spec, args.output, args.seed)
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
