"""CloudFormation's intrinsic functions, resolved to the twin's physical names and values.

Follows the template reference (https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/intrinsic-function-reference.html).
Every intrinsic the platform's templates use is handled; anything else is a ResolveError that
names the stack, the place in the template and the intrinsic, never a silent ``None``.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

NO_VALUE = object()  # AWS::NoValue: the property is removed
SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")
PSEUDO = ("AWS::AccountId", "AWS::Region", "AWS::Partition", "AWS::URLSuffix", "AWS::StackName", "AWS::StackId")
CONDITION_FUNCTIONS = ("Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or", "Fn::Contains", "Condition")


class ResolveError(RuntimeError):
    """An intrinsic the twin cannot resolve, with where it is."""

    def __init__(self, stack: str, where: str, message: str) -> None:
        super().__init__(f"stack {stack}, {where}: {message}")
        self.stack, self.where = stack, where


@dataclass
class Physical:
    """A provisioned resource: what ``Ref`` returns and its ``Fn::GetAtt`` attributes."""

    ref: str
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass
class Environment:
    """What a template resolves against (one stack of the emulated account)."""

    stack_name: str
    stack_id: str
    account: str
    region: str
    parameters: Mapping[str, Any]
    availability_zones: list[str]
    stack_outputs: Callable[[str], Mapping[str, Any]]  # Fn::GetStackOutput: a deployed stack's outputs
    exports: Mapping[str, Any]  # Fn::ImportValue
    partition: str = "aws"
    url_suffix: str = "amazonaws.com"


class Resolver:
    def __init__(self, template: Mapping[str, Any], env: Environment, physical: Mapping[str, Physical]) -> None:
        self.template = template
        self.env = env
        self.physical = physical  # logical id -> Physical, filled in as resources are provisioned
        self._conditions: dict[str, bool] = {}

    # --- public ---

    def resolve(self, node: Any, where: str) -> Any:
        value = self._value(node, where)
        return None if value is NO_VALUE else value

    def condition(self, name: str, where: str = "Conditions") -> bool:
        if name not in self._conditions:
            conditions = self.template.get("Conditions", {})
            if name not in conditions:
                raise self._error(where, f"condition {name!r} is not defined")
            self._conditions[name] = self._truth(conditions[name], f"Conditions/{name}")
        return self._conditions[name]

    def included(self, logical_id: str) -> bool:
        """Whether the resource (or output) exists under the current conditions."""
        resource = self.template.get("Resources", {}).get(logical_id) or self.template.get("Outputs", {}).get(
            logical_id, {}
        )
        name = resource.get("Condition")
        return True if name is None else self.condition(name, logical_id)

    def check_rules(self) -> None:
        """The template's Rules (CDK's CheckBootstrapVersion): an assertion that fails stops the deployment."""
        for name, rule in self.template.get("Rules", {}).items():
            where = f"Rules/{name}"
            if "RuleCondition" in rule and not self._truth(rule["RuleCondition"], where):
                continue
            for assertion in rule.get("Assertions", []):
                if not self._truth(assertion["Assert"], where):
                    raise self._error(where, assertion.get("AssertDescription", "a rule's assertion failed"))

    # --- evaluation ---

    def _error(self, where: str, message: str) -> ResolveError:
        return ResolveError(self.env.stack_name, where, message)

    def _value(self, node: Any, where: str) -> Any:
        if isinstance(node, list):
            return [v for v in (self._value(item, where) for item in node) if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, argument),) = node.items()
            if key == "Ref":
                return self._ref(argument, where)
            if key.startswith("Fn::"):
                return self._function(key, argument, where)
        resolved = {}
        for key, value in node.items():
            value = self._value(value, where)
            if value is not NO_VALUE:
                resolved[key] = value
        return resolved

    def _function(self, name: str, argument: Any, where: str) -> Any:
        if name == "Fn::GetAtt":
            logical_id, attribute = argument.split(".", 1) if isinstance(argument, str) else argument
            return self._attribute(logical_id, self._value(attribute, where), where)
        if name == "Fn::Join":
            separator, items = argument
            parts = self._value(items, where)
            return self._value(separator, where).join(self._text(part, name, where) for part in parts)
        if name == "Fn::Sub":
            return self._sub(argument, where)
        if name == "Fn::Select":
            index, items = self._value(argument, where)
            items = list(items)
            if not 0 <= int(index) < len(items):
                raise self._error(where, f"Fn::Select index {index} is outside a list of {len(items)}")
            return items[int(index)]
        if name == "Fn::Split":
            separator, text = self._value(argument, where)
            return text.split(separator)
        if name == "Fn::FindInMap":
            mapping, top, second = (self._value(a, where) for a in argument[:3])
            try:
                return self.template["Mappings"][mapping][top][second]
            except KeyError:
                raise self._error(where, f"Fn::FindInMap {mapping}/{top}/{second} is not in the template") from None
        if name == "Fn::If":
            condition, when_true, when_false = argument
            return self._value(when_true if self.condition(condition, where) else when_false, where)
        if name == "Fn::Base64":  # the UTF-8 text, base64-encoded
            return base64.b64encode(self._text(self._value(argument, where), name, where).encode()).decode()
        if name == "Fn::GetAZs":
            return list(self.env.availability_zones)
        if name == "Fn::ImportValue":
            export = self._value(argument, where)
            if export not in self.env.exports:
                raise self._error(where, f"Fn::ImportValue {export!r}: no stack exports it")
            return self.env.exports[export]
        if name == "Fn::GetStackOutput":
            return self._stack_output(self._value(argument, where), where)
        if name in CONDITION_FUNCTIONS:
            return self._truth({name: argument}, where)
        raise self._error(where, f"intrinsic {name} is not supported by the twin")

    def _ref(self, name: str, where: str) -> Any:
        env = self.env
        pseudo = {
            "AWS::AccountId": env.account,
            "AWS::Region": env.region,
            "AWS::Partition": env.partition,
            "AWS::URLSuffix": env.url_suffix,
            "AWS::StackName": env.stack_name,
            "AWS::StackId": env.stack_id,
        }
        if name in pseudo:
            return pseudo[name]
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.template.get("Parameters", {}):
            if name not in env.parameters:
                raise self._error(where, f"Ref {name}: the parameter has no value")
            return env.parameters[name]
        if name in self.template.get("Resources", {}):
            return self._provisioned(name, "Ref", where).ref
        raise self._error(where, f"Ref {name}: no parameter, resource or pseudo parameter of that name")

    def _attribute(self, logical_id: str, attribute: str, where: str) -> Any:
        if logical_id not in self.template.get("Resources", {}):
            raise self._error(where, f"Fn::GetAtt {logical_id}.{attribute}: no such resource")
        physical = self._provisioned(logical_id, "Fn::GetAtt", where)
        if attribute not in physical.attributes:
            known = ", ".join(sorted(physical.attributes)) or "none"
            raise self._error(
                where, f"Fn::GetAtt {logical_id}.{attribute}: the twin does not know this attribute (known: {known})"
            )
        return physical.attributes[attribute]

    def _provisioned(self, logical_id: str, intrinsic: str, where: str) -> Physical:
        if logical_id not in self.physical:
            resource_type = self.template["Resources"][logical_id]["Type"]
            raise self._error(where, f"{intrinsic} {logical_id} ({resource_type}): the resource is not provisioned")
        return self.physical[logical_id]

    def _stack_output(self, argument: Mapping[str, Any], where: str) -> Any:
        stack, output = argument["StackName"], argument["OutputName"]
        if argument.get("Region", self.env.region) != self.env.region:
            raise self._error(where, f"Fn::GetStackOutput from region {argument['Region']}: the twin has one region")
        outputs = self.env.stack_outputs(stack)
        if output not in outputs:
            raise self._error(where, f"Fn::GetStackOutput {stack}.{output}: the stack has no such output")
        return outputs[output]

    def _sub(self, argument: Any, where: str) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else argument
        values = {name: self._value(value, where) for name, value in variables.items()}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):  # ${!Literal} is written as ${Literal}
                return "${" + name[1:] + "}"
            if name in values:
                return self._text(values[name], "Fn::Sub", where)
            if name in PSEUDO or name in self.template.get("Parameters", {}):
                return self._text(self._ref(name, where), "Fn::Sub", where)
            if "." in name:
                logical_id, attribute = name.split(".", 1)
                return self._text(self._attribute(logical_id, attribute, where), "Fn::Sub", where)
            return self._text(self._ref(name, where), "Fn::Sub", where)

        return SUB_VARIABLE.sub(replace, text)

    def _text(self, value: Any, intrinsic: str, where: str) -> str:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self._error(where, f"{intrinsic}: {value!r} is not a string")
        return str(value)

    def _truth(self, node: Any, where: str) -> bool:
        if isinstance(node, bool):
            return node
        if not isinstance(node, dict) or len(node) != 1:
            raise self._error(where, f"{node!r} is not a condition")
        ((name, argument),) = node.items()
        if name == "Condition":
            return self.condition(argument, where)
        if name == "Fn::Equals":
            left, right = (self._value(a, where) for a in argument)
            return str(left) == str(right)
        if name == "Fn::Not":
            return not self._truth(argument[0], where)
        if name == "Fn::And":
            return all(self._truth(a, where) for a in argument)
        if name == "Fn::Or":
            return any(self._truth(a, where) for a in argument)
        if name == "Fn::Contains":  # Rules only: a value in a list
            items, value = (self._value(a, where) for a in argument)
            return str(value) in [str(item) for item in items]
        raise self._error(where, f"{name} is not a condition function")


def references(node: Any) -> Iterator[str]:
    """Logical ids that ``node`` refers to (Ref, Fn::GetAtt, Fn::Sub), for ordering resources."""
    if isinstance(node, list):
        for item in node:
            yield from references(item)
    elif isinstance(node, dict) and len(node) != 1:  # an object of properties (one named Ref included)
        for value in node.values():
            yield from references(value)
    elif isinstance(node, dict):  # an intrinsic, as _value reads one: its only key
        ((key, value),) = node.items()
        if key == "Ref" and isinstance(value, str) and not value.startswith("AWS::"):
            yield value
        elif key == "Fn::GetAtt":
            yield value.split(".", 1)[0] if isinstance(value, str) else value[0]
        elif key == "Fn::Sub":
            text, variables = (value, {}) if isinstance(value, str) else value
            for name in SUB_VARIABLE.findall(text):
                if not name.startswith(("!", "AWS::")) and name not in variables:
                    yield name.split(".", 1)[0]
            yield from references(variables)
        else:
            yield from references(value)
