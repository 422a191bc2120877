"""The twin's template resolver on every intrinsic the templates use, and the resource types:
each one in the synthesized templates is provisioned by an adapter or listed as not needed."""

from __future__ import annotations

import json
from typing import Any

import pytest

from local.provision import ADAPTERS, NOT_NEEDED
from local.resolve import Environment, Physical, ResolveError, Resolver, references

TEMPLATE: dict[str, Any] = {
    "Parameters": {
        "Package": {"Type": "String", "Default": ""},
        "Version": {"Type": "AWS::SSM::Parameter::Value<String>", "Default": "/cdk-bootstrap/x/version"},
        "ALabel": {"Type": "String", "Default": ""},  # a name that sorts before AWS::NoValue
    },
    "Mappings": {"Images": {"eu-west-1": {"Xgboost": "xgb-eu"}}},
    "Conditions": {"HasModel": {"Fn::Not": [{"Fn::Equals": [{"Ref": "Package"}, ""]}]}},
    "Rules": {
        "CheckBootstrapVersion": {
            "Assertions": [
                {
                    "Assert": {"Fn::Not": [{"Fn::Contains": [["1", "2", "3", "4", "5"], {"Ref": "Version"}]}]},
                    "AssertDescription": "CDK bootstrap stack version 6 required.",
                }
            ]
        }
    },
    "Resources": {
        "Bucket": {"Type": "AWS::S3::Bucket"},
        "Role": {"Type": "AWS::IAM::Role"},
        "Model": {"Type": "AWS::SageMaker::Model", "Condition": "HasModel"},
    },
}


def resolver(
    parameters: dict[str, str] | None = None,
    physical: dict[str, Physical] | None = None,
    conditions: dict[str, Any] | None = None,
    rules: dict[str, Any] | None = None,
) -> Resolver:
    env = Environment(
        stack_name="Stack",
        stack_id="arn:aws:cloudformation:eu-west-1:123456789012:stack/Stack/1",
        account="123456789012",
        region="eu-west-1",
        parameters={"Package": "", "Version": "30", "ALabel": "label", **(parameters or {})},
        availability_zones=["eu-west-1a", "eu-west-1b"],
        stack_outputs=lambda name: {"DataKeyArn": "arn:aws:kms:eu-west-1:123456789012:key/k"} if name == "Data" else {},
        exports={"Shared": "exported"},
    )
    defaults = {"Bucket": Physical("my-bucket", {"Arn": "arn:aws:s3:::my-bucket"}), "Role": Physical("role")}
    template = {**TEMPLATE, "Conditions": {**TEMPLATE["Conditions"], **(conditions or {})}}
    if rules is not None:
        template["Rules"] = rules
    return Resolver(template, env, physical if physical is not None else defaults)


@pytest.mark.parametrize(
    ("node", "expected"),
    [
        ({"Ref": "AWS::AccountId"}, "123456789012"),
        ({"Ref": "AWS::Region"}, "eu-west-1"),
        ({"Ref": "AWS::Partition"}, "aws"),
        ({"Ref": "AWS::URLSuffix"}, "amazonaws.com"),
        ({"Ref": "AWS::StackName"}, "Stack"),
        ({"Ref": "Bucket"}, "my-bucket"),
        ({"Ref": "Version"}, "30"),
        ({"Ref": "ALabel"}, "label"),
        ({"Fn::GetAtt": ["Bucket", "Arn"]}, "arn:aws:s3:::my-bucket"),
        ({"Fn::GetAtt": "Bucket.Arn"}, "arn:aws:s3:::my-bucket"),
        ({"Fn::Join": ["/", [{"Ref": "Bucket"}, "raw", "x"]]}, "my-bucket/raw/x"),
        ({"Fn::Sub": "s3://${Bucket}/${AWS::Region}/${!Literal}"}, "s3://my-bucket/eu-west-1/${Literal}"),
        ({"Fn::Sub": "${Bucket.Arn}/*"}, "arn:aws:s3:::my-bucket/*"),
        ({"Fn::Sub": ["${Name}-x", {"Name": {"Ref": "Bucket"}}]}, "my-bucket-x"),
        ({"Fn::Select": [1, {"Fn::GetAZs": ""}]}, "eu-west-1b"),
        ({"Fn::FindInMap": ["Images", {"Ref": "AWS::Region"}, "Xgboost"]}, "xgb-eu"),
        ({"Fn::If": ["HasModel", "yes", "no"]}, "no"),
        ({"Fn::ImportValue": "Shared"}, "exported"),
        (
            {"Fn::GetStackOutput": {"StackName": "Data", "Region": {"Ref": "AWS::Region"}, "OutputName": "DataKeyArn"}},
            "arn:aws:kms:eu-west-1:123456789012:key/k",
        ),
        ({"Fn::Split": [",", "a,b"]}, ["a", "b"]),
        ({"Fn::Base64": {"Fn::Join": ["", ["bucket: ", {"Ref": "Bucket"}]]}}, "YnVja2V0OiBteS1idWNrZXQ="),
        ({"List": ["a", {"Ref": "AWS::NoValue"}, "b"]}, {"List": ["a", "b"]}),
        ({"Keep": "x", "Drop": {"Ref": "AWS::NoValue"}}, {"Keep": "x"}),
        ({"Value": {"Ref": "Bucket"}}, {"Value": "my-bucket"}),  # one key, not an intrinsic
        ({"Fn::Select": [0, ["a", "b"]]}, "a"),
    ],
)
def test_each_intrinsic_resolves_to_the_twins_values(node, expected):
    assert resolver().resolve(node, "Somewhere") == expected


