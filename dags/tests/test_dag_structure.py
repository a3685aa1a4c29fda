"""The DAG as Airflow's DAG processor sees it: it imports cleanly and has the promised shape."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from conftest import DAG_ID, TASK_ID, load_dagbag

from log_pipeline import settings as pipeline_settings
from log_pipeline import summary as run_summary


@pytest.fixture(scope="module")
def dagbag():
    return load_dagbag()


def test_dag_folder_imports_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) == {DAG_ID}
    # .airflowignore keeps the support package and the tests out of the scan: one file holds DAGs.
    assert [stat.file.lstrip("/") for stat in dagbag.dagbag_stats] == ["log_producer.py"]


def test_dag_shape(dagbag):
    dag = dagbag.get_dag(DAG_ID)
    assert dag.catchup is False
    assert dag.max_active_runs == 1
    assert dag.task_ids == [TASK_ID]
    task = dag.get_task(TASK_ID)
    assert type(task).__name__ == "ReaderSubprocessOperator"
    assert task.retries == 2
    assert task.retry_delay == timedelta(seconds=60)
    assert task.execution_timeout == timedelta(minutes=15)
    assert task.duration == "4m"


def test_schedule_is_every_five_minutes(dagbag):
    """Two consecutive scheduled runs, as the scheduler computes them, lie 5 minutes apart."""
    from airflow.timetables.base import TimeRestriction

    dag = dagbag.get_dag(DAG_ID)
    timetable = dag.timetable
    try:  # Airflow 3 keeps the scheduler's timetable apart from the authoring one.
        from airflow.serialization.encoders import coerce_to_core_timetable

        timetable = coerce_to_core_timetable(timetable)
    except ImportError:
        pass
    earliest = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
    restriction = TimeRestriction(earliest=earliest, latest=None, catchup=True)
    first = timetable.next_dagrun_info(last_automated_data_interval=None, restriction=restriction)
    second = timetable.next_dagrun_info(last_automated_data_interval=first.data_interval, restriction=restriction)
    third = timetable.next_dagrun_info(last_automated_data_interval=second.data_interval, restriction=restriction)
    assert second.run_after - first.run_after == timedelta(minutes=5)
    assert third.run_after - second.run_after == timedelta(minutes=5)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LOG_PIPELINE_RUNNER": "lambda"}, "runner 'lambda': want one of subprocess, ecs"),
        ({"LOG_PIPELINE_READER_DURATION": "four minutes"}, "reader_duration 'four minutes'"),
        ({"LOG_PIPELINE_RETRIES": "-1"}, "retries -1: want at least 0"),
        ({"LOG_PIPELINE_READER_MAX_EVENTS": "many"}, "reader_max_events 'many': want an integer"),
        ({"LOG_PIPELINE_RUNNER": "ecs", "LOG_PIPELINE_ECS_CLUSTER": "c"}, "ecs_task_definition (CDK output TaskDefinitionArn)"),
    ],
)
def test_bad_settings_name_the_setting(env, message):
    with pytest.raises(pipeline_settings.SettingsError) as err:
        pipeline_settings.load(env, variable=lambda: None)
    assert message in str(err.value)


def test_settings_precedence_environment_over_variable():
    variable = '{"runner": "subprocess", "reader_duration": "2m", "retries": 5, "kafka_conn_id": "kafka_local"}'
    loaded = pipeline_settings.load({"LOG_PIPELINE_READER_DURATION": "90s"}, variable=lambda: variable)
    assert loaded.reader_duration == "90s"
    assert loaded.retries == 5
    assert loaded.kafka_conn_id == "kafka_local"
    with pytest.raises(pipeline_settings.SettingsError, match="not a JSON object"):
        pipeline_settings.load({}, variable=lambda: "runner=ecs")


@pytest.mark.parametrize(
    ("line", "problems"),
    [
        ('{"received":10,"delivered":8,"dead_lettered":2,"failed":0,"in_flight":0,"duration_seconds":1.5}', []),
        ('{"received":10,"delivered":7,"dead_lettered":2,"failed":1,"in_flight":0}', ["1 failed delivery"]),
        ('{"received":10,"delivered":7,"dead_lettered":2,"failed":0,"in_flight":1}', ["1 still in flight at exit"]),
        ('{"received":10,"delivered":7,"dead_lettered":2,"failed":0,"in_flight":0}',
         ["1 received but neither delivered nor dead-lettered"]),
    ],
)
def test_summary_problems(line, problems):
    summary = run_summary.parse(line)
    assert summary is not None
    assert summary.problems() == problems


def test_summary_is_found_among_log_lines():
    lines = [
        '{"time":"t","level":"INFO","msg":"draining","in_flight":3}',
        '{"received":3,"delivered":3,"dead_lettered":0,"failed":0,"in_flight":0,"duration_seconds":0.2}',
        '{"time":"t","level":"INFO","msg":"reader finished","received":3,"delivered":2,"dead_lettered":0}',
        "not json",
    ]
    found = run_summary.last(lines)
    assert found is not None and found.as_dict()["delivered"] == 3
    assert run_summary.last(lines[:1] + lines[2:]) is None
