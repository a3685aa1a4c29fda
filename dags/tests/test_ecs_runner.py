"""The AWS path: with runner=ecs the DAG's task is the Amazon provider's EcsRunTaskOperator, built from the
CDK outputs found in the environment and in the Airflow Variable. Parsing makes no AWS call: these tests
run with no AWS credentials and no network beyond loopback."""

from __future__ import annotations

import json

import pytest
from conftest import DAG_ID, TASK_ID, load_dagbag

CDK_OUTPUTS = {
    "ecs_cluster": "LogPipeline-Cluster-abc",
    "ecs_task_definition": "arn:aws:ecs:us-east-1:123456789012:task-definition/LogPipelineReaderTask:7",
    "ecs_subnets": "subnet-0aaa, subnet-0bbb",
    "ecs_security_groups": "sg-0ccc",
    "ecs_log_group": "LogPipeline-ReaderLogs-xyz",
}


@pytest.fixture
def no_aws(monkeypatch):
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(key, raising=False)


def ecs_task(dagbag):
    assert dagbag.import_errors == {}
    return dagbag.get_dag(DAG_ID).get_task(TASK_ID)


def test_ecs_operator_from_environment_and_variable(monkeypatch, no_aws):
    from airflow.providers.amazon.aws.operators.ecs import EcsRunTaskOperator

    # The runner and two outputs from plain environment variables; the rest from the Airflow Variable
    # log_pipeline, here provided the way Airflow reads Variables from the environment.
    monkeypatch.setenv("LOG_PIPELINE_RUNNER", "ecs")
    monkeypatch.setenv("LOG_PIPELINE_ECS_CLUSTER", CDK_OUTPUTS["ecs_cluster"])
    monkeypatch.setenv("LOG_PIPELINE_ECS_SUBNETS", CDK_OUTPUTS["ecs_subnets"])
    variable = {k: v for k, v in CDK_OUTPUTS.items() if k not in ("ecs_cluster", "ecs_subnets")}
    variable |= {"ecs_cluster": "overridden-by-the-environment", "reader_duration": "3m", "ecs_region": "eu-west-1"}
    monkeypatch.setenv("AIRFLOW_VAR_LOG_PIPELINE", json.dumps(variable))

    task = ecs_task(load_dagbag())

    assert isinstance(task, EcsRunTaskOperator)
    assert type(task).__name__ == "ReaderEcsRunTaskOperator"
    assert task.cluster == CDK_OUTPUTS["ecs_cluster"]
    assert task.task_definition == CDK_OUTPUTS["ecs_task_definition"]
    assert task.launch_type == "FARGATE"
    assert task.network_configuration == {
        "awsvpcConfiguration": {
            "subnets": ["subnet-0aaa", "subnet-0bbb"],
            "securityGroups": ["sg-0ccc"],
            "assignPublicIp": "DISABLED",
        }
    }
    assert task.overrides == {
        "containerOverrides": [{"name": "reader", "environment": [{"name": "READER_DURATION", "value": "3m"}]}]
    }
    assert task.container_name == "reader"
    assert task.awslogs_group == CDK_OUTPUTS["ecs_log_group"]
    assert task.awslogs_stream_prefix == "reader"
    assert task.awslogs_region == "eu-west-1"
    assert task.region_name == "eu-west-1"
    assert task.aws_conn_id == "aws_default"
    assert task.reattach is True
    assert task.wait_for_completion is True
    assert task.retries == 2


def test_ecs_operator_bounds_by_event_count(monkeypatch, no_aws):
    monkeypatch.setenv("LOG_PIPELINE_RUNNER", "ecs")
    monkeypatch.setenv("AIRFLOW_VAR_LOG_PIPELINE", json.dumps(CDK_OUTPUTS | {"reader_max_events": 50000}))
    task = ecs_task(load_dagbag())
    assert task.overrides["containerOverrides"][0]["environment"] == [
        {"name": "READER_DURATION", "value": "4m"},
        {"name": "READER_MAX_EVENTS", "value": "50000"},
    ]


def test_ecs_without_outputs_is_an_import_error_naming_them(monkeypatch, no_aws):
    monkeypatch.setenv("LOG_PIPELINE_RUNNER", "ecs")
    monkeypatch.setenv("LOG_PIPELINE_ECS_CLUSTER", "c")
    dagbag = load_dagbag()
    assert DAG_ID not in dagbag.dag_ids
    (error,) = dagbag.import_errors.values()
    assert "ecs_task_definition (CDK output TaskDefinitionArn)" in error
    assert "ecs_subnets (CDK output Subnets)" in error
    assert "ecs_security_groups (CDK output SecurityGroup)" in error


class LogStream:
    """The last events of the task's CloudWatch log stream, as the provider's log fetcher returns them."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines

    def get_last_log_messages(self, number: int) -> list[str]:
        return self.lines[-number:]


def built_operator(**target_overrides):
    from log_pipeline.ecs import reader_task
    from log_pipeline.settings import EcsTarget

    fields = {"cluster": "c", "task_definition": "td", "subnets": ("s",), "security_groups": ("g",), "log_group": "lg"}
    target = EcsTarget(**(fields | target_overrides))
    return reader_task("t", target, duration="4m")


SUMMARY = '{"received":7,"delivered":6,"dead_lettered":1,"failed":0,"in_flight":0,"duration_seconds":240.1}'
FINISHED = '{"time":"t","level":"INFO","msg":"reader finished","received":7,"delivered":6,"dead_lettered":1}'


def test_ecs_summary_is_read_back_from_the_log_stream(no_aws):
    operator = built_operator()
    operator.task_log_fetcher = LogStream(['{"time":"t","level":"INFO","msg":"reading"}', SUMMARY, FINISHED])
    assert operator._summary(FINISHED) == {
        "received": 7, "delivered": 6, "dead_lettered": 1, "failed": 0, "in_flight": 0, "duration_seconds": 240.1,
    }


def test_ecs_summary_with_a_lost_event_fails_the_task(no_aws):
    from log_pipeline.compat import AirflowException

    operator = built_operator()
    operator.task_log_fetcher = LogStream([SUMMARY.replace('"delivered":6', '"delivered":5')])
    with pytest.raises(AirflowException, match="1 received but neither delivered nor dead-lettered"):
        operator._summary(None)
    operator.task_log_fetcher = LogStream([FINISHED])
    with pytest.raises(AirflowException, match="run summary is not among the last 50 events"):
        operator._summary(FINISHED)


def test_ecs_without_log_group_returns_no_summary(no_aws):
    operator = built_operator(log_group=None)
    assert operator.awslogs_stream_prefix is None
    assert operator._summary(None) is None
