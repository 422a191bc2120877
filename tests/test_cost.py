"""The idle cost on paper (docs/cost.md) stays true: regenerated from the session's dev and prod
assemblies it must equal the committed file, and the quantities it rests on are derived from the
templates as AWS bills them."""

from __future__ import annotations

from pathlib import Path

import pytest

from checks.cost import (
    HOURS_PER_MONTH,
    PRICES,
    SCALE_ROWS,
    Line,
    Price,
    Throughput,
    alarm_metrics,
    condition_holds,
    endpoint_service,
    interface_endpoint_eni_hours,
    job_runs,
    main,
    preparation_runs,
    render_document,
    render_stage,
    runs_per_month,
    stage_cost,
)

ROOT = Path(__file__).resolve().parents[1]
COST_MD = ROOT / "docs" / "cost.md"


def test_docs_cost_md_is_up_to_date(dev, prod):
    regenerated = render_document([("dev", dev.outdir), ("prod", prod.outdir)])
    assert COST_MD.read_text(encoding="utf-8") == regenerated, "docs/cost.md is out of date: run make cost"


def test_every_resource_type_is_assessed(stage):
    # A new resource type must be placed: billed while idle, billed per use, or free.
    assert stage_cost("stage", stage.outdir).unassessed == {}


def test_each_configured_interface_endpoint_bills_in_every_subnet(stage):
    cost = stage_cost("stage", stage.outdir)
    subnets = sum(
        1 for r in stage.templates["network"].to_json()["Resources"].values() if r["Type"] == "AWS::EC2::Subnet"
    )
    endpoints = [line for line in cost.lines if line.type == "AWS::EC2::VPCEndpoint" and not line.per_use]
    assert sorted(line.what.removesuffix(" interface endpoint") for line in endpoints) == sorted(
        stage.config.network.interface_endpoints
    )
    assert {line.quantity for line in endpoints} == {subnets * HOURS_PER_MONTH}


def test_the_endpoint_bills_only_once_a_model_is_live(stage):
    cost = stage_cost("stage", stage.outdir)
    (endpoint,) = [line for line in cost.lines if line.type == "AWS::SageMaker::Endpoint"]
    assert endpoint.condition == "HasModel"
    assert endpoint.quantity == stage.config.hosting.instance_count * HOURS_PER_MONTH
    assert stage.config.hosting.instance_type in endpoint.what
    deployed, _ = cost.total(with_conditional=False)
    live, _ = cost.total(with_conditional=True)
    assert live >= deployed


def test_an_interface_endpoint_in_two_subnets_bills_two_eni_hours_an_hour():
    assert interface_endpoint_eni_hours({"SubnetIds": [{"Ref": "A"}, {"Ref": "B"}]}) == 2 * 730
    assert interface_endpoint_eni_hours({"SubnetIds": {"Fn::Split": [",", "x"]}}) is None
    line = Line(
        "s", "E", "AWS::EC2::VPCEndpoint", "sts", 2 * 730, "ENI-hours", PRICES["us-east-1"]["interface_endpoint_hour"]
    )
    assert line.monthly == pytest.approx(14.60)


@pytest.mark.parametrize(
    ("expression", "per_month"),
    [
        ("cron(0 3 * * ? *)", 365 / 12),  # daily: ~30 crawls a month
        ("cron(0 * * * ? *)", 365 * 24 / 12),  # hourly: the crawler before issue 13
        ("cron(0/15 * * * ? *)", 365 * 96 / 12),
        ("cron(0 3 ? * MON-FRI *)", 261 / 12),  # 2027 has 261 weekdays
        ("cron(0 3 1 * ? *)", 1),
        ("cron(0 3 1 JAN ? *)", 1 / 12),
        ("rate(1 hour)", 730),
        ("rate(2 days)", 730 / 48),
    ],
)
def test_schedules_become_runs_a_month(expression, per_month):
    assert runs_per_month(expression) == pytest.approx(per_month)


@pytest.mark.parametrize(
    "expression", ["cron(0 3 L * ? *)", "cron(0 3 ? * 2#1 *)", "cron(0 3 * *)", "at(2027-01-01T00:00:00)"]
)
def test_schedules_it_cannot_read_are_unknown_not_guessed(expression):
    assert runs_per_month(expression) is None


def test_the_daily_crawler_bills_ten_minutes_a_crawl(dev):
    (crawler,) = [line for line in stage_cost("dev", dev.outdir).lines if line.type == "AWS::Glue::Crawler"]
    assert "cron(0 3 * * ? *)" in crawler.what
    assert crawler.quantity == pytest.approx(365 / 12 * 10 / 60, abs=1e-3)  # ~30 crawls x 10 minutes


def test_a_math_alarm_bills_each_metric_it_reads():
    assert alarm_metrics({"MetricName": "Errors"}) == 1
    math = {"Metrics": [{"Id": "e", "Expression": "a/b"}, {"Id": "a", "MetricStat": {}}, {"Id": "b", "MetricStat": {}}]}
    assert alarm_metrics(math) == 2


