"""The README, `make help` and the benchmarks as a new user meets them: every command shown runs as
written (no `[--option]` to delete by hand, no target that does not exist), every file the README
names exists, and `make bench` runs through, a failing step showing its own error."""

from __future__ import annotations

import csv
import importlib
import importlib.util
import os
import re
import subprocess
import sys

import boto3
import pytest

from tests.conftest import ROOT, SHARED_DATA

README = (ROOT / "README.md").read_text(encoding="utf-8")
MAKEFILE = (ROOT / "Makefile").read_text(encoding="utf-8")
BENCH = ROOT / "bench"

# `[--seed 42]`, `[X=value]`, `[-v]`: the usage-line convention for optional parts, which a shell
# takes literally when the line is pasted.
BRACKETED_OPTIONAL = re.compile(r"\[\s*(--?[A-Za-z]|[A-Z][A-Z_]*=)")


# --- reading the README and the Makefile -------------------------------------------------------------


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """Each fenced code block: (its language, its body)."""
    return re.findall(r"^```(\w*)\n(.*?)^```", text, flags=re.S | re.M)


def shell_commands(text: str) -> list[str]:
    """The commands of the sh blocks: continuation lines joined, comments and blank lines left out."""
    commands = []
    for language, body in fenced_blocks(text):
        if language not in ("sh", "bash", "shell"):
            continue
        for line in body.replace("\\\n", " ").splitlines():
            command = re.sub(r"(^|\s)#.*$", "", line).strip()
            if command:
                commands.append(command)
    return commands


def code_spans(text: str) -> list[str]:
    """The inline `code` spans of the prose (fenced blocks left out)."""
    prose = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return re.findall(r"`([^`\n]+)`", prose)


def makefile_targets() -> set[str]:
    """The Makefile's own targets (rules named by a word; file targets such as $(STAMPS)/python and
    special ones such as .PHONY left out)."""
    return set(re.findall(r"^([A-Za-z][\w-]*)\s*:(?!=)", MAKEFILE, flags=re.M))


def make_targets_named(command: str) -> list[str]:
    """The targets a `make ...` command names (its words that are neither VAR=value nor -options)."""
    words = command.split()
    assert words[0] == "make", command
    return [w for w in words[1:] if "=" not in w and not w.startswith("-")]


