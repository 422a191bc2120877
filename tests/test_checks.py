"""The checks that guard every stack: cdk-nag (three packs) and cfn-lint, on the dev and prod
assemblies, and proof that the checks themselves catch what they should."""

from __future__ import annotations

import json
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from cdk_nag import AwsSolutionsChecks, NagReportFormat, NagSuppressions

from app import cdk_json_context
from checks.__main__ import main as checks_main
from checks.assembly import read_lookups, read_stacks
from checks.cfn_lint import lint_template
from checks.nag import (
    PACKS,
    is_boilerplate,
    problems,
    read_reports,
    reports,
    stack_wide_suppressions,
    unmatched_acknowledgements,
)


def test_every_stack_passes_every_nag_pack(stage):
    stacks = [s.name for s in read_stacks(stage.outdir)]
    assert len(stacks) == len(stage.stacks)
    assert problems(read_reports(stage.outdir), stacks, reports(stage.outdir)) == []


def test_synth_needs_no_lookup_in_an_aws_account(stage):
    # A look-up would make `cdk synth` ask for credentials (prod) or bake in dummy values.
    assert read_lookups(stage.outdir) == []


def test_each_pack_reported_on_each_stack(stage):
    assert reports(stage.outdir) == {(pack, s.name) for pack in PACKS for s in read_stacks(stage.outdir)}


def test_acknowledgements_are_on_resources_never_on_a_whole_stack(stage):
    for stack in read_stacks(stage.outdir):
        assert stack_wide_suppressions(stack.template) == [], stack.name


def test_every_acknowledgement_gives_a_reason(stage):
    acknowledged = [f for f in read_reports(stage.outdir) if f.compliance == "Suppressed"]
    assert acknowledged, "expected the known acknowledgements (log bucket, replication, grant policies)"
    for finding in acknowledged:
        assert not is_boilerplate(finding.reason), finding


def test_cfn_lint_finds_no_errors_in_any_template(stage):
    for stack in read_stacks(stage.outdir):
        result = lint_template(stack.template_path, [stack.region or "us-east-1"])
        assert result.errors == [], result.errors


def test_checks_command_summarises_and_passes(stage, capsys):
    assert checks_main([str(stage.outdir)]) == 0
    out = capsys.readouterr().out
    for name in stage.stacks.values():
        assert name.stack_name in out
    assert "0 open" in out and "cfn-lint: 0 errors" in out


@pytest.mark.parametrize(
    "reason",
    ["", "n/a", "Not needed", "false positive", "suppressed", "OK", "by design.", "This is fine, trust me."],
)
def test_lazy_reasons_are_boilerplate(reason):
    assert is_boilerplate(reason)


def test_a_specific_reason_is_not_boilerplate():
    assert not is_boilerplate("S3 server access logging delivers only to buckets encrypted with SSE-S3.")


@pytest.fixture(scope="module")
def flawed_assembly(tmp_path_factory) -> Path:
    """A tiny app with one unacknowledged finding, one lazily acknowledged one, and
    acknowledgements of a policy's wildcards: used ones and ones that match no finding."""
    outdir = tmp_path_factory.mktemp("flawed")
    context = {"aws:cdk:enable-path-metadata": True, **cdk_json_context()}
    app = cdk.App(context=context, outdir=str(outdir), analytics_reporting=False)
    stack = cdk.Stack(app, "Flawed")
    s3.Bucket(stack, "Plain", enforce_ssl=True)
    lazy = s3.Bucket(stack, "Lazy", enforce_ssl=True)
    NagSuppressions.add_resource_suppressions(lazy, [{"id": "AwsSolutions-S1", "reason": "not needed at all"}])
    NagSuppressions.add_stack_suppressions(stack, [{"id": "AwsSolutions-S10", "reason": "blanket for the whole stack"}])
    policy = iam.Policy(
        stack,
        "Wild",
        statements=[iam.PolicyStatement(actions=["s3:GetObject", "sqs:Get*"], resources=["*"])],
        roles=[iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))],
    )
    why = "a reason long enough to be read as one, about exactly these wildcard findings"
    NagSuppressions.add_resource_suppressions(
        policy,
        [
            {"id": "AwsSolutions-IAM5", "reason": why, "appliesTo": ["Resource::*", "Resource::arn:aws:s3:::gone/*"]},
            {"id": "AwsSolutions-IAM5", "reason": "the " + why, "appliesTo": [{"regex": "/^Action::sqs:.*$/g"}]},
            {"id": "AwsSolutions-IAM4", "reason": "the policy has no managed policy to acknowledge: nothing fires"},
        ],
    )
    cdk.Aspects.of(app).add(AwsSolutionsChecks(reports=True, report_formats=[NagReportFormat.JSON]))
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    return outdir


def test_nag_check_catches_open_and_lazily_acknowledged_findings(flawed_assembly):
    found = problems(read_reports(flawed_assembly), ["Flawed"], reports(flawed_assembly))
    assert any("AwsSolutions-S1 on Flawed/Plain/Resource: not compliant" in line for line in found), found
    assert any(
        "AwsSolutions-S1 on Flawed/Lazy/Resource: acknowledged with a reason that explains nothing" in line
        for line in found
    ), found
    assert "Flawed: no HIPAA.Security report (was the pack applied to the app?)" in found


def test_acknowledgements_that_match_no_finding_are_reported(flawed_assembly):
    template = json.loads((flawed_assembly / "Flawed.template.json").read_text())
    found = unmatched_acknowledgements("Flawed", template, read_reports(flawed_assembly))
    assert sorted(found) == [
        "Flawed: Flawed/Wild/Resource: acknowledgement of AwsSolutions-IAM4 matches no finding",
        "Flawed: Flawed/Wild/Resource: acknowledgement of AwsSolutions-IAM5 [Resource::arn:aws:s3:::gone/*] "
        "matches no finding",
    ]


def test_stack_wide_acknowledgement_is_detected(flawed_assembly):
    template = json.loads((flawed_assembly / "Flawed.template.json").read_text())
    assert stack_wide_suppressions(template) == ["AwsSolutions-S10"]


def test_cfn_lint_check_reports_errors(tmp_path):
    template = tmp_path / "broken.template.json"
    template.write_text(
        json.dumps({"Resources": {"Bucket": {"Type": "AWS::S3::Bucket", "Properties": {"VersioningConfig": {}}}}})
    )
    result = lint_template(template, ["us-east-1"])
    assert any(error.startswith("E3002") for error in result.errors), result.errors