def test_conditions_are_read_with_parameter_defaults():
    template = {
        "Parameters": {"ModelPackageArn": {"Type": "String", "Default": ""}},
        "Conditions": {
            "HasModel": {"Fn::Not": [{"Fn::Equals": [{"Ref": "ModelPackageArn"}, ""]}]},
            "NoModel": {"Fn::Not": [{"Condition": "HasModel"}]},
            "Unknowable": {"Fn::Equals": [{"Ref": "AWS::Region"}, "eu-west-1"]},
        },
    }
    assert condition_holds(template, "HasModel") is False
    assert condition_holds(template, "NoModel") is True
    assert condition_holds(template, "Unknowable") is None


def test_endpoint_service_names_drop_the_region():
    assert endpoint_service("com.amazonaws.eu-west-1.sagemaker.api") == "sagemaker.api"
    assert endpoint_service("aws.sagemaker.eu-west-1.studio") == "sagemaker.studio"
    assert endpoint_service("com.amazonaws.<region>.sts") == "sts"


def test_an_unknown_price_is_left_out_of_the_total_and_counted():
    unknown = Price(None, "instance-hour", "https://example.org", "2026-11-23", "no figure")
    assert Line("s", "E", "AWS::SageMaker::Endpoint", "e", 730, "h", unknown).monthly is None
    assert Line("s", "Q", "AWS::SQS::Queue", "q", 0, "-", unknown).monthly == 0.0


def test_every_price_names_its_source_and_date():
    for prices in PRICES.values():
        for item in prices.values():
            assert item.source.startswith("https://") and item.read
            assert item.amount is not None or item.note, "an unknown price says why"


def test_check_mode_fails_on_a_stale_report(dev, tmp_path):
    report = tmp_path / "cost.md"
    assert main([f"dev={dev.outdir}", "--output", str(report)]) == 0
    assert main([f"dev={dev.outdir}", "--output", str(report), "--check"]) == 0
    report.write_text(report.read_text() + "edited by hand\n")
    assert main([f"dev={dev.outdir}", "--output", str(report), "--check"]) == 1


# --- the preparation job's runs as data grows -------------------------------------------------------

RATE = Throughput(rows=1_000_000, seconds=50.0, vcpus=2, measured="a test")  # 10,000 rows/s per vCPU
PRICED = Price(0.44, "DPU-hour", "https://example.org", "2026-11-24")


def test_a_run_is_the_rows_over_the_task_vcpus_and_bills_every_worker():
    runs = job_runs("s", "Job", {"WorkerType": "G.2X", "NumberOfWorkers": 5, "Timeout": 60}, PRICED, RATE)
    by_rows = {run.rows: run for run in runs}
    assert sorted(by_rows) == sorted(SCALE_ROWS)
    # 4 workers run tasks on 8 vCPUs each: 32 vCPUs x 10,000 rows/s; the driver's worker bills too.
    hundred_million = by_rows[100_000_000]
    assert hundred_million.seconds == pytest.approx(100_000_000 / 320_000)
    assert hundred_million.dpu_hours == pytest.approx(100_000_000 / 320_000 / 3600 * 2 * 5)
    assert hundred_million.amount == pytest.approx(hundred_million.dpu_hours * 0.44)
    assert hundred_million.timeout_minutes == 60


def test_a_short_run_bills_the_one_minute_minimum_on_every_worker():
    (million, *_) = job_runs("s", "Job", {"WorkerType": "G.1X", "NumberOfWorkers": 3}, PRICED, RATE)
    assert million.seconds == pytest.approx(1_000_000 / 80_000)  # 12.5 s of work
    assert million.dpu_hours == pytest.approx(60 / 3600 * 1 * 3)


def test_more_workers_shorten_a_long_run_at_about_the_same_dpu_hours():
    def run(workers: int):
        (*_, last) = job_runs("s", "Job", {"WorkerType": "G.1X", "NumberOfWorkers": workers}, PRICED, RATE)
        return last

    two, nine = run(2), run(9)
    assert nine.seconds == pytest.approx(two.seconds / 8)
    assert nine.dpu_hours / two.dpu_hours == pytest.approx(9 / 8 / 2)  # the driver's worker's share shrinks


def test_a_worker_type_without_a_known_size_is_unknown_not_guessed():
    runs = job_runs("s", "Job", {"WorkerType": "Z.2X", "NumberOfWorkers": 4}, PRICED, RATE)
    assert {run.seconds for run in runs} == {None} and {run.amount for run in runs} == {None}


def test_each_stage_prices_its_own_job_at_its_workers(stage):
    cost = stage_cost("stage", stage.outdir)
    runs = preparation_runs(cost)
    settings = stage.config.etl
    assert {(run.worker_type, run.workers) for run in runs} == {(settings.worker_type, settings.number_of_workers)}
    assert {run.timeout_minutes for run in runs} == {settings.timeout_minutes}
    assert all(run.dpu_hours is not None and run.dpu_hours > 0 for run in runs)
    rendered = render_stage(cost)
    assert "### The preparation job's runs as data grows" in rendered
    if runs[0].price.amount is None:  # prod's region has no known price: us-east-1's is shown beside
        assert "a run at us-east-1's price" in rendered
