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
   ``report.json``, and ``_SUCCESS`` last. A run that fails writes no ``_SUCCESS``.

Every problem with the spec or the data is raised as a SpecError naming dataset, column and
problem, before anything is written.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

from dataset_spec import IQR_WHISKER, WHITESPACE, DatasetSpec, SpecError, load_spec

SPLITS = ("train", "validation", "test")
SUCCESS = "_SUCCESS"
SCHEMA_FORMAT = "ml-platform/prepared-csv"
SCHEMA_VERSION = 1
_KEY, _LABEL, _SPLIT = "__shuffle_key", "__label", "__split"


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

    return F.col(f"`{name}`")


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


def read_raw(spark, uri: str, spec: DatasetSpec):
    frame = (
        spark.read.option("sep", spec.delimiter)
        .option("header", "true" if spec.header else "false")
        .option("quote", '"')
        .option("recursiveFileLookup", "true")
        .csv(uri)
    )
    if spec.header:
        frame = frame.toDF(*[name.strip(WHITESPACE) for name in frame.columns])
    else:
        if len(frame.columns) != len(spec.columns):
            raise SpecError(
                spec.name, None, f"the file has {len(frame.columns)} columns, csv.columns names {len(spec.columns)}"
            )
        frame = frame.toDF(*spec.columns)
    spec.check_columns(frame.columns)
    return frame


def normalised(frame, spec: DatasetSpec):
    """Strings trimmed (categoricals lower-cased, aliases resolved), missing markers as nulls,
    numeric columns as doubles. Adds ``__invalid_<col>`` flags for unparseable numbers."""
    from pyspark.sql import functions as F

    target = spec.target
    columns = []
    flags = []
    numeric_target = target.problem == "regression" or target.positive_above is not None
    for name in [target.column, *(f.name for f in spec.features)]:
        feature = None if name == target.column else spec.feature(name)
        text = _trimmed(_col(name))
        present = F.when(~F.lower(text).isin(list(spec.missing_values)) & text.isNotNull(), text)
        if (feature is not None and feature.categorical) or (feature is None and not numeric_target):
            aliases = feature.aliases if feature is not None else target.aliases
            columns.append(_lookup(aliases, F.lower(present)).alias(name))
        else:
            number = present.cast("double")
            columns.append(number.alias(name))
            flags.append((present.isNotNull() & number.isNull()).cast("int").alias(f"__invalid_{name}"))
    return frame.select(*columns, *flags)


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
    """Distinct target values (or sides of positive_above) and ordinal values, for the checks."""
    from pyspark.sql import functions as F

    target = spec.target
    columns: dict[str, Any] = {f.name: _col(f.name) for f in spec.features if f.kind == "ordinal"}
    if target.positive_above is not None:
        columns[_LABEL] = _col(target.column) > F.lit(float(target.positive_above))
    elif target.problem != "regression":
        columns[_LABEL] = _col(target.column)
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
        return list(target.classes)
    if len(values) < 2:
        raise SpecError(
            spec.name, target.column, f"a multiclass target needs at least 2 classes; the data has {values}"
        )
    return values


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

    data_columns = [c for c in frame.columns if c not in (_LABEL,)]
    keyed = frame.withColumn(_KEY, F.xxhash64(F.lit(seed), *[_col(c) for c in data_columns]))
    order = [F.col(_KEY), *[_col(c) for c in data_columns]]  # the row itself breaks hash ties
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
                    "outputs": [feature.name],
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
            entry |= {"order": list(feature.order), "outputs": [feature.name]}
        else:
            categories = sorted(values)
            entry |= {"categories": categories, "outputs": [f"{feature.name}={c}" for c in categories]}
        fitted.append(entry)
    return fitted


def transform(frame, fitted: list[dict[str, Any]]):
    """Target first, then the encoded features, plus the key and split for writing."""
    from pyspark.sql import functions as F

    columns = [F.col(_LABEL).alias("target")]
    for entry in fitted:
        value = F.coalesce(_col(entry["column"]), F.lit(entry["impute"]))
        if entry["kind"] == "numeric":
            if entry["clip"] is not None:
                low, high = entry["clip"]
                value = F.least(F.greatest(value, F.lit(low)), F.lit(high))
            columns.append(value.cast("double").alias(entry["column"]))
        elif entry["kind"] == "ordinal":
            columns.append(
                _lookup({v: i for i, v in enumerate(entry["order"])}, value).cast("int").alias(entry["column"])
            )
        else:
            columns += [(value == F.lit(c)).cast("int").alias(f"{entry['column']}={c}") for c in entry["categories"]]
    return frame.select(*columns, F.col(_KEY), F.col(_SPLIT))


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