def test_conditions_follow_the_parameters():
    assert resolver().included("Bucket") is True  # no condition: always there
    assert resolver().included("Model") is False
    assert resolver({"Package": "arn:aws:sagemaker:eu-west-1:123456789012:model-package/g/1"}).included("Model")


def test_the_bootstrap_version_rule_is_checked():
    resolver().check_rules()
    with pytest.raises(ResolveError, match="CDK bootstrap stack version 6 required"):
        resolver({"Version": "5"}).check_rules()


def failing(description: str) -> dict[str, Any]:
    return {"Assert": {"Fn::Equals": ["a", "b"]}, "AssertDescription": description}


def test_a_condition_with_a_function_cloudformation_has_not_is_an_error_naming_it():
    with pytest.raises(ResolveError, match="Bogus is not a condition function"):
        resolver(conditions={"Tested": {"Bogus": [True]}}).condition("Tested")


def test_a_rule_applies_only_where_its_rule_condition_holds():
    skipped = {"RuleCondition": {"Fn::Equals": [{"Ref": "Package"}, "set"]}, "Assertions": [failing("skipped")]}
    applies = {"RuleCondition": {"Fn::Equals": [{"Ref": "Package"}, ""]}, "Assertions": [failing("applies")]}
    plain = {"Assertions": [failing("plain")]}
    resolver(rules={"Skipped": skipped}).check_rules()
    with pytest.raises(ResolveError, match="Rules/Applies: applies"):
        resolver(rules={"Skipped": skipped, "Applies": applies}).check_rules()
    with pytest.raises(ResolveError, match="Rules/Plain: plain"):
        resolver(rules={"Skipped": skipped, "Plain": plain}).check_rules()


@pytest.mark.parametrize(
    ("node", "message"),
    [
        ({"Fn::Cidr": ["10.0.0.0/16", 2, 8]}, r"stack Stack, Somewhere: intrinsic Fn::Cidr is not supported"),
        (
            {"Fn::GetAtt": ["Bucket", "WebsiteURL"]},
            r"Fn::GetAtt Bucket.WebsiteURL: the twin does not know this attribute",
        ),
        ({"Ref": "Model"}, r"Ref Model \(AWS::SageMaker::Model\): the resource is not provisioned"),
        ({"Ref": "Nothing"}, r"Ref Nothing: no parameter, resource or pseudo parameter"),
        ({"Fn::ImportValue": "Missing"}, r"Fn::ImportValue 'Missing': no stack exports it"),
        ({"Fn::Select": [5, ["a"]]}, r"Fn::Select index 5 is outside a list of 1"),
        ({"Fn::Select": [1, ["a"]]}, r"Fn::Select index 1 is outside a list of 1"),
        (
            {"Fn::GetStackOutput": {"StackName": "Data", "Region": "us-east-1", "OutputName": "DataKeyArn"}},
            r"the twin has one region",
        ),
    ],
)
def test_what_cannot_be_resolved_is_an_error_naming_stack_place_and_intrinsic(node, message):
    with pytest.raises(ResolveError, match=message):
        resolver().resolve(node, "Somewhere")


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"Fn::Equals": ["a", "a"]}, True),
        ({"Fn::Equals": ["a", "b"]}, False),
        ({"Fn::Equals": ["b", "a"]}, False),
        ({"Fn::Equals": [{"Ref": "Version"}, "30"]}, True),
        ({"Fn::Equals": [30, "30"]}, True),  # CloudFormation compares the values as strings
        ({"Fn::And": [{"Fn::Equals": ["a", "a"]}, {"Fn::Equals": ["a", "b"]}]}, False),
        ({"Fn::And": [{"Fn::Equals": ["a", "a"]}, {"Condition": "HasModel"}]}, False),
        ({"Fn::And": [{"Fn::Equals": ["a", "a"]}, {"Fn::Not": [{"Condition": "HasModel"}]}]}, True),
        ({"Fn::Or": [{"Fn::Equals": ["a", "b"]}, {"Condition": "HasModel"}]}, False),
        ({"Fn::Or": [{"Fn::Equals": ["a", "b"]}, {"Fn::Equals": ["b", "b"]}]}, True),
    ],
)
def test_a_condition_is_decided_as_cloudformation_decides_it(condition, expected):
    assert resolver(conditions={"Tested": condition}).condition("Tested") is expected


