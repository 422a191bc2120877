"""The chain, run on the twin: a dataset uploaded under ``raw/`` to a prediction from the
endpoint, a batch file through ``batch-input/`` to ``batch-output/``; where the stage monitors
model quality, labelled traffic, its labels uploaded under ``ground-truth/``, the schedule's run
and the live model's metric published; and, where it monitors data quality, drift: drifted
traffic and new labelled data, the schedule's run, the operators told which features drifted,
and the retrained model live.

Each step is timed and judged from what the twin recorded (the job's state, the package's
status, the stack's status), never from what the functions returned about themselves.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from etl.dataset_spec import normalise
from local.jobs import split_uri
from local.platform import Twin
from local.trace import acting_as

BATCH_ROWS = 20
DRIFTED_REQUESTS = 50  # requests of drifted traffic: enough for every distribution check
LABELLED_REQUESTS = 120  # requests whose labels are uploaded for the model-quality run
USER = "data-scientist"  # who uploads: a person of the account, outside the platform's roles


class ScenarioError(RuntimeError):
    """The chain stopped; the message says where."""


@dataclass
class Step:
    name: str
    status: str
    seconds: float
    detail: str = ""


@dataclass
class Run:
    dataset: str
    steps: list[Step] = field(default_factory=list)
    model_package_status: str | None = None
    gate: str | None = None
    prediction: Any = None
    batch_output_rows: int | None = None
    quality: dict[str, Any] = field(default_factory=dict)
    drift: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def report(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "steps": [
                {"name": s.name, "status": s.status, "seconds": s.seconds, "detail": s.detail} for s in self.steps
            ],
            "model_package_status": self.model_package_status,
            "gate": self.gate,
            "prediction": self.prediction,
            "batch_output_rows": self.batch_output_rows,
            "quality": self.quality,
            "drift": self.drift,
            "outputs": self.outputs,
            "failures": self.failures,
        }


class Scenario:
    def __init__(
        self,
        twin: Twin,
        dataset: str,
        data: Path,
        progress: Callable[[Step], None] | None = None,
        *,
        monitored: bool = True,
    ) -> None:
        """``monitored``: whether the chain ends with the monitoring leg (model quality and drift,
        where the stage monitors them), which a test of a trainer leaves out."""
        self.twin = twin
        self.monitored = monitored
        self.dataset = dataset
        self.data = data
        self.run = Run(dataset)
        self.progress = progress or (lambda step: None)
        self._trained_at = 0.0
        self._since = 0  # the trace from this scenario's upload on

    def _of(self, kind: str, **match: Any) -> list[dict[str, Any]]:
        """Trace entries of this scenario: after its upload, and for its dataset where they name one."""
        entries = self.twin.trace.entries[self._since :]
        found = [e for e in entries if e["kind"] == kind and all(e.get(k) == v for k, v in match.items())]
        if kind == "job" and match.get("service") == "sagemaker":
            # Training and tuning jobs are named <dataset>-..., transform jobs <stage prefix>-<dataset>-...
            prefix = self.twin.stack("Data").name.lower().removesuffix("-data")
            ours = (f"{self.dataset}-", f"{prefix}-{self.dataset}-")
            found = [e for e in found if e["job"].startswith(ours)]
        if kind == "job" and match.get("service") == "glue":
            ours = {
                e["run"]
                for e in entries
                if e["kind"] == "job" and e.get("arguments", {}).get("--input", "").endswith(f"/raw/{self.dataset}/")
            }
            found = [e for e in found if e["run"] in ours]
        return found

    def step(self, name: str, action: Callable[[], str | tuple[str, float]]) -> str:
        """Run a step; its time is what the action says (from the trace) or the wall clock."""
        started = time.perf_counter()
        try:
            outcome = action()
        except ScenarioError as error:
            step = Step(name, "failed", round(time.perf_counter() - started, 2), str(error))
            self.run.steps.append(step)
            self.run.failures.append(f"{name}: {error}")
            self.progress(step)
            raise
        detail, seconds = outcome if isinstance(outcome, tuple) else (outcome, time.perf_counter() - started)
        step = Step(name, "ok", round(seconds, 2), detail)
        self.run.steps.append(step)
        self.progress(step)
        return detail

    # --- the whole chain ---

    def execute(self) -> Run:
        try:
            self.step("upload", self.upload)
            self.step("prepare", self.prepare)
            self.step("train", self.train)
            self.step("register", self.register)
            if self.run.model_package_status == "PendingManualApproval":
                self.step("approve", self.approve)
            self.step("roll out", self.roll_out)
            self.step("predict", self.predict)
            self.step("batch transform", self.batch)
            if self.monitored:
                self.step("model quality", self.quality)
                self.step("drift", self.drift)
        except ScenarioError:
            pass
        return self.run

    @functools.cached_property
    def records(self) -> list[str]:
        """The raw file's records as the endpoint and batch transform take them (read once)."""
        return raw_records(self.data, self.twin, self.dataset)

    @property
    def data_bucket(self) -> str:
        return self.twin.resource("Data", "DataBucket", "AWS::S3::Bucket")

    def upload(self) -> str:
        key = f"raw/{self.dataset}/{self.data.name}"
        self._since = len(self.twin.trace.entries)
        with acting_as(USER):
            self.twin.client("s3").put_object(Bucket=self.data_bucket, Key=key, Body=self.data.read_bytes())
        return f"s3://{self.data_bucket}/{key}"

    def settle(self) -> None:
        self.twin.run_until_idle()

    def prepare(self) -> str:
        self.settle()
        runs = [e for e in self._of("job", service="glue") if e["status"] != "RUNNING"]
        if not runs:
            raise ScenarioError(f"no preparation job ran: {self._why_not('start_etl')}")
        final = runs[-1]
        if final["status"] != "SUCCEEDED":
            raise ScenarioError(f"the preparation job {final['run']} ended {final['status']}: {final.get('error')}")
        [started] = self._of("job", service="glue", run=final["run"], status="RUNNING")
        output = started["arguments"]["--output"]
        self.run.outputs["prepared"] = output
        return output, final["at"] - started["at"]

    def train(self) -> str:
        jobs = [e for e in self._of("job", service="sagemaker") if e["job_type"] in ("training", "tuning", "automl")]
        finished = [e for e in jobs if e["status"] not in ("InProgress",)]
        top = [e for e in finished if e["job_type"] in ("tuning", "automl")] or [
            e for e in finished if not e.get("tuning")
        ]
        if not top:
            raise ScenarioError(f"no training or tuning job ran: {self._why_not('start_training')}")
        job = top[-1]
        if job["status"] != "Completed":
            raise ScenarioError(f"{job['job_type']} job {job['job']} ended {job['status']}: {job.get('failure')}")
        self._trained_at = job["at"]
        seconds = job["at"] - next(e["at"] for e in jobs if e["job"] == job["job"])
        if job["job_type"] == "tuning":
            children = [e for e in finished if e.get("tuning")]
            objective = job["objective"]
            best = f"{objective['MetricName']} {objective['Value']:.4f}"
            return f"tuning job {job['job']}: {len(children)} training jobs, best {job['best']} ({best})", seconds
        if job["job_type"] == "automl":
            [best] = [c for c in job["candidates"] if c["best"]] or [{"name": "none", "value": float("nan")}]
            found = f"{len(job['candidates'])} candidates, best {best['name']} ({best['value']:.4f})"
            return f"AutoML job {job['job']}: {found}", seconds
        return f"training job {job['job']}", seconds

    def register(self) -> str:
        sagemaker = self.twin.client("sagemaker")
        with acting_as("twin"):
            groups = [
                g["ModelPackageGroupName"]
                for g in sagemaker.list_model_package_groups()["ModelPackageGroupSummaryList"]
            ]
            group = next((g for g in groups if g.endswith("-" + self.dataset)), None)
            newest_first = {"SortBy": "CreationTime", "SortOrder": "Descending"}
            packages = (
                sagemaker.list_model_packages(ModelPackageGroupName=group, **newest_first)["ModelPackageSummaryList"]
                if group
                else []
            )
        if not packages:
            raise ScenarioError(f"no model package was registered: {self._why_not('register_model')}")
        with acting_as("twin"):
            package = sagemaker.describe_model_package(ModelPackageName=packages[0]["ModelPackageArn"])
        self.run.model_package_status = package["ModelApprovalStatus"]
        self.run.gate = package.get("ModelPackageDescription", "")
        self.run.outputs["model_package"] = package["ModelPackageArn"]
        if package["ModelApprovalStatus"] not in ("Approved", "PendingManualApproval"):
            raise ScenarioError(f"the model was not approved: {self.run.gate}")
        registered = [e for e in self._of("invoke", status="ok") if (e.get("result") or {}).get("model_package")]
        return self.run.gate, (registered[-1]["at"] - self._trained_at) if registered else 0.0

    def approve(self) -> str:
        """Where the stage asks for a person's approval (hosting.manual_approval), a person of the
        account approves the package in the registry, as the README describes; deploy_model then
        acts on the registry's state-change event."""
        arn = self.run.outputs["model_package"]
        with acting_as(USER):
            self.twin.client("sagemaker").update_model_package(
                ModelPackageArn=arn,
                ModelApprovalStatus="Approved",
                ApprovalDescription="approved by a person on the local platform",
            )
        self.run.model_package_status = "Approved"
        self.settle()
        return f"{arn} approved by {USER}"

    def _approve_newest(self, live: str | None) -> None:
        """The retrained model approved by a person where the stage asks for it, as the first one was."""
        sagemaker = self.twin.client("sagemaker")
        group = live.rsplit("/", 2)[-2] if live else None
        if group is None:
            return
        with acting_as("twin"):
            newest = sagemaker.list_model_packages(
                ModelPackageGroupName=group, SortBy="CreationTime", SortOrder="Descending", MaxResults=1
            )["ModelPackageSummaryList"]
        if newest and newest[0]["ModelApprovalStatus"] == "PendingManualApproval":
            with acting_as(USER):
                sagemaker.update_model_package(
                    ModelPackageArn=newest[0]["ModelPackageArn"],
                    ModelApprovalStatus="Approved",
                    ApprovalDescription="retrained after drift; approved by a person on the local platform",
                )
            self.settle()

    def roll_out(self) -> str:
        try:
            stack = self.twin.stack(f"Hosting-{self.dataset}")
        except KeyError:
            raise ScenarioError(f"the stage serves no endpoint for {self.dataset} (hosting.datasets)") from None
        if stack.status != "UPDATE_COMPLETE":
            raise ScenarioError(f"{stack.name} is {stack.status}: {self._why_not('deploy_model')}")
        endpoint = next(
            (
                p.attributes["EndpointName"]
                for lid, p in stack.physical.items()
                if stack.template["Resources"][lid]["Type"] == "AWS::SageMaker::Endpoint"
            ),
            None,
        )
        if endpoint is None or not self.twin.hosting.hosts(endpoint):
            raise ScenarioError(f"{stack.name} was updated but no endpoint is in service")
        self.run.outputs["endpoint"] = endpoint
        updates = self._of("stack", stack=stack.name)
        seconds = updates[-1]["at"] - next(e["at"] for e in updates if e["status"] == "UPDATE_IN_PROGRESS")
        return f"{stack.name} {stack.status}: {stack.parameters.get('ModelPackageArn')} live on {endpoint}", seconds

    def predict(self) -> str:
        endpoint = self.run.outputs["endpoint"]
        record = self.records[0]
        with acting_as(USER):
            try:
                answer = self.twin.client("sagemaker-runtime").invoke_endpoint(
                    EndpointName=endpoint, ContentType="text/csv", Accept="application/json", Body=record
                )
            except Exception as error:
                raise ScenarioError(f"InvokeEndpoint failed: {error}") from None
        prediction = json.loads(answer["Body"].read())["predictions"][0]
        self.run.prediction = {"record": record, **prediction}
        return f"{record[:60]}... -> {prediction}"

    def batch(self) -> str:
        records = self.records[:BATCH_ROWS]
        key = f"batch-input/{self.dataset}/sample.csv"
        with acting_as(USER):
            self.twin.client("s3").put_object(
                Bucket=self.data_bucket, Key=key, Body=("\n".join(records) + "\n").encode()
            )
        self.settle()
        jobs = [e for e in self._of("job", service="sagemaker") if e["job_type"] == "transform"]
        done = [e for e in jobs if e["status"] != "InProgress"]
        if not done:
            raise ScenarioError(f"no transform job ran: {self._why_not('start_batch_transform')}")
        if done[-1]["status"] != "Completed":
            raise ScenarioError(
                f"transform job {done[-1]['job']} ended {done[-1]['status']}: {done[-1].get('failure')}"
            )
        [output] = done[-1]["outputs"]
        bucket, out_key = split_uri(output)
        with acting_as("twin"):
            text = self.twin.client("s3").get_object(Bucket=bucket, Key=out_key)["Body"].read().decode()
        self.run.batch_output_rows = len(text.splitlines())
        self.run.outputs["batch_output"] = output
        if self.run.batch_output_rows != len(records):
            raise ScenarioError(f"{len(records)} records in, {self.run.batch_output_rows} rows out")
        return f"{output}: {self.run.batch_output_rows} rows"

    def quality(self) -> str:
        """Where the stage monitors model quality: requests with an InferenceId each, their labels
        uploaded under ground-truth/<dataset>/ as the README tells an application to, and the run
        of the schedule whose window holds them (the twin's clock moves on by the delay). Judged
        from the twin: the run's statistics read by check_drift, the live model's metric published,
        and the model-quality alarm's state."""
        twin, endpoint = self.twin, self.run.outputs["endpoint"]
        schedules = [
            n
            for n, s in twin.monitoring.schedules.items()
            if s["EndpointName"] == endpoint and s["MonitoringScheduleConfig"]["MonitoringType"] == "ModelQuality"
        ]
        if not schedules:
            return f"{endpoint} has no model-quality schedule (monitoring.model_quality is off): nothing to measure"
        since = len(twin.trace.entries)
        labels = ground_truth_labels(self.data, twin, self.dataset)
        runtime, lines = twin.client("sagemaker-runtime"), []
        for number, (record, label) in enumerate(list(zip(self.records, labels, strict=True))[:LABELLED_REQUESTS]):
            inference_id = f"{self.dataset}-{number}"
            with acting_as(USER):
                # The model-quality job reads the answer's CSV columns: the client asks for CSV.
                runtime.invoke_endpoint(
                    EndpointName=endpoint,
                    ContentType="text/csv",
                    Accept="text/csv",
                    Body=record,
                    InferenceId=inference_id,
                )
            truth = {"data": label, "encoding": "CSV"}
            lines.append(
                json.dumps({"groundTruthData": truth, "eventMetadata": {"eventId": inference_id}, "eventVersion": "0"})
            )
        key = f"ground-truth/{self.dataset}/{datetime.now(UTC):%Y/%m/%d/%H}/labels.jsonl"
        with acting_as(USER):
            twin.client("s3").put_object(Bucket=self.data_bucket, Key=key, Body=("\n".join(lines) + "\n").encode())
        job = twin.jobs.run_monitoring(schedules[0])
        self.settle()
        later = twin.trace.entries[since:]
        measured = [
            e["result"]
            for e in later
            if e["kind"] == "invoke"
            and "CheckDrift" in e["function"]
            and (e.get("result") or {}).get("status") == "measured"
        ]
        if not measured:
            raise ScenarioError(f"the model-quality run {job} measured nothing: {self._why_not('check_drift')}")
        alarms = [e["state"] for e in later if e["kind"] == "alarm" and e["alarm"].endswith("-model-quality")]
        self.run.quality = {
            **measured[-1],
            "job": job,
            "labels": f"s3://{self.data_bucket}/{key}",
            "alarm": alarms[-1] if alarms else None,
        }
        metric, value = measured[-1]["metric"], measured[-1]["value"]
        return f"{metric} {value:.3f} on {len(lines)} labelled predictions; alarm {self.run.quality['alarm']}"

    def drift(self) -> str:
        """Where the stage monitors data quality: new labelled data lands under raw/ (the same
        rows with every numeric feature moved, so that they differ from what the live model saw),
        the endpoint takes drifted requests, and the schedule runs on that hour's capture. Judged
        from the twin: the report, check_drift's message naming the features and the drift
        alarm's, both on the operators' topic, and the new data's preparation run, which check_drift
        starts (start_etl's own event for the upload, still in its quiet period, finds the run
        claimed) and which goes through the chain to a new live model."""
        twin, endpoint = self.twin, self.run.outputs["endpoint"]
        schedules = [n for n, s in twin.monitoring.schedules.items() if s["EndpointName"] == endpoint]
        if not schedules:
            return f"{endpoint} has no data-quality schedule (monitoring.data_quality is off): nothing to watch"
        since = len(twin.trace.entries)
        live = twin.stack(f"Hosting-{self.dataset}").parameters.get("ModelPackageArn")
        key = f"raw/{self.dataset}/drifted-{self.data.name}"
        with acting_as(USER):
            twin.client("s3").put_object(
                Bucket=self.data_bucket, Key=key, Body=drifted_file(self.data, twin, self.dataset)
            )
        runtime = twin.client("sagemaker-runtime")
        for record in self.records[:DRIFTED_REQUESTS]:
            with acting_as(USER):
                runtime.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=moved(record))
        job = twin.jobs.run_monitoring(schedules[0])
        self.settle()
        self._approve_newest(live)
        later = twin.trace.entries[since:]
        topic = twin.resource("Data", "OperatorTopic", "AWS::SNS::Topic")
        told = [m for subject, m in twin.topic_messages(topic) if subject and "traffic drifted" in subject]
        checks = [
            e["result"] for e in later if e["kind"] == "invoke" and "CheckDrift" in e["function"] and e.get("result")
        ]
        # Each delivery of the report is read: the one that started the run last (later ones find it claimed).
        checks.sort(key=lambda check: check.get("retraining", {}).get("status") == "started")
        alarms = [
            e for e in later if e["kind"] == "alarm" and e.get("state") == "ALARM" and e["alarm"].endswith("-drift")
        ]
        if not checks or checks[-1].get("status") != "drifted":
            raise ScenarioError(f"the monitoring run {job} found no drift: {self._why_not('check_drift')}")
        if not told or not alarms:
            raise ScenarioError(f"the operators were not told: {len(told)} message(s), drift alarm {bool(alarms)}")
        retraining = checks[-1]["retraining"]
        self.run.drift = {"job": job, "features": checks[-1]["features"], "retraining": retraining, "message": told[-1]}
        if retraining.get("status") != "started":
            raise ScenarioError(f"no preparation run was started: {retraining['detail']}")
        now_live = twin.stack(f"Hosting-{self.dataset}").parameters.get("ModelPackageArn")
        if now_live == live:
            raise ScenarioError(f"the retrained model is not live: {self._why_not('deploy_model')}")
        self.run.drift["live"] = now_live
        features = ", ".join(checks[-1]["features"])
        retrained = f"run {retraining['run_id']} retrained: {now_live} live"
        return f"{len(checks[-1]['features'])} features drifted ({features}); {retrained}"

    def _why_not(self, function: str) -> str:
        """What the trace says about the function that should have acted (``start_etl`` is the
        function whose construct is StartEtl)."""
        construct = "".join(part.capitalize() for part in function.split("_")) + "Function"
        names = {f.name for f in self.twin.functions if f.logical_id.startswith(construct)}
        invocations = [e for e in self._of("invoke") if e["function"] in names]
        if not invocations:
            return f"{function} was never invoked"
        last = invocations[-1]
        if last["status"] == "error":
            return f"{function} failed: {last['error']}"
        said = [record["message"] for record in last.get("logs", []) if "outcome" in record]
        if said:  # a function handed a batch (from a queue) says what it did with each event
            return f"{function} said: {'; '.join(said)}"
        return f"{function} answered {last.get('result')}"


