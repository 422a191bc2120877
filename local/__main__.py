"""python -m local: run the platform's chain on the twin from a synthesized cloud assembly.

    python -m local [--assembly cdk.out] [--dataset NAME | --spec FILE] [--data FILE] [--state .local]

Stands the twin up from the assembly, uploads the dataset's raw file under ``raw/<dataset>/``,
runs the chain until nothing is pending, asks the endpoint for a prediction and runs a batch
file through ``batch-input/``. One line per step as it goes, a summary at the end; the run is
written to ``<state>/report.json`` and everything the twin saw to ``<state>/trace.json``.
Exit status 0 when every step succeeded, 1 when the chain stopped, 2 on bad input.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from pathlib import Path

from local.assembly import AssemblyError, load
from local.scenario import Run, Scenario, Step

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
# The raw file of each dataset that ships with a spec, under ../shared/data.
DATA_FILES = {
    "bank-marketing": "bank-marketing/bank-additional.csv",
    "vertebral-column": "vertebral-column/column_2C.dat",
    "car-evaluation": "car-evaluation/car.data",
    "wine-quality": "wine-quality/winequality-red.csv",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local", description=__doc__.split("\n\n")[0])
    parser.add_argument("--assembly", type=Path, default=ROOT / "cdk.out", help="the cloud assembly (cdk.out)")
    parser.add_argument("--dataset", help="a dataset with a spec in the assembly (default: bank-marketing)")
    parser.add_argument("--spec", type=Path, help="a spec file synthesized into the assembly; its dataset is run")
    parser.add_argument(
        "--data", type=Path, help="the raw file to upload (default: the dataset's file in ../shared/data)"
    )
    parser.add_argument("--state", type=Path, default=ROOT / ".local", help="where the twin keeps its state and report")
    args = parser.parse_args(argv)
    args.state.mkdir(parents=True, exist_ok=True)
    for stale in ("report.json", "trace.json"):  # never leave an earlier run's report to be read as this one's
        (args.state / stale).unlink(missing_ok=True)
    refuse = functools.partial(_refuse, args.state, args.dataset)

    try:
        assembly = load(args.assembly)
    except AssemblyError as error:
        return refuse(str(error))
    if args.spec is not None:
        try:
            named = json.loads(args.spec.read_text(encoding="utf-8")).get("dataset")
        except (OSError, ValueError, AttributeError) as error:
            return refuse(f"{args.spec}: not a readable JSON spec ({error})")
        if args.dataset and named != args.dataset:
            return refuse(f"--dataset {args.dataset} and the spec's dataset {named!r} differ")
        args.dataset = named
    args.dataset = args.dataset or "bank-marketing"
    known = {
        a.display_name.removeprefix("Spec-") for a in assembly.assets.values() if a.display_name.startswith("Spec-")
    }
    if args.dataset not in known:
        return refuse(f"dataset {args.dataset!r} has no spec in {args.assembly}; known: {', '.join(sorted(known))}")
    data = args.data or (SHARED_DATA / DATA_FILES[args.dataset] if args.dataset in DATA_FILES else None)
    if data is None:
        return refuse(f"dataset {args.dataset!r} ships no data file; give one with --data (DATA=FILE)")
    if not data.is_file():
        return refuse(f"{data} is not a file")

    from botocore.exceptions import BotoCoreError, ClientError

    from local.platform import Twin  # moto and the jobs' libraries load here, after the arguments are checked
    from local.provision import ProvisionError
    from local.resolve import ResolveError
    from local.stacks import StackError

    started = time.perf_counter()
    twin = Twin(assembly, args.state / "twin")
    print(f"local platform: {args.assembly} ({len(assembly.stacks)} stacks) -> {args.state}", flush=True)
    try:
        try:
            twin.start()
        except (ResolveError, ProvisionError, StackError, ClientError, BotoCoreError) as error:
            deploy = Step(
                "deploy", "failed", round(time.perf_counter() - started, 2), f"{type(error).__name__}: {error}"
            )
            run = Run(args.dataset, steps=[deploy], failures=[f"deploy: {deploy.detail}"])
            _print(deploy)
        else:
            deploy = Step(
                "deploy",
                "ok",
                round(time.perf_counter() - started, 2),
                f"{len(twin.cloudformation.stacks)} stacks, assets published",
            )
            _print(deploy)
            run = Scenario(twin, args.dataset, data, progress=_print).execute()
            run.steps.insert(0, deploy)
    finally:
        twin.trace.write(args.state / "trace.json")
        twin.stop()
    report = run.report() | {"seconds": round(time.perf_counter() - started, 2)}
    (args.state / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    _summary(report, args.state)
    return 0 if not run.failures else 1


def _refuse(state: Path, dataset: str | None, message: str) -> int:
    """Bad input: one message, exit status 2, and a report that says so."""
    print(f"error: {message}", file=sys.stderr)
    report = Run(dataset or "", failures=[f"input: {message}"]).report()
    (state / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 2


def _print(step: Step) -> None:
    mark = "ok  " if step.status == "ok" else "FAIL"
    print(f"  {mark} {step.name:<16} {step.seconds:7.2f} s  {step.detail}", flush=True)


def _summary(report: dict, state: Path) -> None:
    print()
    if report["failures"]:
        print(f"The chain stopped: {report['failures'][0]}")
        print(f"See {state / 'trace.json'} for every event, invocation, call and job.")
        return
    prediction = report["prediction"]
    chain = sum(step["seconds"] for step in report["steps"] if step["name"] != "deploy")
    what = "upload to prediction, batch output, model quality and drift"
    print(f"{report['dataset']}: {what} in {chain:.1f} s ({report['seconds']} s in all)")
    print(f"  model package   {report['gate']}")
    print(f"  prediction      {json.dumps(_rounded({k: v for k, v in prediction.items() if k != 'record'}))}")
    print(f"  batch output    {report['batch_output_rows']} rows in {report['outputs']['batch_output']}")
    print(f"  prepared data   {report['outputs']['prepared']}")
    quality = report.get("quality") or {}
    if quality:
        alarm = quality["alarm"] or "not evaluated"
        print(f"  model quality   {quality['metric']} {quality['value']:.4f} on labelled traffic; alarm {alarm}")
    drift = report.get("drift") or {}
    if drift:
        retraining = drift["retraining"]
        print(f"  drift           {len(drift['features'])} features told to the operators; {retraining['detail']}")
        print(f"  retrained       {drift['live']} live")
    print(f"  report          {state / 'report.json'}; trace {state / 'trace.json'}")


def _rounded(value):
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value


if __name__ == "__main__":
    sys.exit(main())