def test_a_template_read_from_its_json_file_resolves_like_one_written_in_python():
    # The twin reads the cloud assembly's files: its keys are json's strings, not Python literals.
    node = json.loads(json.dumps({"Fn::Join": ["-", [{"Ref": "Bucket"}, {"Fn::GetAtt": ["Bucket", "Arn"]}]]}))
    assert resolver().resolve(node, "Somewhere") == "my-bucket-arn:aws:s3:::my-bucket"


def test_an_attribute_whose_name_has_a_dot_is_read_whole():
    endpoint = Physical("db", {"Endpoint.Address": "db.example", "Endpoint.Port": "5432"})
    twin = resolver(physical={"Bucket": endpoint})
    assert twin.resolve({"Fn::GetAtt": "Bucket.Endpoint.Address"}, "Somewhere") == "db.example"
    assert twin.resolve({"Fn::Sub": "${Bucket.Endpoint.Port}"}, "Somewhere") == "5432"


def test_an_unknown_attribute_of_a_resource_with_none_says_so():
    with pytest.raises(
        ResolveError, match=r"Fn::GetAtt Role.Arn: the twin does not know this attribute \(known: none\)"
    ):
        resolver().resolve({"Fn::GetAtt": ["Role", "Arn"]}, "Somewhere")


def test_references_name_the_resources_a_node_depends_on_in_order():
    node = {
        "Role": {"Ref": "Role"},
        "Region": {"Ref": "AWS::Region"},
        "Arn": {"Fn::GetAtt": ["Bucket", "Arn"]},
        "Address": {"Fn::GetAtt": "Database.Endpoint.Address"},
        "Path": {"Fn::Sub": "s3://${Logs}/${AWS::AccountId}/${!Literal}/${Key.Arn}"},
        "Named": {"Fn::Sub": ["${Name}/${Queue}", {"Name": {"Ref": "Topic"}}]},
        "List": [{"Ref": "Function"}, "text", {"Fn::Join": ["", [{"Ref": "Table"}]]}],
        "Ref": "not a reference: a property named Ref",
    }
    expected = ["Role", "Bucket", "Database", "Logs", "Key", "Queue", "Topic", "Function", "Table"]
    assert list(references(node)) == expected  # not Name: a variable of the Fn::Sub itself


def _intrinsics(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key.startswith("Fn::") or key in ("Ref", "Condition"):
                found.add(key)
            found |= _intrinsics(value)
    elif isinstance(node, list):
        for item in node:
            found |= _intrinsics(item)
    return found


def test_every_intrinsic_the_templates_use_is_one_the_resolver_handles(stage):
    handled = {
        "Ref", "Condition", "Fn::GetAtt", "Fn::Join", "Fn::Sub", "Fn::Select", "Fn::Split", "Fn::FindInMap",
        "Fn::If", "Fn::GetAZs", "Fn::ImportValue", "Fn::GetStackOutput", "Fn::Equals", "Fn::Not", "Fn::And",
        "Fn::Or", "Fn::Contains", "Fn::Base64",
    }  # fmt: skip
    used = set().union(*(_intrinsics(t.to_json()) for t in stage.templates.values()))
    assert used <= handled, used - handled


def test_every_resource_type_is_provisioned_or_listed_as_not_needed_with_a_reason(stage):
    types = {r["Type"] for t in stage.templates.values() for r in t.to_json()["Resources"].values()}
    assert types - set(ADAPTERS) - set(NOT_NEEDED) == set()
    assert all(len(reason) > 30 for reason in NOT_NEEDED.values())
    assert not set(ADAPTERS) & set(NOT_NEEDED)