def make_help() -> str:
    return subprocess.run(
        ["make", "--no-print-directory", "help"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout


def make_commands(text: str) -> list[str]:
    """Every `make ...` command in ``text``: "make" and the words after it, one space apart (two
    spaces end it, as in the help's columns)."""
    return re.findall(r"(?<![\w/.-])make(?: [\w.=/+-]+)+", text)


def test_the_targets_are_read_from_the_makefile():
    targets = makefile_targets()
    assert {"help", "local", "synth", "test", "bench", "clean"} <= targets
    assert not {t for t in targets if t.startswith((".", "$"))}
    phony = set(re.search(r"^\.PHONY:(.*)$", MAKEFILE, flags=re.M).group(1).split())
    assert targets == phony  # every target is a command, none a file


# --- make help ---------------------------------------------------------------------------------------


def test_make_help_lists_every_target():
    listed = {target for command in make_commands(make_help()) for target in make_targets_named(command)}
    assert sorted(makefile_targets() - listed) == []


def test_make_help_names_only_real_targets():
    listed = {target for command in make_commands(make_help()) for target in make_targets_named(command)}
    assert sorted(listed - makefile_targets()) == []


def test_make_help_shows_commands_that_run_as_written():
    help_text = make_help()
    assert not BRACKETED_OPTIONAL.findall(help_text), help_text
    assert "=..." not in help_text, help_text  # an account of "..." is refused


# --- the README --------------------------------------------------------------------------------------


def test_every_make_command_in_the_readme_names_a_real_target():
    commands = [c for c in shell_commands(README) if c.startswith("make ")]
    commands += [span for span in code_spans(README) if span.startswith("make ")]
    assert len(commands) > 10
    unknown = {c: t for c in commands for t in make_targets_named(c) if t not in makefile_targets()}
    assert unknown == {}


def test_readme_commands_have_no_bracketed_optional_parts():
    commands = shell_commands(README) + code_spans(README)
    assert [c for c in commands if BRACKETED_OPTIONAL.search(c)] == []


def test_the_readme_shows_the_optional_arguments_as_commands_of_their_own():
    commands = shell_commands(README)
    assert any(c.startswith(".venv/bin/python etl/prepare.py") and "--seed 7" in c for c in commands)
    assert any(
        c.startswith(".venv/bin/python training_jobs/run_local.py") and "--hyperparameters" in c for c in commands
    )


# Paths the README names that are not files of the checkout, each for its reason.
NOT_IN_THE_CHECKOUT = {
    # what the tools generate: make's set-up, make synth, make local
    ".venv/",
    "cdk.out/",
    "cdk.out/*-NagReport.json",
    "manifest.json",  # a cloud assembly's
    ".local/cdk.out",
    ".local/trace.json",
    ".local/report.json",
    # prefixes of the data bucket, not folders of the repository
    "raw/",
    "raw/bank-marketing/",
    "prepared/",
    "batch-input/",
    "batch-output/",
    "capture/",
    "ground-truth/",
    "sandbox/",
    "training/",
    # what etl/prepare.py and run_local.py write into a prepared run and a model
    "train/",
    "validation/",
    "test/",
    "baseline/",
    "schema.json",
    "report.json",
    "evaluation.json",
    "model-info.json",
    "model.tar.gz",
    "code/",
    "/tmp/car",  # what the README's preparation command writes
    "/tmp/car-model/model/",
    "/tmp/starter-run.ipynb",  # the executed notebook
    # the SageMaker Python SDK's defaults files in a JupyterLab app and on a notebook instance
    "~/.config/sagemaker/config.yaml",
    "/etc/xdg/sagemaker/config.yaml",
    # named as absent: constructs/ has no __init__.py, on purpose
    "__init__.py",
    # names with a "/" that are not paths: an npm package, a media type
    "@cloud-copilot/iam-simulate",
    "text/csv",
    "application/json",
    "text/*",
    "*/*",
}
FILE_SUFFIXES = (".py", ".json", ".toml", ".md", ".ipynb", ".svg", ".txt", ".csv", ".dat", ".data", ".gz")
SKIPPED_FOLDERS = {".git", ".venv", "node_modules", "cdk.out", ".local", ".permissions", ".make", "__pycache__"}


def named_paths(text: str) -> list[str]:
    """The code spans that name a file or folder: one word with a "/" or a file suffix, not a URI,
    an ARN-like name (":"), a pattern with <placeholders> or an option."""
    return [
        span
        for span in code_spans(text)
        if not re.search(r"[\s<>:{}()\"',]", span)
        and not span.startswith("-")
        and ("/" in span or span.endswith(FILE_SUFFIXES))
    ]


def file_names() -> set[str]:
    """The names of the checkout's files and of the shared data's beside it."""
    names = set()
    for top in (ROOT, SHARED_DATA):
        for _, subfolders, files in os.walk(top):
            subfolders[:] = [s for s in subfolders if s not in SKIPPED_FOLDERS]
            names.update(files)
    return names


def test_paths_are_read_from_the_readme():
    paths = named_paths(README)
    assert {"stacks/data.py", "notebooks/starter.ipynb", "../shared/data/", "raw/", "dev.toml"} <= set(paths)
    assert not {p for p in paths if p.startswith(("s3:", "make", "-c"))}


def test_every_path_the_readme_names_exists():
    names = file_names()
    missing = []
    for path in named_paths(README):
        if path in NOT_IN_THE_CHECKOUT:
            continue
        # a bare file name (`inference.py`, `dev.toml`, `column_3C.dat`) is a file somewhere
        found = (ROOT / path).exists() or ("/" not in path and path in names)
        if not found:
            missing.append(path)
    assert missing == []


def test_every_relative_link_of_the_readme_exists():
    links = re.findall(r"\]\(([^)#\s]+)", README)
    assert "docs/architecture.svg" in links
    assert [link for link in links if "://" not in link and not (ROOT / link).exists()] == []


def test_the_exceptions_are_still_named_by_the_readme():
    assert sorted(NOT_IN_THE_CHECKOUT - set(named_paths(README))) == []


def vertebral_labels(file: str) -> set[str]:
    with (SHARED_DATA / "vertebral-column" / file).open(newline="", encoding="utf-8") as handle:
        return {row[-1].strip().lower() for row in csv.reader(handle, delimiter=" ") if row}


def test_the_vertebral_spec_fits_column_2c_and_the_readme_says_so():
    import prepare
    from dataset_spec import SpecError

    from tests.conftest import load_dataset_spec

    spec = load_dataset_spec("vertebral-column")
    assert prepare.target_classes(spec, vertebral_labels("column_2C.dat")) == ["no", "ab"]
    with pytest.raises(SpecError, match="positive 'ab'"):
        prepare.target_classes(spec, vertebral_labels("column_3C.dat"))  # DH, SL, NO
    assert "`../shared/data/vertebral-column/column_2C.dat`" in README
    assert "`column_3C.dat`" in README


# --- the benchmarks ----------------------------------------------------------------------------------


@pytest.fixture
def bench():
    """bench/<name>.py imported with its sibling common.py, bench/ last on the path: first, its
    local.py would shadow the project's `local` package for everything the test imports."""
    sys.path.append(str(BENCH))
    loaded = []

    def load(name: str):
        for module in ("common", name):
            sys.modules.pop(module, None)
            loaded.append(module)
        return importlib.import_module(name)

    yield load
    sys.path.remove(str(BENCH))
    for module in loaded:
        sys.modules.pop(module, None)


def test_bench_docstrings_show_commands_that_run_as_written():
    for script in sorted(BENCH.glob("*.py")):
        source = script.read_text(encoding="utf-8")
        usage = [line.strip() for line in source.splitlines() if line.strip().startswith("python bench/")]
        for line in usage:
            assert not BRACKETED_OPTIONAL.search(line), f"{script.name}: {line}"
            for option in re.findall(r"\s(--[a-z-]+)", line):
                assert f'"{option}"' in source, f"{script.name}: {line} names {option}, which it does not take"


def test_a_failing_bench_step_shows_its_own_error(bench):
    common = bench("common")
    failing = [sys.executable, "-c", "import sys; print('noise'); sys.exit('the real error: no such file')"]
    with pytest.raises(SystemExit) as failed:
        common.run(failing)
    assert failed.value.code != 0
    assert "the real error: no such file" in str(failed.value)
    assert "exited with status 1" in str(failed.value)


def test_bench_handlers_gives_every_function_the_variables_its_stack_sets(bench, monkeypatch):
    from tests.functions import ENVIRONMENTS

    handlers = bench("handlers")
    folders = sorted(p for p in (ROOT / "lambda").iterdir() if (p / "handler.py").exists())
    assert [f.name for f in folders] == sorted(ENVIRONMENTS)
    for folder in folders:
        variables = handlers.environment(folder.name)
        assert ENVIRONMENTS[folder.name].items() <= variables.items()
        # imported here, with exactly the environment the benchmark gives its child (fast: the
        # libraries are loaded once); the next test imports one in a child as the benchmark does
        child = handlers.child_environment(folder, variables)
        for name in set(os.environ) - set(child):
            monkeypatch.delenv(name)
        for name, value in child.items():
            monkeypatch.setenv(name, value)
        # a session an earlier test made would keep its own region and credentials
        monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
        module_spec = importlib.util.spec_from_file_location(f"bench_{folder.name}", folder / "handler.py")
        module = importlib.util.module_from_spec(module_spec)
        monkeypatch.setitem(sys.modules, module_spec.name, module)
        module_spec.loader.exec_module(module)
        monkeypatch.undo()


def test_bench_handlers_measures_an_import_in_a_fresh_interpreter(bench):
    handlers = bench("handlers")
    folder = ROOT / "lambda" / "deploy_model"  # the function make bench failed on
    assert 0 < handlers.import_ms(folder, handlers.environment("deploy_model")) < 60_000


def test_bench_handlers_shows_a_handler_import_error(bench):
    handlers = bench("handlers")
    variables = handlers.environment("deploy_model")
    del variables["STACK_NAME"]
    with pytest.raises(SystemExit, match="deploy_model needs the environment variable STACK_NAME"):
        handlers.import_ms(ROOT / "lambda" / "deploy_model", variables)


def test_bench_handlers_does_not_read_the_callers_aws_settings(bench, monkeypatch):
    handlers = bench("handlers")
    monkeypatch.setenv("AWS_PROFILE", "someone-real")
    assert "AWS_PROFILE" not in handlers.child_environment(ROOT / "lambda" / "start_etl", {})


def test_make_bench_passes_the_stage_and_account_to_the_synth_benchmark():
    dry_run = subprocess.run(
        ["make", "--no-print-directory", "-n", "bench", "STAGE=prod", "ACCOUNT=123456789012"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    synth = [line for line in dry_run.splitlines() if "bench/synth.py" in line]
    assert synth == ["python bench/synth.py --stage prod --account 123456789012 --runs 3"]
