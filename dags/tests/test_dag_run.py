"""Whole runs of the DAG with `airflow dags test` against the local stack: a real log source, the built Go
reader started by the task, real Kafka (SASL_SSL with the locally generated CA), and the Secrets Manager
emulator holding MWAA_Secrets."""

from __future__ import annotations

import json
from collections import Counter

from conftest import (
    LogSource,
    airflow_dags_test,
    free_port,
    read_event_ids,
    tail,
    task_instance,
    xcom_return_value,
)

AWS_KEYS = ("AWS_ENDPOINT_URL_SECRETSMANAGER", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY")


def emulator_env(stack: dict[str, str]) -> dict[str, str]:
    """Only what reaches the secret: no Kafka credentials in the environment, so the reader must read them
    from MWAA_Secrets."""
    return {key: stack[key] for key in AWS_KEYS if key in stack}


def assert_every_event_once(ids: list[int], count: int) -> None:
    duplicates = [i for i, n in Counter(ids).items() if n > 1]
    missing = sorted(set(range(1, count + 1)) - set(ids))
    assert not duplicates and not missing and len(ids) == count, (
        f"read {len(ids)} events; missing {missing[:10]}... ({len(missing)}), duplicated {duplicates[:10]}"
    )


def test_run_delivers_every_event_with_credentials_from_the_secret(stack, binaries, topic):
    count = 5000
    with LogSource(binaries["logsource"], count) as source:
        run = airflow_dags_test(
            emulator_env(stack)
            | {
                "READER_SOURCE_ADDR": source.addr,
                "READER_MAX_EVENTS": str(count),
                "READER_CA_FILE": stack["KAFKA_CA_FILE"],
                "READER_TOPIC": topic,
                "READER_DLQ_TOPIC": f"{topic}_dlq",
            }
        )
    assert run.returncode == 0, tail(run.output)
    assert source.result.get("sent") == count, source.result

    assert_every_event_once(read_event_ids(stack, topic, count), count)

    summary = xcom_return_value(run.run_id)
    assert {k: summary[k] for k in ("received", "delivered", "dead_lettered", "failed", "in_flight")} == {
        "received": count, "delivered": count, "dead_lettered": 0, "failed": 0, "in_flight": 0,
    }
    assert task_instance(run.run_id) == ("success", 1)
    # The reader's own logs are in the task log, and the DAG passed configuration, not credentials.
    assert '"msg":"log source connected"' in run.output
    assert stack["KAFKA_SASL_PASSWORD"] not in run.output
    assert "--credentials" not in run.output


def test_run_with_credentials_from_an_airflow_connection(stack, binaries, topic):
    count = 500
    connection = {
        "conn_type": "generic",
        "host": stack["KAFKA_BOOTSTRAP_SERVER"].rsplit(":", 1)[0],
        "port": int(stack["KAFKA_BOOTSTRAP_SERVER"].rsplit(":", 1)[1]),
        "login": stack["KAFKA_SASL_USERNAME"],
        "password": stack["KAFKA_SASL_PASSWORD"],
    }
    with LogSource(binaries["logsource"], count) as source:
        run = airflow_dags_test(
            {
                "AIRFLOW_CONN_KAFKA_LOCAL": json.dumps(connection),
                "LOG_PIPELINE_KAFKA_CONN_ID": "kafka_local",
                # No emulator: a reader that still asked Secrets Manager would fail.
                "AWS_ENDPOINT_URL_SECRETSMANAGER": f"http://127.0.0.1:{free_port()}",
                "READER_SOURCE_ADDR": source.addr,
                "READER_MAX_EVENTS": str(count),
                "READER_CA_FILE": stack["KAFKA_CA_FILE"],
                "READER_TOPIC": topic,
                "READER_DLQ_TOPIC": f"{topic}_dlq",
            }
        )
    assert run.returncode == 0, tail(run.output)
    assert "Kafka credentials from the Airflow connection 'kafka_local'" in run.output
    assert_every_event_once(read_event_ids(stack, topic, count), count)
    assert xcom_return_value(run.run_id)["delivered"] == count
    assert stack["KAFKA_SASL_PASSWORD"] not in run.output_beyond_mask_requests()


def test_unreachable_kafka_fails_the_task_with_the_readers_error(stack, binaries):
    dead_broker = f"127.0.0.1:{free_port()}"
    with LogSource(binaries["logsource"], 10) as source:
        run = airflow_dags_test(
            emulator_env(stack)
            | {
                # The secret is fine; the brokers it leads to are not there.
                "READER_BOOTSTRAP": dead_broker,
                "READER_STARTUP_TIMEOUT": "3s",
                "READER_SOURCE_ADDR": source.addr,
                "READER_CA_FILE": stack["KAFKA_CA_FILE"],
                # One retry, one second apart: the retry path runs without slowing the test down.
                "LOG_PIPELINE_RETRIES": "1",
                "LOG_PIPELINE_RETRY_DELAY_SECONDS": "1",
            }
        )
    assert run.returncode != 0, tail(run.output)
    assert task_instance(run.run_id) == ("failed", 2)
    # The reader's error record, streamed into the task log, and the task's failure that quotes it.
    # One record per try; Airflow 2 prints each task log line twice (console and task handler), so the
    # records are told apart by the reader's own timestamp.
    error_records = {
        line[line.index('{"time"'):].split("}", 1)[0]
        for line in run.output.splitlines()
        if '"level":"ERROR"' in line and '"msg":"reader failed"' in line and '{"time"' in line
    }
    assert len(error_records) == 2, tail(run.output)
    assert dead_broker in run.output
    assert "reader exited with status 1: reader failed: " in run.output
