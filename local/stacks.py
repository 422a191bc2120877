"""The twin's CloudFormation: stacks deployed from the resolved templates, and the updates that
``deploy_model`` asks for.

moto's CloudFormation cannot deploy these templates (``Fn::GetStackOutput``, Glue and SageMaker
types it lacks), so the twin deploys them itself, resource by resource in dependency order,
with the adapters of ``local.provision``. ``DescribeStacks`` and ``UpdateStack`` calls for these
stacks are answered here, with the behaviour and error codes of CloudFormation's API reference
(https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_UpdateStack.html):
a busy stack, a missing capability, a parameter that fails its ``AllowedPattern``, a
``UsePreviousValue`` without a previous value and "No updates are to be performed." are
``ValidationError`` or ``InsufficientCapabilitiesException`` as CloudFormation answers them.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
import uuid
from collections import ChainMap
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from local.assembly import StackArtifact
from local.provision import (
    ADAPTERS,
    DELETERS,
    NOT_NEEDED,
    UPDATED_IN_PLACE,
    UPDATERS,
    Deployment,
    ProvisionError,
    declare,
)
from local.resolve import Environment, Physical, Resolver, references
from local.trace import PRINCIPAL, acting_as

if TYPE_CHECKING:
    from local.platform import Twin

SSM_PARAMETER_TYPE = re.compile(r"^AWS::SSM::Parameter::Value<(.+)>$")
IAM_TYPES = ("AWS::IAM::Role", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::User", "AWS::IAM::Group")


class StackError(RuntimeError):
    """CloudFormation refused a request: ``code`` is its error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Stack:
    artifact: StackArtifact
    stack_id: str
    status: str = "CREATE_IN_PROGRESS"
    parameters: dict[str, str] = field(default_factory=dict)  # as given (before SSM resolution)
    physical: dict[str, Physical] = field(default_factory=dict)
    # Resources of NOT_NEEDED types: never created, but named and resolved, so that what refers
    # to them resolves and the permission proof can derive what AWS would do with them.
    declared: dict[str, Physical] = field(default_factory=dict)
    applied: dict[str, dict[str, Any]] = field(default_factory=dict)  # logical id -> resolved properties
    outputs: dict[str, Any] = field(default_factory=dict)
    created: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    generation: int = 0

    @property
    def name(self) -> str:
        return self.artifact.name

    @property
    def template(self) -> dict[str, Any]:
        return self.artifact.template