def raw_records(data: Path, twin: Twin, dataset: str) -> list[str]:
    """Rows of the raw file as the endpoint and batch transform take them: CSV lines of the
    spec's feature columns in the spec's order, no header, no target."""
    spec = dataset_spec(twin, dataset)
    header, rows = _raw_rows(data, spec)
    positions = [header.index(name) for name in spec["features"]]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerows([[row[i].strip() for i in positions] for row in rows])
    return out.getvalue().splitlines()


def ground_truth_labels(data: Path, twin: Twin, dataset: str) -> list[str]:
    """Each raw record's label as an application uploads it for the model-quality job (in
    ``raw_records``'s order): a binary target's 1 for the positive class and 0 otherwise, a
    multiclass target's label and a regression target's value as the raw data writes them."""
    spec = dataset_spec(twin, dataset)
    header, rows = _raw_rows(data, spec)
    target = spec["target"]
    column = header.index(target["column"])
    aliases = target.get("aliases")

    def label(value: str) -> str:
        if target["problem"] != "binary":
            return value.strip()
        if "positive" in target:
            return "1" if normalise(value, aliases) == normalise(target["positive"]) else "0"
        return "1" if float(value) > float(target["positive_above"]) else "0"

    return [label(row[column]) for row in rows]


def _raw_rows(data: Path, spec: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    """The raw file's column names and rows (blank lines left out)."""
    layout = spec.get("csv", {})
    text = data.read_text(encoding="utf-8")
    rows = [row for row in csv.reader(io.StringIO(text), delimiter=layout.get("delimiter", ",")) if row]
    if layout.get("header", False):
        return [name.strip() for name in rows[0]], rows[1:]
    return list(layout["columns"]), rows


def dataset_spec(twin: Twin, dataset: str) -> dict[str, Any]:
    """The dataset's spec as the platform deployed it (the asset start_etl names)."""
    function = next(f for f in twin.functions if "DATASET_SPECS" in f.variables and "JOB_NAME" in f.variables)
    uri = json.loads(function.variables["DATASET_SPECS"])[dataset]
    bucket, key = split_uri(uri)
    with acting_as("twin"):
        return json.loads(twin.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())


def moved(value_line: str) -> str:
    """A CSV record with every numeric value moved far from where the data had it (times three,
    plus fifty; whole numbers stay whole), other values as they were."""
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow([_moved(v) for v in next(csv.reader([value_line]))])
    return out.getvalue()


def _moved(value: str) -> str:
    try:
        number = float(value)
    except ValueError:
        return value
    if number.is_integer() and "." not in value:
        return str(int(number) * 3 + 50)
    return f"{number * 3 + 50:.6g}"


def drifted_file(data: Path, twin: Twin, dataset: str) -> bytes:
    """The raw file with its features' numeric values moved (the target as it was): new labelled
    data like the drifted traffic."""
    spec = dataset_spec(twin, dataset)
    layout = spec.get("csv", {})
    delimiter = layout.get("delimiter", ",")
    rows = [row for row in csv.reader(io.StringIO(data.read_text(encoding="utf-8")), delimiter=delimiter) if row]
    header = [name.strip() for name in rows[0]] if layout.get("header", False) else list(layout["columns"])
    features = {header.index(name) for name in spec["features"]}
    body = rows[1:] if layout.get("header", False) else rows
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\n")
    if layout.get("header", False):
        writer.writerow(rows[0])
    writer.writerows([[_moved(v.strip()) if i in features else v for i, v in enumerate(row)] for row in body])
    return out.getvalue().encode("utf-8")