def prepare(spark, input_uri: str, spec: DatasetSpec, output_uri: str, seed: int = 42) -> dict[str, Any]:
    """Run the preparation; returns the report (also written as report.json)."""
    from pyspark.sql import functions as F

    started = time.perf_counter()
    raw = read_raw(spark, input_uri, spec)
    clean = normalised(raw, spec)
    numeric_columns = [c.removeprefix("__invalid_") for c in clean.columns if c.startswith("__invalid_")]
    data_columns = [c for c in clean.columns if not c.startswith("__invalid_")]
    stats = clean.select(
        F.count(F.lit(1)).alias("rows"),
        *[F.sum(_col(c).isNull().cast("int")).alias(f"missing:{c}") for c in data_columns],
        *[F.sum(_col(f"__invalid_{c}")).alias(f"invalid:{c}") for c in numeric_columns],
    ).first()
    rows_in = stats["rows"]
    if rows_in == 0:
        raise SpecError(spec.name, None, f"no rows in {input_uri}")

    unique = clean.select(*[_col(c) for c in data_columns]).dropDuplicates().cache()
    labelled = unique.where(_col(spec.target.column).isNotNull())
    seen = checked_values(labelled, spec)
    classes = target_classes(spec, seen.get(_LABEL, set()))
    check_ordinals(spec, seen)

    split = with_split(labelled.withColumn(_LABEL, _label_expression(spec, classes)), spec, seed).cache()
    fitted = fit(split.where(F.col(_SPLIT) == "train"), spec)
    kept = split.where((F.col(_SPLIT) != "train") | outlier_filter(fitted))
    prepared = transform(kept, fitted).cache()

    balance: dict[str, dict[str, int]] = {s: {} for s in SPLITS}
    for row in prepared.groupBy(_SPLIT, "target").count().collect():
        label = classes[int(row["target"])] if classes else "all"
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
        part.select(*[F.col(f"`{c}`") for c in names]).write.mode("overwrite").option("header", "false").csv(
            join(output_uri, name)
        )

    schema = build_schema(spec, fitted, classes, seed, input_uri, balance)
    report = {
        "dataset": spec.name,
        "input": input_uri,
        "seed": seed,
        "rows_in": rows_in,
        "duplicates_dropped": rows_in - rows_unique,
        "missing_target_dropped": rows_unique - rows_labelled,
        "outliers_dropped": rows_labelled - rows_out,
        "rows_out": rows_out,
        "missing_values": {c: stats[f"missing:{c}"] for c in data_columns},
        "invalid_numbers": {c: stats[f"invalid:{c}"] for c in numeric_columns},
        "splits": {s: {"rows": sum(balance[s].values()), "classes": balance[s]} for s in SPLITS},
        "seconds": round(time.perf_counter() - started, 2),
    }
    write_text(join(output_uri, "schema.json"), json.dumps(schema, indent=2) + "\n")
    write_text(join(output_uri, "report.json"), json.dumps(report, indent=2) + "\n")
    write_text(join(output_uri, SUCCESS), "")
    for frame in (unique, split, prepared):
        frame.unpersist()
    return report


def build_schema(spec, fitted, classes, seed, input_uri, balance) -> dict[str, Any]:
    target = spec.target
    return {
        "format": SCHEMA_FORMAT,
        "version": SCHEMA_VERSION,
        "dataset": spec.name,
        "seed": seed,
        "source": input_uri,
        "missing_values": list(spec.missing_values),
        "input_columns": [f.name for f in spec.features],
        "target": {
            "column": target.column,
            "problem": target.problem,
            "classes": classes,
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


def main(argv: list[str] | None = None, session: Callable[[bool], Any] = spark_session) -> int:
    args, extra = parse_args(sys.argv[1:] if argv is None else argv)
    in_glue = "--JOB_RUN_ID" in extra
    if extra and not in_glue:
        print(f"error: unknown arguments {extra}", file=sys.stderr)
        return 2
    try:
        spec = load_spec(read_text(args.spec), source=args.spec)
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
