"""The AWS error codes the Lambda handlers branch on are codes AWS defines: botocore's model of
the service knows each one, or AWS's documentation does (a short list below, with the page).
The handlers decide by these codes only, held in named constants, never by an error's wording.

Handlers are read as source (ast), not imported: this needs no environment and no AWS.
"""

from __future__ import annotations

import ast
from functools import cache

import botocore.session
import pytest

from tests.conftest import ROOT

LAMBDA = ROOT / "lambda"
RUNTIME_LIBRARY = ROOT / "etl" / "platform_runtime.py"

# Every code a handler branches on, by the operation that answers it: (handler, service, operation, code).
BRANCHED_ON = [
    ("deploy_model", "cloudformation", "UpdateStack", "ValidationError"),
    # the claim of a preparation run (start_etl and check_drift start runs through the library)
    ("platform_runtime", "s3", "PutObject", "PreconditionFailed"),
    ("platform_runtime", "s3", "PutObject", "ConditionalRequestConflict"),
    ("platform_runtime", "s3", "GetObject", "NoSuchKey"),
    *(
        # the functions' runtime library decides for start_training and start_batch_transform
        ("platform_runtime", "sagemaker", operation, code)
        for operation, codes in {
            "DescribeTrainingJob": ("ResourceNotFound", "ValidationException"),
            "DescribeHyperParameterTuningJob": ("ResourceNotFound", "ValidationException"),
            "CreateTrainingJob": ("ResourceInUse", "ValidationException"),
            "CreateHyperParameterTuningJob": ("ResourceInUse", "ValidationException"),
            "DescribeTransformJob": ("ResourceNotFound", "ValidationException"),
            "CreateTransformJob": ("ResourceInUse", "ValidationException"),
            "CreateModel": ("ResourceInUse", "ValidationException"),
        }.items()
        for code in codes
    ),
]
# The module constants each handler holds those codes in.
CONSTANTS = {
    "deploy_model": ("UPDATE_REFUSED",),
    "platform_runtime": ("NOT_FOUND", "NAME_TAKEN", "CLAIM_TAKEN", "CLAIM_CONFLICT", "NO_SUCH_KEY"),
}
# Codes AWS documents that botocore's models do not list.
DOCUMENTED = {
    # the errors common to every SageMaker action
    ("sagemaker", "ValidationException"): "https://docs.aws.amazon.com/sagemaker/latest/APIReference/CommonErrors.html",
    # the errors common to every CloudFormation action (a query API: ValidationError, not ...Exception)
    ("cloudformation", "ValidationError"): (
        "https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/CommonErrors.html"
    ),
    # a PutObject with If-None-Match: * that does not write (412 and 409)
    ("s3", "PreconditionFailed"): "https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutObject.html",
    ("s3", "ConditionalRequestConflict"): "https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutObject.html",
}


@cache
def model(service: str):
    return botocore.session.get_session().get_service_model(service)


def modelled_codes(service: str, operation: str) -> set[str]:
    """The codes botocore's model gives an operation's errors and the service's: the shape's
    ``error.code`` where the model sets one (query protocols such as CloudFormation's), else its name."""
    service_model = model(service)
    shapes = [*service_model.operation_model(operation).error_shapes, *service_model.error_shapes]
    return {shape.metadata.get("error", {}).get("code", shape.name) for shape in shapes}


def source(handler: str) -> ast.Module:
    """A function's handler, or the runtime library all of them ship."""
    path = RUNTIME_LIBRARY if handler == "platform_runtime" else LAMBDA / handler / "handler.py"
    return ast.parse(path.read_text(encoding="utf-8"))


def constant_values(tree: ast.Module, names: tuple[str, ...]) -> dict[str, set[str]]:
    """The strings each named module-level constant holds (a string or a tuple of strings)."""
    found: dict[str, set[str]] = {}
    for node in tree.body:
        target = node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else None
        if isinstance(target, ast.Name) and target.id in names:
            literal = node.value
            if isinstance(literal, ast.Call) and getattr(literal.func, "id", "") == "frozenset":
                literal = literal.args[0]
            value = ast.literal_eval(literal)
            found[target.id] = {value} if isinstance(value, str) else set(value)
    return found


@pytest.mark.parametrize(("handler", "service", "operation", "code"), BRANCHED_ON)
def test_each_code_a_handler_branches_on_is_one_aws_defines(handler, service, operation, code):
    assert operation in model(service).operation_names, f"{service} has no operation {operation}"
    known = modelled_codes(service, operation)
    assert code in known or (service, code) in DOCUMENTED, (
        f"{handler} branches on {code} from {service}:{operation}, which botocore's model does not know "
        f"(it knows {sorted(known)}) and which is not in the documented list"
    )


@pytest.mark.parametrize("handler", sorted(CONSTANTS))
def test_the_handlers_constants_hold_exactly_the_codes_listed_here(handler):
    found = constant_values(source(handler), CONSTANTS[handler])
    assert set(found) == set(CONSTANTS[handler]), f"{handler} lacks {set(CONSTANTS[handler]) - set(found)}"
    assert set().union(*found.values()) == {code for h, _, _, code in BRANCHED_ON if h == handler}


HANDLERS = [*sorted(path.parent.name for path in LAMBDA.glob("*/handler.py")), "platform_runtime"]


@pytest.mark.parametrize("handler", HANDLERS)
def test_no_handler_reads_an_errors_message(handler):
    """An error's wording is the service's prose: ``["Error"]["Message"]`` is never read."""
    literals = {node.value for node in ast.walk(source(handler)) if isinstance(node, ast.Constant)}
    assert "Message" not in literals


@pytest.mark.parametrize("handler", HANDLERS)
def test_no_handler_compares_a_code_written_inline(handler):
    """Codes live in the named constants above (so this file sees them all), not as literals in
    the branches: no string outside those constants is an error code of the services called."""
    tree = source(handler)
    inside = {
        id(constant)
        for node in tree.body
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id in CONSTANTS.get(handler, ()) for t in node.targets)
        for constant in ast.walk(node.value)
    }
    codes = {code for _, code in DOCUMENTED}
    for service in ("sagemaker", "cloudformation", "s3", "glue", "sns"):  # the services the handlers call
        codes |= {shape.metadata.get("error", {}).get("code", shape.name) for shape in model(service).error_shapes}
    literals = {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in inside
    }
    assert not literals & codes