class CloudFormation:
    def __init__(self, twin: Twin) -> None:
        self.twin = twin
        self.stacks: dict[str, Stack] = {}

    # --- deploying ---

    def deploy(self, artifact: StackArtifact) -> Stack:
        stack_id = f"arn:aws:cloudformation:{self.twin.region}:{self.twin.account}:stack/{artifact.name}/{uuid.uuid4()}"
        stack = Stack(artifact, stack_id)
        stack.parameters = {
            name: str(spec["Default"])
            for name, spec in artifact.template.get("Parameters", {}).items()
            if "Default" in spec
        }
        self.stacks[artifact.name] = stack
        self._apply(stack)
        stack.status = "CREATE_COMPLETE"
        self.twin.trace.add("stack", stack=stack.name, status=stack.status, resources=len(stack.physical))
        return stack

    def _environment(self, stack: Stack) -> Environment:
        return Environment(
            stack_name=stack.name,
            stack_id=stack.stack_id,
            account=self.twin.account,
            region=self.twin.region,
            parameters=self._parameter_values(stack),
            availability_zones=self.twin.availability_zones,
            stack_outputs=lambda name: self._stack(name).outputs,
            exports={
                output["Export"]["Name"]: value
                for other in self.stacks.values()
                for key, value in other.outputs.items()
                if (output := other.template.get("Outputs", {}).get(key, {})).get("Export")
            },
        )

    def _parameter_values(self, stack: Stack) -> dict[str, Any]:
        values = {}
        for name, value in stack.parameters.items():
            kind = stack.template["Parameters"][name].get("Type", "String")
            match = SSM_PARAMETER_TYPE.match(kind)
            if match:  # CloudFormation reads the SSM parameter the value names, with GetParameters
                # https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/cloudformation-supplied-parameter-types.html
                value = self.twin.client("ssm").get_parameters(Names=[value])["Parameters"][0]["Value"]
            values[name] = value
        return values

    def _apply(self, stack: Stack) -> None:
        """Bring the stack's resources to its template under its current parameters."""
        resolver = Resolver(stack.template, self._environment(stack), ChainMap(stack.physical, stack.declared))
        resolver.check_rules()
        deployment = Deployment(self.twin, stack.name, stack.generation)
        resources = stack.template.get("Resources", {})
        replaced: list[tuple[str, dict[str, Any], Physical]] = []
        for logical_id in _ordered(resources):
            resource = resources[logical_id]
            kind = resource["Type"]
            if not resolver.included(logical_id):
                if logical_id in stack.physical:
                    self._delete(deployment, stack, logical_id)
                continue
            if kind in NOT_NEEDED:
                if logical_id not in stack.applied:
                    properties = resolver.resolve(resource.get("Properties", {}), logical_id) or {}
                    stack.applied[logical_id] = properties
                    stack.declared[logical_id] = declare(deployment, kind, logical_id, properties)
                    self.twin.trace.add(
                        "not-provisioned", stack=stack.name, resource=logical_id, type=kind, reason=NOT_NEEDED[kind]
                    )
                continue
            if kind not in ADAPTERS:
                raise ProvisionError(
                    f"stack {stack.name}, {logical_id}: the twin has no adapter for {kind} "
                    "(add one to local/provision.py, or list the type in NOT_NEEDED with the reason)"
                )
            properties = resolver.resolve(resource.get("Properties", {}), logical_id) or {}
            previous = stack.applied.get(logical_id)
            if previous == properties and logical_id in stack.physical:
                continue
            handler = (
                "create" if logical_id not in stack.physical else "update" if kind in UPDATED_IN_PLACE else "create"
            )
            with acting_as("cloudformation.amazonaws.com"):
                if logical_id not in stack.physical:
                    stack.physical[logical_id] = ADAPTERS[kind](deployment, logical_id, copy.deepcopy(properties))
                elif kind in UPDATED_IN_PLACE:
                    old = stack.physical[logical_id]
                    stack.physical[logical_id] = UPDATERS[kind](deployment, logical_id, copy.deepcopy(properties), old)
                else:  # replacement: the new resource first, the old one deleted at the end (cleanup)
                    replaced.append((logical_id, previous or {}, stack.physical[logical_id]))
                    deployment.generation = stack.generation = stack.generation + 1
                    stack.physical[logical_id] = ADAPTERS[kind](deployment, logical_id, copy.deepcopy(properties))
            stack.applied[logical_id] = properties
            self._handled(stack, logical_id, handler, properties)
        with acting_as("cloudformation.amazonaws.com"):
            for action in deployment.deferred:
                action()
            for logical_id, properties, old in replaced:
                kind = resources[logical_id]["Type"]
                if kind in DELETERS:
                    DELETERS[kind](deployment, properties, old)
        for logical_id, properties, old in replaced:
            self._handled(stack, logical_id, "delete", properties, old)
        stack.outputs = {
            name: resolver.resolve(output["Value"], f"Outputs/{name}")
            for name, output in stack.template.get("Outputs", {}).items()
            if resolver.included(name)
        }

    def _delete(self, deployment: Deployment, stack: Stack, logical_id: str) -> None:
        kind = stack.template["Resources"][logical_id]["Type"]
        old = stack.physical.pop(logical_id)
        properties = stack.applied.pop(logical_id, {})
        if kind in DELETERS:
            with acting_as("cloudformation.amazonaws.com"):
                DELETERS[kind](deployment, properties, old)
        self._handled(stack, logical_id, "delete", properties, old)

    def _handled(
        self, stack: Stack, logical_id: str, handler: str, properties: dict[str, Any], physical: Physical | None = None
    ) -> None:
        """Which resource handler CloudFormation ran, as whom: the permission proof derives its requests."""
        physical = physical or stack.physical[logical_id]
        self.twin.trace.add(
            "handler",
            stack=stack.name,
            resource=logical_id,
            type=stack.template["Resources"][logical_id]["Type"],
            handler=handler,
            principal=PRINCIPAL.get(),
            properties=properties,
            ref=physical.ref,
            attributes=physical.attributes,
        )

    def _stack(self, name: str) -> Stack:
        for stack in self.stacks.values():
            if name in (stack.name, stack.stack_id):
                return stack
        raise StackError("ValidationError", f"Stack with id {name} does not exist")

    # --- the API the platform's functions call ---

    def describe_stacks(self, params: Mapping[str, Any]) -> dict[str, Any]:
        stacks = [self._stack(params["StackName"])] if params.get("StackName") else list(self.stacks.values())
        return {"Stacks": [self._description(stack) for stack in stacks]}

    def _description(self, stack: Stack) -> dict[str, Any]:
        return {
            "StackId": stack.stack_id,
            "StackName": stack.name,
            "Description": stack.template.get("Description", ""),
            "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in stack.parameters.items()],
            "CreationTime": stack.created,
            "StackStatus": stack.status,
            "Outputs": [{"OutputKey": k, "OutputValue": str(v)} for k, v in stack.outputs.items()],
        }

    def update_stack(self, params: Mapping[str, Any], role_of_caller: str) -> dict[str, Any]:
        """Validate an UpdateStack request as CloudFormation does and queue the update."""
        stack = self._stack(params["StackName"])
        if stack.status.endswith("_IN_PROGRESS"):
            raise StackError(
                "ValidationError", f"Stack:{stack.stack_id} is in {stack.status} state and can not be updated."
            )
        if not params.get("UsePreviousTemplate") or "TemplateBody" in params or "TemplateURL" in params:
            raise StackError("ValidationError", "the twin updates stacks with UsePreviousTemplate only")
        declared = stack.template.get("Parameters", {})
        values: dict[str, str] = {}
        for parameter in params.get("Parameters", []):
            key = parameter["ParameterKey"]
            if key not in declared:
                raise StackError("ValidationError", f"Parameters: [{key}] do not exist in the template")
            if parameter.get("UsePreviousValue"):
                if key not in stack.parameters:
                    raise StackError(
                        "ValidationError",
                        f"Invalid input for parameter key {key}. Cannot specify usePreviousValue as true "
                        "for a parameter key not in the previous template",
                    )
                values[key] = stack.parameters[key]
            else:
                values[key] = str(parameter.get("ParameterValue", ""))
        for key, spec in declared.items():
            if key not in values:
                if "Default" not in spec:
                    raise StackError("ValidationError", f"Parameters: [{key}] must have values")
                values[key] = str(spec["Default"])
            pattern = spec.get("AllowedPattern")
            if pattern and not re.fullmatch(pattern, values[key]):
                raise StackError(
                    "ValidationError",
                    f"Parameter '{key}' must match pattern {pattern}",
                )
        creates_iam = any(r["Type"] in IAM_TYPES for r in stack.template.get("Resources", {}).values())
        if creates_iam and not {"CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"} & set(params.get("Capabilities", [])):
            raise StackError("InsufficientCapabilitiesException", "Requires capabilities : [CAPABILITY_IAM]")
        if values == stack.parameters:
            raise StackError("ValidationError", "No updates are to be performed.")
        role = params.get("RoleARN")
        if role:
            self.twin.check_role_trusts(role, "cloudformation.amazonaws.com")
        stack.status = "UPDATE_IN_PROGRESS"
        self.twin.trace.add(
            "stack", stack=stack.name, status=stack.status, parameters=values, role=role, caller=role_of_caller
        )
        self.twin.schedule(f"update {stack.name}", lambda: self._run_update(stack, values, role))
        return {"StackId": stack.stack_id}

    def _run_update(self, stack: Stack, values: dict[str, str], role: str | None) -> None:
        previous = dict(stack.parameters)
        stack.parameters = values
        try:
            with acting_as(role or "cloudformation.amazonaws.com"):
                self._apply(stack)
        except Exception as error:
            stack.parameters = previous
            stack.status = "UPDATE_ROLLBACK_COMPLETE"
            self.twin.trace.add(
                "stack", stack=stack.name, status=stack.status, error=f"{type(error).__name__}: {error}"
            )
            return
        stack.status = "UPDATE_COMPLETE"
        self.twin.trace.add("stack", stack=stack.name, status=stack.status, parameters=values)


def _ordered(resources: Mapping[str, Any]) -> list[str]:
    """Logical ids with every resource after those it refers to or depends on."""
    ordered: list[str] = []
    state: dict[str, int] = {}

    def visit(logical_id: str) -> None:
        if state.get(logical_id) == 2:
            return
        if state.get(logical_id) == 1:
            raise ProvisionError(f"resources refer to each other in a cycle through {logical_id}")
        state[logical_id] = 1
        resource = resources[logical_id]
        depends = resource.get("DependsOn", [])
        for other in [
            *([depends] if isinstance(depends, str) else depends),
            *references(resource.get("Properties", {})),
        ]:
            if other in resources and other != logical_id:
                visit(other)
        state[logical_id] = 2
        ordered.append(logical_id)

    for logical_id in resources:
        visit(logical_id)
    return ordered
