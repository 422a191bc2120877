"""The jobs the platform's functions start, run with the platform's own code under each
service's contract, then reported as the service reports them (state in the emulated account,
and the service's EventBridge event).

- Glue (https://docs.aws.amazon.com/glue/latest/dg/aws-glue-programming-python-libraries.html):
  the script is the job's ``ScriptLocation`` object and ``--extra-py-files`` the objects it
  names, fetched by object name into the run's folder and put on the path as Glue does (a
  ``.py`` file keeps its object name, a ``.zip`` is a library). Arguments are the job's
  defaults with the run's on top, plus ``--JOB_ID``, ``--JOB_RUN_ID`` and ``--JOB_NAME``.
  Spark runs locally; where Glue's Spark reads and writes ``s3://`` itself (EMRFS), the twin
  mirrors each ``s3://`` argument into a local folder before the run and writes what the run
  left there back to S3 after it, oldest file first, under the job's security configuration.
- SageMaker training (https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-training-algo-running-container.html):
  ``/opt/ml`` is a folder of the job: ``input/config/*.json``, every channel under
  ``input/data/<channel>/``; the framework container's script mode (the SageMaker training
  toolkit's contract: ``sagemaker_program`` and ``sagemaker_submit_directory``, hyperparameters
  as ``--name value``, ``SM_*`` variables) runs the entry point in a process of its own
  (``local.container``) without AWS credentials (network isolation), on its share of the cores;
  ``model.tar.gz`` and ``output.tar.gz`` go where SageMaker puts them and the final metrics
  are parsed from the log with the job's ``MetricDefinitions``.
- Tuning: ``MaxNumberOfTrainingJobs`` training jobs named as SageMaker names them, their
  hyperparameters drawn from the ranges by a seeded random search (a stand-in for the Bayesian
  strategy, said in the trace), the best by the objective metric.
- Batch transform (https://docs.aws.amazon.com/sagemaker/latest/dg/batch-transform.html): the
  model's container behind the serving contract, records split by line, batched up to
  ``MaxPayloadInMB``, each input line joined to its prediction (``JoinSource: Input``),
  ``<input file>.out`` under the output path. The input is every object under an ``S3Prefix``,
  or the objects a ``ManifestFile`` names (``[{"prefix": "s3://..."}, "relative/key", ...]``,
  read as the job's role; https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_TransformS3DataSource.html);
  an input's output is named by its key relative to the prefix's folder, or to the manifest's prefix.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import csv
import datetime as dt
import io
import json
import math
import os
import random
import re
import shutil
import tarfile
import traceback
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from local import autopilot, events, monitor, standins
from local.container import run as run_entry_point
from local.functions import load_module
from local.trace import acting_as

if TYPE_CHECKING:
    from local.platform import Twin

SCRIPT_MODE_IMAGES = ("sagemaker-xgboost",)  # framework containers that run a script in script mode
CONTAINER_ROOT = "/opt/ml"


def split_uri(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Jobs:
    def __init__(self, twin: Twin) -> None:
        self.twin = twin
        self._spark = None
        self._spark_owned = False
        self._children: set[str] = set()  # training jobs a tuning job runs itself

    # --- what starts a job ---

    def after_call(self, service: str, operation: str, params: Mapping[str, Any], parsed: Mapping[str, Any]) -> None:
        twin = self.twin
        if service == "glue" and operation == "StartJobRun":
            run_id = parsed["JobRunId"]
            twin.schedule(
                f"glue run {run_id}", lambda: self.run_glue(params["JobName"], run_id, params.get("Arguments", {}))
            )
        elif service == "sagemaker" and operation == "CreateTrainingJob":
            name = params["TrainingJobName"]
            if name not in self._children:
                self._training_job(name).training_job_status = "InProgress"
                twin.schedule(f"training job {name}", lambda: self.run_training(name, dict(params)))
        elif service == "sagemaker" and operation == "CreateHyperParameterTuningJob":
            name = params["HyperParameterTuningJobName"]
            self._tuning_job(name).hyper_parameter_tuning_job_status = "InProgress"
            twin.schedule(f"tuning job {name}", lambda: self.run_tuning(name, dict(params)))
        elif service == "sagemaker" and operation == "CreateAutoMLJobV2":
            name = params["AutoMLJobName"]
            self._backend().auto_ml_jobs[name].auto_ml_job_status = "InProgress"
            twin.schedule(f"AutoML job {name}", lambda: self.run_automl(name, dict(params)))
        elif service == "sagemaker" and operation == "CreateTransformJob":
            name = params["TransformJobName"]
            self._backend().transform_jobs[name].transform_job_status = "InProgress"
            twin.schedule(f"transform job {name}", lambda: self.run_transform(name, dict(params)))
        elif service == "sagemaker" and operation == "CreateProcessingJob":
            name = params["ProcessingJobName"]
            self._backend().processing_jobs[name].processing_job_status = "InProgress"  # moto: Completed at once
            twin.schedule(f"processing job {name}", lambda: self.run_processing(name, dict(params)))
        elif service == "sagemaker" and operation in ("CreateModelPackage", "UpdateModelPackage"):
            arn = parsed["ModelPackageArn"]
            twin.schedule(f"model package {arn}", lambda: self._package_event(arn))

    # --- moto's records of the jobs (the twin keeps them true to what ran) ---

    def _backend(self):
        return self.twin.sagemaker_backend()

    def _training_job(self, name: str):
        return self._backend().training_jobs[name]

    def _tuning_job(self, name: str):
        return self._backend().hyper_parameter_tuning_jobs[name]

    def _emit(self, event: dict[str, Any]) -> None:
        self.twin.put_event(event)

    # --- Glue ---

    def run_glue(self, job_name: str, run_id: str, run_arguments: Mapping[str, str]) -> None:
        twin = self.twin
        with acting_as("twin"):
            job = twin.client("glue").get_job(JobName=job_name)["Job"]
        role = job["Role"]
        work = twin.state / "glue" / run_id
        code, mirror = work / "code", work / "s3"
        code.mkdir(parents=True)
        arguments = {**job.get("DefaultArguments", {}), **run_arguments}
        twin.trace.add("job", service="glue", job=job_name, run=run_id, status="RUNNING", arguments=arguments)
        key_arn = self._glue_s3_key(job)
        state, message = "SUCCEEDED", None
        with acting_as(role):
            try:
                script = self._fetch(job["Command"]["ScriptLocation"], code)
                for uri in filter(None, arguments.get("--extra-py-files", "").split(",")):
                    library = self._fetch(uri.strip(), code)
                    if library.suffix == ".zip":
                        shutil.unpack_archive(library, code)
                local_arguments = {k: self._mirror_down(v, mirror) for k, v in arguments.items()}
                argv = [
                    item
                    for name, value in local_arguments.items()
                    if name != "--extra-py-files"
                    for item in (name, value)
                ]
                argv += ["--JOB_ID", f"j_{job_name}", "--JOB_RUN_ID", run_id, "--JOB_NAME", job_name]
                fetched = _snapshot(mirror)
                module = load_module(script, "glue_" + re.sub(r"\W", "_", run_id))
                # Glue hands the script its Spark; here the script's own local session, kept warm.
                with contextlib.redirect_stdout(io.StringIO()) as log:
                    code_result = module.main(argv, session=lambda in_glue: self._session(module))
                twin.trace.add("job-log", service="glue", run=run_id, log=log.getvalue())
                if code_result not in (0, None):
                    raise RuntimeError(f"the script exited with {code_result}")
                self._mirror_up(mirror, fetched, key_arn)
            except BaseException as error:  # a job run fails with the script's error as its message
                if isinstance(error, KeyboardInterrupt):
                    raise
                state, message = "FAILED", f"{type(error).__name__}: {error}"
                twin.trace.add("job-log", service="glue", run=run_id, traceback=traceback.format_exc(limit=8))
        run = next(r for r in self._glue_runs(job_name) if r.job_run_id == run_id)
        run.status = state
        if message:
            run.error_message = message
        twin.trace.add("job", service="glue", job=job_name, run=run_id, status=state, error=message)
        # https://docs.aws.amazon.com/glue/latest/dg/automating-awsglue-with-cloudwatch-events.html
        self._emit(
            events.glue_job_state_change(
                job_name=job_name,
                job_run_id=run_id,
                state=state,
                message=message or "Job run succeeded",
                account=twin.account,
                region=twin.region,
            )
        )

    def _glue_runs(self, job_name: str):
        from moto.glue.models import glue_backends

        return glue_backends[self.twin.account][self.twin.region].jobs[job_name].job_runs

    def _glue_s3_key(self, job: Mapping[str, Any]) -> str | None:
        """The KMS key of the job's security configuration for what it writes to S3."""
        name = job.get("SecurityConfiguration")
        if not name:
            return None
        with acting_as("twin"):
            configuration = self.twin.client("glue").get_security_configuration(Name=name)["SecurityConfiguration"]
        for encryption in configuration["EncryptionConfiguration"].get("S3Encryption", []):
            if encryption.get("S3EncryptionMode") == "SSE-KMS":
                return encryption["KmsKeyArn"]
        return None

    def _session(self, module):
        if self._spark is None:
            from pyspark import SparkContext

            self._spark_owned = SparkContext._active_spark_context is None  # a session already running is not ours
            self._spark = module.spark_session(False)
        return self._spark

    def stop(self) -> None:
        if self._spark is not None and self._spark_owned:
            self._spark.stop()
        self._spark = None

    def _fetch(self, uri: str, folder: Path) -> Path:
        """An object saved under its object name (as Glue and SageMaker fetch code)."""
        bucket, key = split_uri(uri)
        target = folder / key.rsplit("/", 1)[-1]
        target.write_bytes(self.twin.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
        return target

    def _mirror_down(self, value: str, mirror: Path) -> str:
        if not isinstance(value, str) or not value.startswith("s3://"):
            return value
        bucket, key = split_uri(value)
        s3 = self.twin.client("s3")
        local = mirror / bucket / key
        if not key.endswith("/"):  # an object (a script, a file of code or data): fetched, not listed
            local.parent.mkdir(parents=True, exist_ok=True)
            local.write_bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
            return str(local)
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key):  # a prefix
            for item in page.get("Contents", []):
                target = mirror / bucket / item["Key"]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())
        local.mkdir(parents=True, exist_ok=True)
        return str(local) + "/"

    def _mirror_up(self, mirror: Path, fetched: dict[Path, tuple[int, int]], key_arn: str | None) -> None:
        """Write back what the run created or changed (not what it only read), oldest first."""
        written = [p for p, stamp in _snapshot(mirror).items() if fetched.get(p) != stamp]
        encryption = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": key_arn} if key_arn else {}
        s3 = self.twin.client("s3")
        # Oldest first; a commit marker (_SUCCESS) after everything else, as Hadoop writes it,
        # even where the file system gives it the same time as the file written just before.
        for path in sorted(written, key=lambda p: (p.name == "_SUCCESS", p.stat().st_mtime_ns, str(p))):
            bucket, _, key = str(path.relative_to(mirror)).partition("/")
            s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes(), **encryption)

    # --- SageMaker training ---

    def run_training(self, name: str, request: dict[str, Any], tuning_arn: str | None = None) -> dict[str, Any]:
        return self.run_trainings([(name, request)], tuning_arn)[0]

    def run_trainings(
        self, jobs: list[tuple[str, dict[str, Any]]], tuning_arn: str | None = None, parallel: int = 1
    ) -> list[dict[str, Any]]:
        """Training jobs: set up one by one (S3 as the execution role), their containers run
        ``parallel`` at a time, then each finished (model and output uploaded, state, event)."""
        prepared: list[tuple[str, dict[str, Any], Any]] = []
        for name, request in jobs:
            job = self._training_job(name)
            job.algorithm_specification = dict(request["AlgorithmSpecification"])  # moto rewrites MetricDefinitions
            job.training_start_time = _now()
            self.twin.trace.add(
                "job", service="sagemaker", job_type="training", job=name, status="InProgress", tuning=tuning_arn
            )
            try:
                prepared.append((name, request, self._set_up(name, request)))
            except JobFailed as error:
                prepared.append((name, request, error))
        runnable = [(n, r, c) for n, r, c in prepared if not isinstance(c, JobFailed)]
        workers = max(1, min(parallel, os.cpu_count() or 1))
        # Each concurrent job is an instance of its own: it gets its share of the cores.
        cores = (
            sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))
        )
        shares = [tuple(c for j, c in enumerate(cores) if j % workers == slot) for slot in range(workers)]
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            futures = {
                name: pool.submit(_contain, self._run_container, container, shares[index % workers])
                for index, (name, _, container) in enumerate(runnable)
            }
            logs = {name: future.result() for name, future in futures.items()}
        results = []
        for name, request, container in prepared:
            outcome = container if isinstance(container, JobFailed) else logs[name]
            if not isinstance(outcome, JobFailed):
                outcome = _contain(self._finish, name, container, outcome)
            results.append(self._record(name, request, outcome, tuning_arn))
        return results

    def _record(
        self, name: str, request: Mapping[str, Any], outcome: str | dict | JobFailed, tuning_arn: str | None
    ) -> dict:
        twin = self.twin
        job = self._training_job(name)
        if isinstance(outcome, JobFailed):
            job.training_job_status, job.secondary_status = "Failed", "Failed"
            job.failure_reason = str(outcome)
            job.final_metric_data_list = []
            metrics = {}
        else:
            definitions = request["AlgorithmSpecification"].get("MetricDefinitions", [])
            metrics = outcome if isinstance(outcome, dict) else parse_metrics(definitions, outcome)
            job.training_job_status, job.secondary_status = "Completed", "Completed"
            job.final_metric_data_list = [
                {"MetricName": k, "Value": v, "Timestamp": _now()} for k, v in metrics.items()
            ]
            job.failure_reason = None
        job.training_end_time = job.last_modified_time = _now()
        if tuning_arn:
            job.tuning_job_arn = tuning_arn
        status = job.training_job_status
        twin.trace.add(
            "job", service="sagemaker", job_type="training", job=name, status=status, metrics=metrics,
            failure=job.failure_reason, tuning=tuning_arn,
        )  # fmt: skip
        with acting_as("twin"):
            description = twin.client("sagemaker").describe_training_job(TrainingJobName=name)
        self._emit(events.sagemaker_training_job_state_change(description, account=twin.account, region=twin.region))
        return {"status": status, "metrics": metrics, "failure": job.failure_reason}

    def _set_up(self, name: str, request: Mapping[str, Any]) -> TrainingContainer:
        """/opt/ml of one training job, with its channels downloaded as the execution role."""
        twin = self.twin
        role = request["RoleArn"]
        root = twin.state / "sagemaker" / name / "opt" / "ml"
        shutil.rmtree(root.parent.parent, ignore_errors=True)
        image = request["AlgorithmSpecification"]["TrainingImage"]
        repository = image.rsplit("/", 1)[-1].split(":")[0]
        hyperparameters = dict(request.get("HyperParameters", {}))
        with acting_as(role):  # SageMaker downloads the channels as the execution role
            try:
                channels = self._download_channels(request.get("InputDataConfig", []), root / "input" / "data")
            except JobFailed:
                raise
            except Exception as error:
                raise JobFailed(f"ClientError: Data download failed: {error}") from error
        config = root / "input" / "config"
        config.mkdir(parents=True, exist_ok=True)
        (config / "hyperparameters.json").write_text(json.dumps(hyperparameters))
        (config / "inputdataconfig.json").write_text(json.dumps(channels))
        (config / "resourceconfig.json").write_text(
            json.dumps({"current_host": "algo-1", "hosts": ["algo-1"], "network_interface_name": "eth0"})
        )
        for folder in ("model", "output/data", "code"):
            (root / folder).mkdir(parents=True, exist_ok=True)
        if standins.algorithm_of(image):
            self.twin.trace.add(
                "stand-in", job=name, image=image, note="a built-in algorithm: the twin's stand-in trains"
            )
        elif repository not in SCRIPT_MODE_IMAGES:
            raise JobFailed(f"AlgorithmError: the twin has no stand-in for {image}")
        elif "sagemaker_program" not in hyperparameters:
            raise JobFailed(f"AlgorithmError: {image} runs a script: sagemaker_program is missing")
        return TrainingContainer(root, hyperparameters, channels, request)

    def _run_container(self, container: TrainingContainer, cpus: tuple[int, ...] = ()) -> str | dict[str, float]:
        """The job's container: a script-mode entry point (its log), or a built-in's stand-in
        (the metrics SageMaker reports for it)."""
        algorithm = standins.algorithm_of(container.request["AlgorithmSpecification"]["TrainingImage"])
        if algorithm is None:
            return self._script_mode(container, cpus)
        try:
            return standins.train(algorithm, container.root, dict(container.hyperparameters))
        except standins.StandInError as error:
            raise JobFailed(str(error)) from None

    def _finish(self, name: str, container: TrainingContainer, log: str | dict) -> str | dict:
        """model.tar.gz and output.tar.gz where SageMaker puts them, as the execution role."""
        root, request = container.root, container.request
        output = request["OutputDataConfig"]
        base = output["S3OutputPath"].rstrip("/") + f"/{name}/output/"
        with acting_as(request["RoleArn"]):
            self._upload_tar(root / "model", base + "model.tar.gz", output.get("KmsKeyId"))
            self._upload_tar(root / "output" / "data", base + "output.tar.gz", output.get("KmsKeyId"))
        return log

    def _download_channels(self, channels: list[Mapping[str, Any]], data: Path) -> dict[str, Any]:
        s3 = self.twin.client("s3")
        config = {}
        for channel in channels:
            source = channel["DataSource"]["S3DataSource"]
            if source["S3DataType"] != "S3Prefix":
                raise JobFailed(f"ClientError: the twin reads S3Prefix channels only, not {source['S3DataType']}")
            bucket, prefix = split_uri(source["S3Uri"])
            base = prefix[: prefix.rfind("/") + 1]
            folder = data / channel["ChannelName"]
            folder.mkdir(parents=True, exist_ok=True)
            found = 0
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    if item["Key"].endswith("/"):
                        continue
                    target = folder / item["Key"][len(base) :]
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())
                    found += 1
            if not found:
                raise JobFailed(f"ClientError: no objects under {source['S3Uri']} (channel {channel['ChannelName']})")
            config[channel["ChannelName"]] = {
                "ContentType": channel.get("ContentType", ""),
                "TrainingInputMode": "File",
                "S3DistributionType": source.get("S3DataDistributionType", "FullyReplicated"),
                "RecordWrapperType": "None",
            }
        return config

    def _script_mode(self, container: TrainingContainer, cpus: tuple[int, ...] = ()) -> str:
        """The framework container's script mode, as the SageMaker training toolkit runs it, on
        ``cpus`` (the instance's cores: SM_NUM_CPUS, and the process pinned to them)."""
        root, hyperparameters, channels = container.root, container.hyperparameters, container.channels
        request = container.request
        submit = _decoded(hyperparameters["sagemaker_submit_directory"])
        program = _decoded(hyperparameters["sagemaker_program"])
        archive = self._container_path(root, submit)
        code = root / "code"
        if archive.is_dir():
            shutil.copytree(archive, code, dirs_exist_ok=True)
        else:
            try:
                with tarfile.open(archive, "r:gz") as tar:
                    tar.extractall(code, filter="data")
            except (OSError, tarfile.TarError) as error:
                raise JobFailed(f"ClientError: cannot extract {submit}: {error}") from error
        if not (code / program).is_file():
            raise JobFailed(f"AlgorithmError: {program} is not in {submit}")
        user = {k: _decoded(v) for k, v in hyperparameters.items() if not k.startswith("sagemaker_")}
        argv = [item for k, v in user.items() for item in (f"--{k}", v if isinstance(v, str) else json.dumps(v))]
        data = root / "input" / "data"
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(root.parent),
            "LANG": "C.UTF-8",
            "SM_MODEL_DIR": str(root / "model"),
            "SM_INPUT_DIR": str(root / "input"),
            "SM_INPUT_CONFIG_DIR": str(root / "input" / "config"),
            "SM_OUTPUT_DIR": str(root / "output"),
            "SM_OUTPUT_DATA_DIR": str(root / "output" / "data"),
            "SM_CHANNELS": json.dumps(sorted(channels)),
            "SM_HPS": json.dumps(user),
            "SM_USER_ARGS": json.dumps(argv),
            "SM_HOSTS": json.dumps(["algo-1"]),
            "SM_CURRENT_HOST": "algo-1",
            "SM_NUM_CPUS": str(len(cpus) or os.cpu_count() or 1),
            "OMP_NUM_THREADS": str(len(cpus) or os.cpu_count() or 1),
            "SM_NUM_GPUS": "0",
            "SM_MODULE_NAME": program.removesuffix(".py"),
            "SM_INPUT_DATA_CONFIG": json.dumps(channels),
            "SM_RESOURCE_CONFIG": json.dumps({"current_host": "algo-1", "hosts": ["algo-1"]}),
            **{f"SM_CHANNEL_{name.upper()}": str(data / name) for name in channels},
            **{f"SM_HP_{k.upper()}": str(v) for k, v in user.items()},
        }
        limit = int(request.get("StoppingCondition", {}).get("MaxRuntimeInSeconds", 86400))
        logs = root.parent
        code_ = run_entry_point(program, argv, env, code, cpus, logs, timeout=limit)
        if code_ is None:
            raise JobFailed(f"MaxRuntimeExceeded: training ran longer than {limit} s")
        stdout, stderr = (logs / "stdout.txt").read_text(), (logs / "stderr.txt").read_text()
        if code_ != 0:
            failure = root / "output" / "failure"
            detail = failure.read_text().strip() if failure.exists() else (stderr.strip().splitlines() or ["?"])[-1]
            raise JobFailed(f"AlgorithmError: {detail} (exit code {code_})")
        return stdout + stderr

    def _container_path(self, root: Path, path: str) -> Path:
        if not path.startswith(CONTAINER_ROOT + "/"):
            raise JobFailed(f"ClientError: {path} is not a path inside the container (/opt/ml/...)")
        return root / path.removeprefix(CONTAINER_ROOT + "/")

    def _upload_tar(self, folder: Path, uri: str, key_arn: str | None) -> None:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            for path in sorted(folder.rglob("*")):
                tar.add(path, arcname=str(path.relative_to(folder)), recursive=False)
        bucket, key = split_uri(uri)
        encryption = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": key_arn} if key_arn else {}
        self.twin.client("s3").put_object(Bucket=bucket, Key=key, Body=buffer.getvalue(), **encryption)

    # --- tuning ---

    def run_tuning(self, name: str, request: dict[str, Any]) -> None:
        twin = self.twin
        tuning = self._tuning_job(name)
        config = request["HyperParameterTuningJobConfig"]
        definition = request["TrainingJobDefinition"]
        objective = config["HyperParameterTuningJobObjective"]
        limit = config["ResourceLimits"]["MaxNumberOfTrainingJobs"]
        rng = random.Random(name)
        twin.trace.add(
            "job", service="sagemaker", job_type="tuning", job=name, status="InProgress",
            note=f"{config['Strategy']} strategy played by a seeded random search of {limit} jobs (the twin)",
        )  # fmt: skip
        children = []
        for index in range(1, limit + 1):
            tuned = sample(config["ParameterRanges"], rng)
            child = f"{name}-{index:03d}-{uuid.UUID(int=rng.getrandbits(128)).hex[:8]}"
            child_request = {
                **{k: v for k, v in definition.items() if k not in ("StaticHyperParameters", "DefinitionName")},
                "TrainingJobName": child,
                "HyperParameters": {**definition.get("StaticHyperParameters", {}), **tuned},
                "Tags": request.get("Tags", []),
            }
            self._children.add(child)
            with acting_as("sagemaker.amazonaws.com"):
                twin.client("sagemaker").create_training_job(**child_request)
            children.append((child, child_request, tuned))
        parallel = config["ResourceLimits"].get("MaxParallelTrainingJobs", 1)
        outcomes = self.run_trainings([(c, r) for c, r, _ in children], tuning_arn=tuning.arn, parallel=parallel)
        results = [
            (child, tuned, outcome, outcome["metrics"].get(objective["MetricName"]))
            for (child, _, tuned), outcome in zip(children, outcomes, strict=True)
        ]
        scored = [r for r in results if r[3] is not None and r[2]["status"] == "Completed"]
        counters = {
            "Completed": sum(r[2]["status"] == "Completed" for r in results),
            "InProgress": 0,
            "RetryableError": 0,
            "NonRetryableError": sum(r[2]["status"] == "Failed" for r in results),
            "Stopped": 0,
        }
        tuning.training_job_status_counters = counters
        tuning.objective_status_counters = {
            "Succeeded": len(scored),
            "Pending": 0,
            "Failed": len(results) - len(scored),
        }
        tuning.hyper_parameter_tuning_end_time = tuning.last_modified_time = _now()
        if scored:
            pick = min if objective["Type"] == "Minimize" else max
            best, tuned, _, value = pick(scored, key=lambda r: r[3])
            job = self._training_job(best)
            tuning.best_training_job = {
                "TrainingJobName": best,
                "TrainingJobArn": job.arn,
                "TuningJobName": name,
                "CreationTime": job.creation_time,
                "TrainingStartTime": job.training_start_time,
                "TrainingEndTime": job.training_end_time,
                "TrainingJobStatus": "Completed",
                "TunedHyperParameters": tuned,
                "FinalHyperParameterTuningJobObjectiveMetric": {
                    "Type": objective["Type"], "MetricName": objective["MetricName"], "Value": value,
                },
                "ObjectiveStatus": "Succeeded",
            }  # fmt: skip
            tuning.OverallBestTrainingJob = tuning.best_training_job
            tuning.hyper_parameter_tuning_job_status, tuning.failure_reason = "Completed", ""
        else:
            tuning.best_training_job = tuning.OverallBestTrainingJob = None
            tuning.hyper_parameter_tuning_job_status = "Failed"
            tuning.failure_reason = "No training job succeeded with an objective metric"
        twin.trace.add(
            "job", service="sagemaker", job_type="tuning", job=name, status=tuning.hyper_parameter_tuning_job_status,
            failure=tuning.failure_reason or None,
            best=(tuning.best_training_job or {}).get("TrainingJobName"),
            objective=(tuning.best_training_job or {}).get("FinalHyperParameterTuningJobObjectiveMetric"),
        )  # fmt: skip
        with acting_as("twin"):
            description = twin.client("sagemaker").describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
        self._emit(events.sagemaker_tuning_job_state_change(description, account=twin.account, region=twin.region))

    # --- Autopilot ---

    def run_automl(self, name: str, request: dict[str, Any]) -> None:
        """An AutoML V2 tabular job, played by local/autopilot.py's search; its record in the
        account says how it ended, and no event does (SageMaker sends none for AutoML jobs)."""
        twin = self.twin
        job = self._backend().auto_ml_jobs[name]
        tabular = request["AutoMLProblemTypeConfig"]["TabularJobConfig"]
        criteria = tabular.get("CompletionCriteria", {})
        metric = job.auto_ml_job_objective["MetricName"]
        twin.trace.add(
            "job", service="sagemaker", job_type="automl", job=name, status="InProgress",
            note=f"Autopilot played by the twin's stand-in: up to {len(autopilot.CONFIGURATIONS)} XGBoost "
            f"configurations, judged by {metric} on the validation channel",
        )  # fmt: skip
        root = twin.state / "sagemaker" / name
        shutil.rmtree(root, ignore_errors=True)
        role, key_arn = request["RoleArn"], request["OutputDataConfig"].get("KmsKeyId")
        output = request["OutputDataConfig"]["S3OutputPath"].rstrip("/") + f"/{name}/"
        try:
            channels = {}
            with acting_as(role):
                for channel in request["AutoMLJobInputDataConfig"]:
                    kind = channel.get("ChannelType", "training")
                    uri = channel["DataSource"]["S3DataSource"]["S3Uri"]
                    channels[kind] = Path(self._mirror_down(uri, root / kind))
            if "validation" not in channels:
                raise autopilot.AutopilotError("the twin's stand-in needs a validation channel")
            model, candidates, explained = autopilot.search(
                channels["training"], channels["validation"], tabular["TargetAttributeName"], tabular["ProblemType"],
                metric, criteria.get("MaxCandidates", len(autopilot.CONFIGURATIONS)),
            )  # fmt: skip
            best = next(c for c in candidates if c["best"])
            artifacts = self._automl_artifacts(output, best["name"], model, explained, key_arn, role)
        except (autopilot.AutopilotError, ClientError, KeyError, ValueError) as error:
            job.auto_ml_job_status, job.auto_ml_job_secondary_status = "Failed", "Failed"
            job.failure_reason = str(error)
            job.best_candidate = None
            candidates = []
        else:
            job.auto_ml_job_status, job.auto_ml_job_secondary_status = "Completed", "Completed"
            job.failure_reason = ""
            job.best_candidate = self._candidate(best, metric, artifacts)
            job.auto_ml_job_artifacts = {
                "CandidateDefinitionNotebookLocation": artifacts["candidate_notebook"],
                "DataExplorationNotebookLocation": artifacts["data_exploration_notebook"],
            }
        job.partial_failure_reasons = []
        # Naive UTC, as moto keeps the record's own times (ListAutoMLJobs compares them).
        job.end_time = job.last_modified_time = _now().replace(tzinfo=None)
        twin.activity += 1
        twin.trace.add(
            "job", service="sagemaker", job_type="automl", job=name, status=job.auto_ml_job_status,
            failure=job.failure_reason or None,
            candidates=[{k: c[k] for k in ("name", "settings", "rounds", "value", "best")} for c in candidates],
        )  # fmt: skip

    def _automl_artifacts(
        self, output: str, candidate: str, model: Mapping[str, Any], explained: bytes, key_arn: str | None, role: str
    ) -> dict[str, str]:
        """The best candidate's model and the job's artifacts where Autopilot writes them, as the
        job's role; the notebooks are the stand-in's notes in Autopilot's notebooks' places."""
        encryption = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": key_arn} if key_arn else {}
        places = {
            "model": f"{output}candidates/{candidate}/model.tar.gz",
            "candidate_notebook": f"{output}sagemaker-automl-candidates/notebooks/"
            "SageMakerAutopilotCandidateDefinitionNotebook.ipynb",
            "data_exploration_notebook": f"{output}sagemaker-automl-candidates/notebooks/"
            "SageMakerAutopilotDataExplorationNotebook.ipynb",
            "explainability": f"{output}documentation/explainability/output/{candidate}/",
        }
        note = "The local twin's Autopilot stand-in: Autopilot writes its generated notebook here."
        notebook = {
            "cells": [{"cell_type": "markdown", "metadata": {}, "source": [note]}],
            "metadata": {}, "nbformat": 4, "nbformat_minor": 5,
        }  # fmt: skip
        bodies = {
            places["model"]: autopilot.model_archive(model),
            places["candidate_notebook"]: json.dumps(notebook).encode(),
            places["data_exploration_notebook"]: json.dumps(notebook).encode(),
            places["explainability"] + "analysis.json": explained,
        }
        with acting_as(role):
            s3 = self.twin.client("s3")
            for uri, body in bodies.items():
                bucket, key = split_uri(uri)
                s3.put_object(Bucket=bucket, Key=key, Body=body, **encryption)
        return places

    def _candidate(self, best: Mapping[str, Any], metric: str, artifacts: Mapping[str, str]) -> dict[str, Any]:
        """The best candidate as DescribeAutoMLJobV2 gives it (AutoMLCandidate)."""
        twin = self.twin
        image = f"{twin.account}.dkr.ecr.{twin.region}.amazonaws.com/{autopilot.IMAGE_REPOSITORY}:latest"
        container = {
            "Image": image,
            "ModelDataUrl": artifacts["model"],
            "Environment": {
                "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "text/csv",
                "SAGEMAKER_INFERENCE_OUTPUT": "predicted_label",
                "SAGEMAKER_INFERENCE_SUPPORTED": ",".join(autopilot.KEYS),
            },
        }
        now = _now()
        return {
            "CandidateName": best["name"],
            "FinalAutoMLJobObjectiveMetric": {
                "Type": "Minimize" if metric in autopilot.MINIMIZED else "Maximize",
                "MetricName": metric,
                "Value": best["value"],
                "StandardMetricName": metric,
            },
            "ObjectiveStatus": "Succeeded",
            "CandidateSteps": [],
            "CandidateStatus": "Completed",
            "InferenceContainers": [container],
            "CreationTime": now,
            "EndTime": now,
            "LastModifiedTime": now,
            "CandidateProperties": {
                "CandidateArtifactLocations": {"Explainability": artifacts["explainability"]},
                "CandidateMetrics": [
                    {"MetricName": metric, "Value": best["value"], "Set": "Validation", "StandardMetricName": metric}
                ],
            },
            "InferenceContainerDefinitions": {"CPU": [container]},
        }

    # --- batch transform ---

    def run_transform(self, name: str, request: dict[str, Any]) -> None:
        twin = self.twin
        job = self._backend().transform_jobs[name]
        twin.trace.add("job", service="sagemaker", job_type="transform", job=name, status="InProgress")
        try:
            written = self._transform(name, request)
            job.transform_job_status, job.failure_reason = "Completed", ""
        except JobFailed as error:
            job.transform_job_status, job.failure_reason = "Failed", str(error)
            written = []
        except Exception as error:  # the twin's own failure shows as the job's, with the trace
            job.transform_job_status, job.failure_reason = "Failed", f"InternalServerError: {error}"
            twin.trace.add("job-log", service="sagemaker", job=name, traceback=traceback.format_exc(limit=8))
            written = []
        job.transform_end_time = job.last_modified_time = _now()
        twin.trace.add(
            "job", service="sagemaker", job_type="transform", job=name, status=job.transform_job_status,
            outputs=written, failure=job.failure_reason or None,
        )  # fmt: skip
        with acting_as("twin"):
            description = twin.client("sagemaker").describe_transform_job(TransformJobName=name)
        self._emit(events.sagemaker_transform_job_state_change(description, account=twin.account, region=twin.region))

    def _transform(self, name: str, request: Mapping[str, Any]) -> list[str]:
        twin = self.twin
        server = twin.hosting.container_for_model(request["ModelName"], f"transform-{name}")
        source = request["TransformInput"]["DataSource"]["S3DataSource"]
        output = request["TransformOutput"]
        split = request["TransformInput"].get("SplitType", "None")
        join = request.get("DataProcessing", {}).get("JoinSource", "None")
        content_type = request["TransformInput"].get("ContentType", "")
        selected = request.get("DataProcessing", {}).get("InputFilter", "$")
        limit = int(request.get("MaxPayloadInMB", 6)) * 1024 * 1024
        multi = request.get("BatchStrategy", "SingleRecord") == "MultiRecord"
        role = server.role
        written = []
        try:
            with acting_as(role):
                s3 = twin.client("s3")
                bucket, keys, base = self._transform_inputs(s3, source)
                for key in keys:
                    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
                    records = body.splitlines() if split == "Line" else [body]
                    records = [r for r in records if r.strip()]
                    outputs: list[str] = []
                    for batch in batches(input_filter(records, selected, content_type), limit, multi):
                        status, text = server.invoke("\n".join(batch) + "\n", content_type, output.get("Accept", ""))
                        if status >= 400:
                            raise JobFailed(
                                f"ClientError: the model answered {status} for s3://{bucket}/{key}: {text[:300]}"
                            )
                        lines = text.splitlines()
                        if len(lines) != len(batch):
                            raise JobFailed(
                                f"ClientError: {len(batch)} records in, {len(lines)} predictions out (s3://{bucket}/{key})"
                            )
                        outputs += lines
                    if join == "Input":
                        outputs = [
                            f"{record},{prediction}" for record, prediction in zip(records, outputs, strict=True)
                        ]
                    out_bucket, out_prefix = split_uri(output["S3OutputPath"].rstrip("/") + "/")
                    out_key = out_prefix + key[len(base) :] + ".out"
                    encryption = (
                        {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": output["KmsKeyId"]}
                        if output.get("KmsKeyId")
                        else {}
                    )
                    joiner = "\n" if output.get("AssembleWith") == "Line" else ""
                    s3.put_object(
                        Bucket=out_bucket, Key=out_key, Body=(joiner.join(outputs) + joiner).encode(), **encryption
                    )
                    written.append(f"s3://{out_bucket}/{out_key}")
        finally:
            server.stop()
        return written

    def _transform_inputs(self, s3, source: Mapping[str, Any]) -> tuple[str, list[str], str]:
        """(bucket, the input keys, the part of each key its output name leaves out)."""
        kind = source.get("S3DataType", "S3Prefix")
        if kind == "ManifestFile":
            bucket, key = split_uri(source["S3Uri"])
            try:
                manifest = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
                first, *relative = manifest
                prefix_bucket, base = split_uri(first["prefix"])
            except Exception as error:
                raise JobFailed(f"ClientError: cannot read the manifest {source['S3Uri']}: {error}") from None
            return prefix_bucket, [base + name for name in relative], base
        if kind != "S3Prefix":
            raise JobFailed(f"ClientError: the twin runs S3Prefix and ManifestFile transform inputs, not {kind}")
        bucket, prefix = split_uri(source["S3Uri"])
        return bucket, _keys(s3, bucket, prefix), prefix[: prefix.rfind("/") + 1]

    # --- processing: Model Monitor's analyzer ---

    def run_processing(self, name: str, request: Mapping[str, Any]) -> None:
        """A processing job of Model Monitor's analyzer, played by ``local.monitor``: a baseline
        job (``dataset_source`` holds a headerless CSV dataset) writes statistics.json and
        constraints.json; a monitoring run (``baseline_constraints`` given) writes
        constraint_violations.json and statistics.json. S3 is read and written as the job's role,
        outputs under the job's KMS key. Any other image fails the job by name."""
        twin = self.twin
        job = self._backend().processing_jobs[name]
        twin.trace.add("job", service="sagemaker", job_type="processing", job=name, status="InProgress")
        try:
            written = self._analyze(request)
            status, reason = "Completed", ""
        except JobFailed as error:
            status, reason, written = "Failed", str(error), []
        except Exception as error:  # the twin's own failure shows as the job's, with the trace
            status, reason, written = "Failed", f"InternalServerError: {error}", []
            twin.trace.add("job-log", service="sagemaker", job=name, traceback=traceback.format_exc(limit=8))
        job.processing_job_status = status
        if reason:
            job.failure_reason = reason
        job.processing_end_time = job.last_modified_time = _now()
        twin.trace.add(
            "job", service="sagemaker", job_type="processing", job=name, status=status, outputs=written,
            failure=reason or None,
        )  # fmt: skip
        with acting_as("twin"):
            description = twin.client("sagemaker").describe_processing_job(ProcessingJobName=name)
        self._emit(events.sagemaker_processing_job_state_change(description, account=twin.account, region=twin.region))

    def run_monitoring(self, schedule_name: str, hour: dt.datetime | None = None) -> str:
        """The execution of a schedule that analyzes the endpoint's traffic of one hour (the hour
        that holds ``hour``, now by default), as Model Monitor starts it: a processing job of the
        definition's image, as its role, in its network, its report under
        ``<output>/<endpoint>/<schedule>/<yyyy>/<mm>/<dd>/<hh>/``. The environment and paths are
        those the SageMaker Python SDK documents for the analyzer
        (https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-byoc-containers.html).

        - a data-quality schedule runs at the next hour's start on that hour's capture, with the
          baseline's constraints and statistics;
        - a model-quality schedule runs when its window (StartTimeOffset to EndTimeOffset before
          the run) ends with that hour, on the capture of the window and the labels uploaded under
          its ground-truth folder, which the twin's job joins itself (Model Monitor runs a merge job
          first).

        Returns the job's name; it runs when the twin is next idle."""
        twin = self.twin
        schedule = twin.monitoring.schedules[schedule_name]
        config = schedule["MonitoringScheduleConfig"]
        definition = twin.monitoring.definitions[config["MonitoringJobDefinitionName"]]
        kind = config["MonitoringType"]
        job_input = definition[f"{kind}JobInput"]
        endpoint_input = job_input["EndpointInput"]
        endpoint = endpoint_input["EndpointName"]
        capture = twin.hosting.captures.get(endpoint)
        if capture is None:
            raise JobFailed(f"ClientError: endpoint {endpoint} captures no data for {schedule_name}")
        analyzed = (hour or _now()).replace(minute=0, second=0, microsecond=0)
        [output] = definition[f"{kind}JobOutputConfig"]["MonitoringOutputs"]
        application = definition[f"{kind}AppSpecification"]
        captured = f"{capture.destination}/{endpoint}/{capture.variant}"
        inputs: list[tuple[str, str]] = []  # (S3 URI, LocalPath)
        if kind == "DataQuality":
            scheduled, start = analyzed + dt.timedelta(hours=1), analyzed
            end = scheduled
            baseline = definition.get("DataQualityBaselineConfig", {})
            inputs = [
                (f"{captured}/{start:%Y/%m/%d/%H}", endpoint_input["LocalPath"]),
                (baseline["ConstraintsResource"]["S3Uri"], "/opt/ml/processing/baseline/constraints"),
                (baseline["StatisticsResource"]["S3Uri"], "/opt/ml/processing/baseline/stats"),
            ]
            environment = {
                "baseline_constraints": "/opt/ml/processing/baseline/constraints/constraints.json",
                "baseline_statistics": "/opt/ml/processing/baseline/stats/statistics.json",
            }
        else:
            later, earlier = (_offset(endpoint_input[key]) for key in ("EndTimeOffset", "StartTimeOffset"))
            scheduled = analyzed + dt.timedelta(hours=1) + later
            start, end = scheduled - earlier, scheduled - later
            inputs = [
                (captured, endpoint_input["LocalPath"]),
                (job_input["GroundTruthS3Input"]["S3Uri"], GROUND_TRUTH_INPUT),
            ]
            attributes = ("InferenceAttribute", "ProbabilityAttribute", "ProbabilityThresholdAttribute")
            environment = {
                "analysis_type": "MODEL_QUALITY",
                "problem_type": application["ProblemType"],
                "ground_truth_source": GROUND_TRUTH_INPUT,
                **{_snake(a): str(endpoint_input[a]) for a in attributes if a in endpoint_input},
            }
        name = f"model-monitoring-{scheduled:%Y%m%d%H}00-{uuid.uuid4().hex[:24]}"
        reports = output["S3Output"]["S3Uri"].rstrip("/")
        network = definition.get("NetworkConfig", {})

        def source(uri: str, local: str) -> dict[str, Any]:
            s3_input = {"S3Uri": uri, "LocalPath": local, "S3DataType": "S3Prefix", "S3InputMode": "File"}
            return {"InputName": local.rsplit("/", 1)[-1], "S3Input": s3_input}

        request = {
            "ProcessingJobName": name,
            "ProcessingInputs": [source(uri, local) for uri, local in inputs],
            "ProcessingOutputConfig": {
                "Outputs": [
                    {
                        "OutputName": "result",
                        "S3Output": {
                            "S3Uri": f"{reports}/{endpoint}/{schedule_name}/{analyzed:%Y/%m/%d/%H}",
                            "LocalPath": output["S3Output"]["LocalPath"],
                            "S3UploadMode": "EndOfJob",
                        },
                    }
                ],
                **({"KmsKeyId": k} if (k := definition[f"{kind}JobOutputConfig"].get("KmsKeyId")) else {}),
            },
            "ProcessingResources": {"ClusterConfig": definition["JobResources"]["ClusterConfig"]},
            "StoppingCondition": definition.get("StoppingCondition", {"MaxRuntimeInSeconds": 3600}),
            "AppSpecification": {"ImageUri": application["ImageUri"]},
            "Environment": {
                **application.get("Environment", {}),
                "dataset_format": json.dumps(
                    {"sagemakerCaptureJson": {"captureIndexNames": ["endpointInput", "endpointOutput"]}}
                ),
                "dataset_source": endpoint_input["LocalPath"],
                "output_path": output["S3Output"]["LocalPath"],
                **environment,
                "sagemaker_endpoint_name": endpoint,
                "sagemaker_monitoring_schedule_name": schedule_name,
                "start_time": f"{start:%Y-%m-%dT%H:%M:%SZ}",
                "end_time": f"{end:%Y-%m-%dT%H:%M:%SZ}",
            },
            "RoleArn": definition["RoleArn"],
            **({"NetworkConfig": network} if network else {}),
        }
        with acting_as("sagemaker.amazonaws.com"):  # Model Monitor starts the execution, not a role of ours
            self.twin.client("sagemaker").create_processing_job(**request)
        twin.trace.add(
            "monitoring", schedule=schedule_name, endpoint=endpoint, job=name, hour=f"{analyzed:%Y/%m/%d/%H}"
        )
        return name  # the job runs as every processing job does, once the twin is idle

    def _analyze(self, request: Mapping[str, Any]) -> list[str]:
        image = request["AppSpecification"]["ImageUri"]
        if monitor.ANALYZER_REPOSITORY not in image:
            raise JobFailed(f"ClientError: the twin runs Model Monitor's analyzer only, not {image}")
        environment = request.get("Environment", {})
        sources = [i["S3Input"] for i in request.get("ProcessingInputs", []) if "S3Input" in i]
        inputs = {source["LocalPath"]: source["S3Uri"] for source in sources}
        [output] = request["ProcessingOutputConfig"]["Outputs"]
        key = request["ProcessingOutputConfig"].get("KmsKeyId")
        encryption = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": key} if key else {}
        with acting_as(request["RoleArn"]):
            s3 = self.twin.client("s3")
            dataset = environment.get("dataset_source", "")
            if dataset not in inputs:
                raise JobFailed(f"ClientError: dataset_source {dataset!r} is no input's LocalPath")
            texts = _texts(s3, inputs[dataset])
            if environment.get("analysis_type") == "MODEL_QUALITY":
                labels = monitor.ground_truth(_texts(s3, inputs[environment["ground_truth_source"]]))
                pairs = monitor.joined(texts, labels, environment["start_time"], environment["end_time"])
                if not pairs:
                    raise JobFailed(
                        f"ClientError: no prediction captured from {environment['start_time']} to "
                        f"{environment['end_time']} has a label under {inputs[environment['ground_truth_source']]}"
                    )
                try:
                    files = {"statistics.json": monitor.model_quality(pairs, environment["problem_type"], environment)}
                except ValueError as error:
                    raise JobFailed(f"ClientError: {error}") from None
            elif "baseline_constraints" in environment:
                rows = monitor.captured_rows(texts)
                baseline = {}
                for name in ("statistics", "constraints"):
                    path = environment[f"baseline_{name}"]  # a file inside an input's LocalPath
                    folder = path if path in inputs else path.rsplit("/", 1)[0]
                    if folder not in inputs:
                        raise JobFailed(f"ClientError: baseline_{name} {path!r} is in no input")
                    baseline[name] = json.loads(_texts(s3, inputs[folder])[0])
                statistics, _ = monitor.baseline(rows)
                files = {
                    "constraint_violations.json": {
                        "violations": monitor.violations(rows, baseline["statistics"], baseline["constraints"])
                    },
                    "statistics.json": statistics,
                }
            else:
                rows = monitor.read_rows(texts)
                if not rows:
                    raise JobFailed(f"ClientError: no records under {inputs[dataset]}")
                statistics, constraints = monitor.baseline(rows)
                files = {"statistics.json": statistics, "constraints.json": constraints}
            bucket, prefix = split_uri(output["S3Output"]["S3Uri"].rstrip("/") + "/")
            written = []
            for file, document in files.items():
                body = json.dumps(document, indent=2).encode()
                s3.put_object(Bucket=bucket, Key=prefix + file, Body=body, **encryption)
                written.append(f"s3://{bucket}/{prefix}{file}")
        return written

    # --- the registry ---

    def _package_event(self, arn: str) -> None:
        twin = self.twin
        with acting_as("twin"):
            description = twin.client("sagemaker").describe_model_package(ModelPackageName=arn)
        self._emit(events.sagemaker_model_package_state_change(description, account=twin.account, region=twin.region))


def _keys(s3, bucket: str, prefix: str) -> list[str]:
    """The keys of the objects under ``prefix`` (folder markers left out), in key order (S3's)."""
    return [
        item["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for item in page.get("Contents", [])
        if not item["Key"].endswith("/")
    ]


def _texts(s3, uri: str) -> list[str]:
    """The text of every object under an S3 prefix (or of the one object ``uri`` names), in key order."""
    bucket, prefix = split_uri(uri)
    return [s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8") for key in _keys(s3, bucket, prefix)]


def _snapshot(folder: Path) -> dict[Path, tuple[int, int]]:
    return {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in folder.rglob("*") if p.is_file()}


GROUND_TRUTH_INPUT = "/opt/ml/processing/groundtruth"  # where the twin's model-quality job reads labels
OFFSET = re.compile(r"^-P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?)?$")


def _offset(text: str) -> dt.timedelta:
    """A monitoring offset, an ISO 8601 duration such as -PT24H or -P1D, as a positive time."""
    found = OFFSET.match(text)
    if found is None or not any(found.groups()):
        raise JobFailed(f"ClientError: {text!r} is not an offset such as -PT24H or -P1D")
    days, hours, minutes = (int(part or 0) for part in found.groups())
    return dt.timedelta(days=days, hours=hours, minutes=minutes)


def _snake(name: str) -> str:
    """InferenceAttribute -> inference_attribute (the SDK's environment names)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class JobFailed(RuntimeError):
    """The job ends Failed with this reason (SageMaker's FailureReason style)."""


@dataclass(frozen=True)
class TrainingContainer:
    """A training job's container, set up: its /opt/ml folder, hyperparameters, input data
    configuration and the job's request."""

    root: Path
    hyperparameters: Mapping[str, str]
    channels: Mapping[str, Any]
    request: Mapping[str, Any]


def _contain(step, *args):
    """A job step's result, or its JobFailed as a value (so one failed job does not stop others)."""
    try:
        return step(*args)
    except JobFailed as error:
        return error


def _decoded(value: str) -> Any:
    """A hyperparameter as the training toolkit reads it: JSON where it parses, else the text."""
    try:
        return json.loads(value)
    except (TypeError, json.JSONDecodeError):
        return value


def parse_metrics(definitions: list[Mapping[str, str]], log: str) -> dict[str, float]:
    """The last value each metric definition's regular expression finds in the log."""
    metrics = {}
    for definition in definitions:
        found = re.findall(definition["Regex"], log)
        if found:
            value = found[-1] if isinstance(found[-1], str) else found[-1][0]
            metrics[definition["Name"]] = float(value)
    return metrics


def sample(ranges: Mapping[str, list[Mapping[str, str]]], rng: random.Random) -> dict[str, str]:
    """One draw from the tuning ranges (uniform, or log-uniform for Logarithmic scaling)."""
    values: dict[str, str] = {}
    for kind in ("ContinuousParameterRanges", "IntegerParameterRanges"):
        for item in ranges.get(kind, []):
            low, high = float(item["MinValue"]), float(item["MaxValue"])
            scaling = item.get("ScalingType")
            if scaling == "Logarithmic" and low > 0:
                value = math.exp(rng.uniform(math.log(low), math.log(high)))
            elif scaling == "ReverseLogarithmic" and 0 <= low < high < 1:  # dense near 1
                value = 1 - math.exp(rng.uniform(math.log(1 - high), math.log(1 - low)))
            else:
                value = rng.uniform(low, high)
            values[item["Name"]] = str(round(value)) if kind == "IntegerParameterRanges" else f"{value:.6g}"
    for item in ranges.get("CategoricalParameterRanges", []):
        values[item["Name"]] = rng.choice(item["Values"])
    return values


def input_filter(records: list[str], expression: str, content_type: str) -> list[str]:
    """Each CSV record's columns that ``InputFilter`` selects: ``$`` (all), ``$[a:b]`` (a slice)
    or ``$[i,j,...]`` (indexes), the forms the page gives for CSV; anything else fails the job.
    https://docs.aws.amazon.com/sagemaker/latest/dg/batch-transform-data-processing.html"""
    if expression == "$":
        return records
    if content_type.split(";")[0].strip() != "text/csv":
        raise JobFailed(f"ClientError: the twin applies InputFilter to text/csv only, not {content_type!r}")
    found = re.fullmatch(r"\$\[\s*(-?\d*)\s*:\s*(-?\d*)\s*\]|\$\[\s*(-?\d+(?:\s*,\s*-?\d+)*)\s*\]", expression)
    if found is None:
        raise JobFailed(f"ClientError: the twin does not apply the InputFilter {expression!r}")
    filtered = []
    for record in records:
        columns = next(csv.reader([record]))
        if found.group(3) is not None:
            chosen = [columns[int(i)] for i in found.group(3).split(",")]
        else:
            start, stop = (int(v) if v else None for v in found.group(1, 2))
            chosen = columns[start:stop]
        out = io.StringIO()
        csv.writer(out, lineterminator="").writerow(chosen)
        filtered.append(out.getvalue())
    return filtered


def batches(records: list[str], limit: int, multi: bool) -> list[list[str]]:
    """Mini-batches of whole records up to ``limit`` bytes (one record each for SingleRecord)."""
    if not multi:
        return [[r] for r in records]
    out: list[list[str]] = []
    current: list[str] = []
    size = 0
    for record in records:
        length = len(record.encode()) + 1
        if current and size + length > limit:
            out.append(current)
            current, size = [], 0
        current.append(record)
        size += length
    if current:
        out.append(current)
    return out
