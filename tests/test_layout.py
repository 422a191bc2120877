"""The repository layout the design card asks for, and the import rules it relies on."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNTIME_FOLDERS = ("lambda", "training_jobs", "etl")


def test_constructs_folder_has_no_init_so_the_library_keeps_its_package():
    assert (ROOT / "constructs").is_dir()
    assert not (ROOT / "constructs" / "__init__.py").exists()


def test_project_constructs_and_the_constructs_library_both_import():
    # A fresh interpreter, so nothing imported by the test session can hide a failure.
    code = (
        "import aws_cdk, constructs\n"
        "from constructs import Construct\n"
        "from constructs.secure_bucket import SecureBucket\n"
        "from constructs.encrypted_log_group import EncryptedLogGroup\n"
        "assert issubclass(SecureBucket, Construct) and issubclass(EncryptedLogGroup, Construct)\n"
        "assert 'site-packages' in constructs.__file__, constructs.__file__\n"
        "app = aws_cdk.App(); stack = aws_cdk.Stack(app, 'S')\n"
        "SecureBucket(stack, 'B', encryption_key=None, access_logs_bucket=None, retain=True,\n"
        "             noncurrent_version_expiration=aws_cdk.Duration.days(1),\n"
        "             abort_incomplete_multipart_upload_after=aws_cdk.Duration.days(1))\n"
        "print(len(app.synth().stacks))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "1"


def test_no_project_module_shadows_a_module_of_the_constructs_library():
    library = Path(__import__("constructs").__file__).parent
    ours = {path.stem for path in (ROOT / "constructs").glob("*.py")}
    theirs = {path.stem for path in library.iterdir()} | {"__init__"}
    assert ours and not ours & theirs


def test_runtime_code_never_imports_aws_cdk():
    offenders = []
    for folder in RUNTIME_FOLDERS:
        for path in (ROOT / folder).rglob("*.py") if (ROOT / folder).exists() else []:
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module]
                offenders += [
                    f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] in ("aws_cdk", "cdk_nag")
                ]
    assert offenders == []


def test_cdk_cli_is_pinned_to_a_2x_release_that_reads_current_assemblies():
    lock = json.loads((ROOT / "package-lock.json").read_text())
    version = lock["packages"]["node_modules/aws-cdk"]["version"]
    major, minor, _ = (int(part) for part in version.split("."))
    assert major == 2 and minor >= 1148, version
    assert json.loads((ROOT / "package.json").read_text())["devDependencies"]["aws-cdk"] == version


def test_cdk_json_runs_the_app_quietly_and_offline():
    cdk_json = json.loads((ROOT / "cdk.json").read_text())
    assert cdk_json["notices"] is False
    assert cdk_json["context"]["cli-telemetry"] is False
    assert "app.py" in cdk_json["app"]


def test_ci_runs_the_readme_test_command():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make synth" in readme and "make test" in readme


def test_license_is_apache_2():
    assert "Apache License" in (ROOT / "LICENSE").read_text() and "Version 2.0" in (ROOT / "LICENSE").read_text()
