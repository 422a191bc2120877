"""``python -m checks.mutation`` (``make mutation``): do the tests notice a defect in the decision code?

Each module below is mutated with cosmic-ray's operators (https://cosmic-ray.readthedocs.io), one
change at a time (an operator, a constant, a comparison, a statement), and its own tests run
against each mutant: a mutant that makes a test fail is killed, one that passes them survived. The
mutant is written to the module's file on disk, so the tests run the mutated code however they
load it (the functions by path under test names, the runtime by folder on ``sys.path``), which a
tool that swaps functions by their import name cannot follow. Each mutant runs only the tests
that reach its line (coverage.py's per-test contexts, from one run of the module's tests); a
mutant on a line no test reaches survives.

Each module is mutated in a copy of the repository of its own (two at a time on 2 cores), from a
fixed-seed sample of at most ``--sample`` mutants (all of them where it has fewer). A survivor
that cannot change behaviour is listed in ``EQUIVALENT`` with why, and left out of the score; the
report names every other survivor by line, operator and the changed line. The run fails when a
module scores under ``--target`` (90%).

    python -m checks.mutation                      # every module
    python -m checks.mutation --only deploy_model  # modules whose path holds the text
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"  # the datasets the tests read (../shared/data)

# The decision code, each with the tests that cover it (its own test files).
MODULES: dict[str, tuple[str, ...]] = {
    "lambda/start_etl/handler.py": ("tests/test_start_etl.py",),
    "lambda/start_training/handler.py": ("tests/test_training_handlers.py",),
    "lambda/register_model/handler.py": ("tests/test_training_handlers.py",),  # and the gate
    "lambda/start_batch_transform/handler.py": ("tests/test_training_handlers.py",),
    "lambda/deploy_model/handler.py": ("tests/test_deploy_model.py", "tests/test_deploy_model_baseline.py"),
    "lambda/check_drift/handler.py": ("tests/test_check_drift.py",),
    "etl/platform_runtime.py": (
        "tests/test_platform_runtime.py",
        "tests/test_error_codes.py",
        "tests/test_start_etl.py",
        "tests/test_training_handlers.py",
        "tests/test_deploy_model.py",
        "tests/test_check_drift.py",
    ),
    "etl/dataset_spec.py": ("tests/test_dataset_spec.py",),
    "training_jobs/schema_encoder.py": (
        "tests/test_schema_encoder.py",
        "tests/test_inference.py",
        "tests/test_inference_properties.py",
    ),
    "training_jobs/inference.py": ("tests/test_inference.py", "tests/test_inference_properties.py"),
    "local/bus.py": ("tests/test_local_bus.py",),
    "local/matcher.py": ("tests/test_local_matcher.py",),
    "local/resolve.py": ("tests/test_local_resolve.py",),
}

# The modules whose mutants take longest (their tests reach most lines, or run the most), started
# first so that the two workers end together.
LONGEST = frozenset({"etl/platform_runtime.py", "training_jobs/inference.py", "training_jobs/schema_encoder.py"})

# What each module's test runs keep from one run to the next (tests/conftest.py CACHE): the
# prepared datasets and the trained models, except where a mutant would change them. The
# preparation runs etl/dataset_spec.py, so its mutants see the datasets prepared again (and the
# models trained again on them). The trainer (training_jobs/train.py) imports none of these
# modules: it copies inference.py and schema_encoder.py into the model's code/ folder, so a kept
# model's code/ holds them unmutated, and the tests that read that folder can only miss a mutant
# of them, never kill one that the code the tests import would not.
PREPARATION_CODE = frozenset({"etl/dataset_spec.py"})

# Survivors that cannot change behaviour: (module, operator, the mutated line's text) -> why (the
# line's number is left out: it moves whenever the code above it changes). Besides these, a
# survivor inside an annotation of a module that postpones its annotations is equivalent by rule
# (ANNOTATION); one that some code evaluates after all is killed, not excused.
ANNOTATION = "an annotation the module postpones (PEP 563): a string no code evaluates"
_LATIN1 = "iterating a str yields one-character strings, which CPython keeps one object each below U+0100"
_ROOM = (
    "the group prefix is mlplatform- and a stage name of 20 characters at most (config/stage.py), which"
    " leaves room for 18 characters or more: max(room, c) is room for c of -1, 0 or 1"
)
_FROZEN = "the settings are read once and never changed nor hashed: a frozen dataclass and a plain one behave alike"
EQUIVALENT: dict[tuple[str, str, str], str] = {
    ("lambda/start_etl/handler.py", "core/ReplaceTrueWithFalse", "@dataclass(frozen=False)"): _FROZEN,
    (
        "lambda/start_etl/handler.py",
        "core/ReplaceComparisonOperator_Eq_GtE",
        'said = "started as" if outcome["status"] >= "started" else "already started as"',
    ): 'runtime.start_run answers "started" or "duplicate" only, and "duplicate" < "started"',
    (
        "lambda/start_etl/handler.py",
        "core/ReplaceComparisonOperator_Eq_Is",
        'said = "started as" if outcome["status"] is "started" else "already started as"',
    ): 'the status is runtime.start_run\'s literal "started", which CPython interns: the same object',
    ("lambda/start_training/handler.py", "core/ReplaceTrueWithFalse", "@dataclass(frozen=False)"): _FROZEN,
    (
        "lambda/start_training/handler.py",
        "core/ReplaceComparisonOperator_Gt_NotEq",
        "sharded = training.instance_count != 1",
    ): "the spec refuses an instance count under 1 (dataset_spec: training.instance_count), so > 1 and != 1 agree",
    (
        "lambda/start_training/handler.py",
        "core/ReplaceComparisonOperator_Eq_GtE",
        'if spec.training.algorithm >= "linear-learner":',
    ): 'only the built-ins reach it: "linear-learner" and "knn", and "knn" < "linear-learner"',
    (
        "lambda/start_training/handler.py",
        "core/ReplaceComparisonOperator_Eq_GtE",
        'kind = "IntegerParameterRanges" if bounds.get("type") >= "integer" else "ContinuousParameterRanges"',
    ): 'the spec gives a range the type "integer" or "continuous" only, and "continuous" < "integer"',
    (
        "lambda/register_model/handler.py",
        "core/ReplaceComparisonOperator_Eq_LtE",
        'if problem <= "binary" and isinstance(threshold := test.get("threshold"), int | float):',
    ): 'the spec\'s problem is "binary", "multiclass" or "regression", and only "binary" sorts at or before "binary"',
    (
        "lambda/start_batch_transform/handler.py",
        "core/NumberReplacer",
        'stem = re.sub(r"[^A-Za-z0-9-]", "-", f"{dataset}-{name.rsplit(\'.\', 1)[0]}")[: max(room, -1)].strip("-")',
    ): _ROOM,
    (
        "lambda/start_batch_transform/handler.py",
        "core/NumberReplacer",
        'stem = re.sub(r"[^A-Za-z0-9-]", "-", f"{dataset}-{name.rsplit(\'.\', 1)[0]}")[: max(room, 1)].strip("-")',
    ): _ROOM,
    (
        "lambda/deploy_model/handler.py",
        "core/ReplaceComparisonOperator_NotEq_Gt",
        'if job["ProcessingJobStatus"] > "Completed":',
    ): "ProcessingJobStatus (botocore's model) is InProgress, Completed, Failed, Stopping or Stopped: all but"
    " Completed sort after it",
    (
        "lambda/deploy_model/handler.py",
        "core/ReplaceComparisonOperator_NotEq_Lt",
        "if runtime.error_code(error) < UPDATE_REFUSED:",
    ): "every error code CloudFormation answers (botocore's model, the common errors) and the empty code sort"
    ' before "ValidationError"',
    ("lambda/check_drift/handler.py", "core/ReplaceTrueWithFalse", "@dataclass(frozen=False)"): _FROZEN,
    (
        "etl/platform_runtime.py",
        "core/NumberReplacer",
        '"sagemaker_submit_directory": "/opt/ml/input/data/code/" + source_uri.rsplit("/", 2)[-1],',
    ): "a right split's last part is the same whatever its limit above 0",
    ("etl/platform_runtime.py", "core/NumberReplacer", "MaxResults= 2,"): (
        "the newest approved package is the first of the list sorted newest first, whether one or two are asked for"
    ),
    ("etl/dataset_spec.py", "core/ReplaceTrueWithFalse", "@dataclass(frozen=False)"): (
        "an Autopilot section is built once by the spec's loader and only read (start_training reads three"
        " fields): nothing assigns to it or hashes it"
    ),
    (
        "etl/dataset_spec.py",
        "core/ReplaceComparisonOperator_Eq_Is",
        'bounds = f">= {low}" if high is sys.maxsize else f"from {low} to {high}"',
    ): "the one open bound passed is the sys.maxsize object itself; every other bound is a smaller int",
    (
        "etl/dataset_spec.py",
        "core/ReplaceComparisonOperator_Eq_GtE",
        'if scaling >= "ReverseLogarithmic" and not (low >= 0 and high < 1):',
    ): 'the scaling is one of SCALINGS by then, and Auto, Linear and Logarithmic sort before "ReverseLogarithmic"',
    ("training_jobs/schema_encoder.py", "core/ReplaceComparisonOperator_Eq_GtE", 'if f["kind"] >= "ordinal"'): (
        'a feature\'s kind is "numeric", "one-hot" or "ordinal" (the prepared schema), and the first two sort'
        ' before "ordinal"'
    ),
    ("training_jobs/schema_encoder.py", "core/ReplaceContinueWithBreak", "break"): (
        "the layouts are tried in the order (F,F), (T,F), (F,T), (T,T): where the guard skips (F,T) it skips"
        " (T,T) too, so ending the loop there leaves the same layouts"
    ),
    (
        "training_jobs/schema_encoder.py",
        "core/ReplaceComparisonOperator_Lt_LtE",
        "encoded.append(low if number <= low else high if number > high else number)",
    ): "the two differ only where the number equals the low whisker, and then both append that value",
    (
        "training_jobs/inference.py",
        "core/ReplaceComparisonOperator_Eq_LtE",
        'steps = np.where((opening <= ord("[")) | (opening == ord("{")), 1, -1)',
    ): "only the brackets [ ] { } are left by then (codes 91, 93, 123, 125): <= 91 holds for [ alone",
    (
        "local/bus.py",
        "core/ReplaceComparisonOperator_Eq_Is",
        "if not self.scheduled or twin.activity is self._ticked_at:",
    ): "the twin's activity only grows: when it equals the value last stored, it is that very object",
    ("local/bus.py", "core/ReplaceComparisonOperator_Eq_Is", 'elif character is "\\\\":'): _LATIN1,
    ("local/bus.py", "core/ReplaceComparisonOperator_Eq_Is", "elif character is '\"':"): _LATIN1,
    ("local/bus.py", "core/ReplaceContinueWithBreak", "break"): (
        "a path's only empty step is the root's ($, the last step too); EventBridge refuses a path with an"
        " empty step in the middle ($.a..b)"
    ),
    (
        "local/bus.py",
        "core/ReplaceComparisonOperator_Eq_LtE",
        "if not self.scheduled or twin.activity <= self._ticked_at:",
    ): "the twin's activity only grows: it is never below the value last stored",
    (
        "local/resolve.py",
        "core/NumberReplacer",
        'yield value.split(".", 2)[0] if isinstance(value, str) else value[0]',
    ): "a split's first part is the same whatever its limit above 0",
    (
        "local/matcher.py",
        "core/ReplaceBinaryOperator_Sub_BitOr",
        "for name in set(os.environ) | set(environ):",
    ): "every variable is deleted rather than only the added ones, and the next loop sets the others back",
    (
        "local/matcher.py",
        "core/ReplaceComparisonOperator_NotEq_IsNot",
        "if os.environ.get(name) is not value:",
    ): "a variable is then set again to the value it has already: the environment ends the same",
}

SAMPLE, SEED, TARGET, WORKERS = 60, 18, 0.90, 2
TIMEOUT = 300  # seconds a mutant's test run may take before it counts as killed (an endless loop)
IGNORED = shutil.ignore_patterns(
    ".git", ".venv", "node_modules", "cdk.out", ".local", ".cost", "mutants", "__pycache__", ".mypy_cache"
)


@dataclasses.dataclass
class Mutant:
    line: int
    operator: str
    changed: str  # the mutated line, as the diff shows it
    outcome: str  # killed, survived or equivalent
    reason: str = ""  # why an equivalent one cannot change behaviour


@dataclasses.dataclass
class Result:
    module: str
    total: int  # mutants cosmic-ray can make in the module
    mutants: list[Mutant]
    seconds: float

    @property
    def tried(self) -> list[Mutant]:
        return [m for m in self.mutants if m.outcome in ("killed", "survived")]

    @property
    def killed(self) -> int:
        return sum(m.outcome == "killed" for m in self.tried)

    @property
    def score(self) -> float:
        return self.killed / len(self.tried) if self.tried else 1.0


def _copy(workdir: Path) -> Path:
    """The repository in ``workdir``, with its installed environments linked, not copied."""
    repo = workdir / ROOT.name
    shutil.copytree(ROOT, repo, ignore=IGNORED, symlinks=True)
    for linked in (".venv", "node_modules"):
        if (ROOT / linked).exists():
            (repo / linked).symlink_to(ROOT / linked)
    if SHARED.exists():
        (workdir / "shared").symlink_to(SHARED)
    return repo


def annotation_spans(source: str) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """Where the annotations are, when the module postpones them (``from __future__ import
    annotations``: PEP 563 keeps each as a string no code here evaluates), as (start, end)."""
    import ast

    tree = ast.parse(source)
    postponed = any(
        isinstance(node, ast.ImportFrom)
        and node.module == "__future__"
        and any(a.name == "annotations" for a in node.names)
        for node in tree.body
    )
    if not postponed:
        return []
    found = []
    for node in ast.walk(tree):
        notes = []
        if isinstance(node, ast.arg | ast.AnnAssign):
            notes.append(node.annotation)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            notes.append(node.returns)
        for note in notes:
            if note is not None and note.end_lineno is not None and note.end_col_offset is not None:
                found.append(((note.lineno, note.col_offset), (note.end_lineno, note.end_col_offset)))
    return found


def _in_annotation(
    start: tuple[int, int], end: tuple[int, int], notes: list[tuple[tuple[int, int], tuple[int, int]]]
) -> bool:
    return any(low <= start and end <= high for low, high in notes)


def _changed_line(original: str, mutated: str) -> str:
    import difflib

    added = [
        line[1:].strip()
        for line in difflib.unified_diff(original.splitlines(), mutated.splitlines(), lineterm="", n=0)
        if line.startswith("+") and not line.startswith("+++")
    ]
    return added[0] if added else "(line removed)"


def _environment(module: str, workdir: Path) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ML_PLATFORM_TEST_CACHE")}
    if module not in PREPARATION_CODE:
        environment["ML_PLATFORM_TEST_CACHE"] = str(workdir / "cache")
    return environment


def covering_tests(repo: Path, module: str, tests: tuple[str, ...], env: dict[str, str]) -> dict[int, set[str]]:
    """Each line of ``module`` and the tests that run it (coverage.py's per-test contexts), as
    pytest node ids: a mutant runs only the tests that reach its line."""
    from coverage import CoverageData

    rc = repo / ".mutation-coveragerc"
    data_file = repo / ".mutation-coverage"
    rc.write_text(f"[run]\ndynamic_context = test_function\ndata_file = {data_file}\ninclude = {repo / module}\n")
    coverage = [sys.executable, "-m", "coverage", "run", f"--rcfile={rc}"]
    command = [*coverage, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    result = subprocess.run([*command, *tests], cwd=repo, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"the tests of {module} fail unmutated:\n{result.stdout[-3000:]}")
    data = CoverageData(basename=str(data_file))
    data.read()
    files = {Path(test).stem: test for test in tests}
    by_line: dict[int, set[str]] = {}
    for line, contexts in data.contexts_by_lineno(str(repo / module)).items():
        for context in contexts:  # tests.test_x.test_name, or tests.test_x.TestCase.test_name
            parts = context.split(".")
            if len(parts) >= 3 and parts[1] in files:
                by_line.setdefault(line, set()).add("::".join([files[parts[1]], *parts[2:]]))
            else:  # run outside any test function (an import in a fixture, module-level code): all of them
                by_line.setdefault(line, set()).update(tests)
    return by_line


def mutate(module: str, tests: tuple[str, ...], sample: int, seed: int, workdir: Path) -> Result:
    """Every sampled mutant of ``module``, each against the tests that reach its line, in a copy
    of the repository (cosmic-ray's operators make the mutants and write them on disk)."""
    import cosmic_ray.plugins
    from cosmic_ray.commands.init import _all_work_items
    from cosmic_ray.mutating import use_mutation

    started = time.perf_counter()
    repo = _copy(workdir)
    items = sorted(
        (item.mutations[0] for item in _all_work_items([repo / module], {})),
        key=lambda m: (m.operator_name, m.occurrence),
    )
    env = _environment(module, workdir)
    by_line = covering_tests(repo, module, tests, env)
    notes = annotation_spans((repo / module).read_text(encoding="utf-8"))
    chosen = random.Random(f"{seed}:{module}").sample(items, min(sample, len(items)))
    mutants = []
    for spec in sorted(chosen, key=lambda m: (m.start_pos, m.operator_name)):
        operator = cosmic_ray.plugins.get_operator(spec.operator_name)(**spec.operator_args)
        line = spec.start_pos[0]
        with use_mutation(repo / module, operator, spec.occurrence) as (original, mutated):
            if mutated is None:
                continue
            changed = _changed_line(original, mutated)
            reached = sorted(by_line.get(line, ()))
            if not reached:
                outcome = "survived"  # no test runs the line
            else:
                command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *reached]
                try:
                    run = subprocess.run(command, cwd=repo, env=env, capture_output=True, check=False, timeout=TIMEOUT)
                    outcome = "survived" if run.returncode == 0 else "killed"
                except subprocess.TimeoutExpired:
                    outcome = "killed"  # the mutant made a test run forever
        reason = ""
        if outcome == "survived" and _in_annotation(tuple(spec.start_pos), tuple(spec.end_pos), notes):
            outcome, reason = "equivalent", ANNOTATION
        elif outcome == "survived" and (module, spec.operator_name, changed) in EQUIVALENT:
            outcome, reason = "equivalent", EQUIVALENT[(module, spec.operator_name, changed)]
        mutants.append(Mutant(line, spec.operator_name, changed, outcome, reason))
    return Result(module, len(items), mutants, time.perf_counter() - started)


def report(results: list[Result], target: float) -> str:
    lines = [
        "| module | mutants | tried | killed | survived | equivalent | score | minutes |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        survived = sum(m.outcome == "survived" for m in r.mutants)
        equivalent = sum(m.outcome == "equivalent" for m in r.mutants)
        lines.append(
            f"| `{r.module}` | {r.total} | {len(r.tried)} | {r.killed} | {survived} | {equivalent} | "
            f"{r.score:.0%} | {r.seconds / 60:.1f} |"
        )
    for r in results:
        survivors = [m for m in r.mutants if m.outcome == "survived"]
        if survivors:
            lines += ["", f"Survivors in {r.module}:"]
            lines += [f"  line {m.line}: {m.operator}: {m.changed}" for m in survivors]
        listed = [m for m in r.mutants if m.outcome == "equivalent" and m.reason != ANNOTATION]
        annotated = sum(m.reason == ANNOTATION for m in r.mutants)
        if listed or annotated:
            lines += ["", f"Equivalent in {r.module}" + (f" ({annotated} in annotations)" if annotated else "") + ":"]
            lines += [f"  line {m.line}: {m.operator}: {m.changed}: {m.reason}" for m in listed]
    below = [r.module for r in results if r.score < target]
    verdict = "met" if not below else f"MISSED by {', '.join(below)}"
    lines += ["", f"target {target:.0%} killed per module: {verdict}"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m checks.mutation", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="", help="only the modules whose path holds this text")
    parser.add_argument("--sample", type=int, default=SAMPLE, help="mutants per module (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=SEED, help="the sample's seed (default: %(default)s)")
    parser.add_argument("--target", type=float, default=TARGET, help="share killed per module (default: 0.9)")
    parser.add_argument("--workers", type=int, default=WORKERS, help="modules at a time (default: %(default)s)")
    args = parser.parse_args(argv)
    chosen = {module: tests for module, tests in MODULES.items() if args.only in module}
    if not chosen:
        parser.error(f"no module path holds {args.only!r}; the modules are: {', '.join(MODULES)}")
    started = time.perf_counter()
    results = []
    with (
        tempfile.TemporaryDirectory(prefix="mutation-") as scratch,
        concurrent.futures.ThreadPoolExecutor(max_workers=args.workers) as pool,
    ):
        longest_first = sorted(chosen, key=lambda module: module not in LONGEST)  # stable: the rest as listed
        futures = {
            pool.submit(mutate, module, chosen[module], args.sample, args.seed, Path(scratch) / str(n)): module
            for n, module in enumerate(longest_first)
        }
        for future in concurrent.futures.as_completed(futures):
            result = future.result()
            print(f"{result.module}: {result.killed}/{len(result.tried)} killed ({result.seconds:.0f} s)", flush=True)
            for m in result.mutants:
                if m.outcome == "survived":
                    print(f"  survived: line {m.line}: {m.operator}: {m.changed}", flush=True)
            results.append(result)
    results.sort(key=lambda r: list(chosen).index(r.module))
    print()
    print(report(results, args.target))
    print(f"\n{sum(len(r.tried) for r in results)} mutants in {(time.perf_counter() - started) / 60:.1f} minutes")
    return 0 if all(r.score >= args.target for r in results) else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    sys.exit(main())
