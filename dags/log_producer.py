"""
### log_generation_pipeline

Reads JSON log events from a TCP source and produces them to the Kafka topic `logs_4`, from which
ClickHouse ingests them. One task, `generate_and_produce_logs`, runs the Go reader in bounded mode
(4 minutes by default). Runs start every 5 minutes, at most one at a time and without catch-up, so each
run ends inside its interval and the next one picks up where it stopped: back to back, the runs read the
source continuously.

Where the reader runs (setting `runner`, see `log_pipeline/settings.py`):

* `subprocess` (default): the built reader binary runs as a child of the Airflow task, locally or on MWAA
  with the binary shipped in `plugins.zip`. Its JSON logs stream into this task's log.
* `ecs`: the Fargate task definition deployed by `infra/` is launched with the Amazon provider's
  EcsRunTaskOperator; the identifiers are the CDK stack's outputs.

Either way the run's summary (`received`, `delivered`, `dead_lettered`, ...) is the task's XCom
`return_value`, and the task fails when the reader failed or a received event was neither delivered nor
dead-lettered. The reader reads its Kafka credentials itself from the Secrets Manager secret
`MWAA_Secrets` (or, locally, the environment or an Airflow connection named by `kafka_conn_id`).
"""

from __future__ import annotations

from datetime import timedelta

import pendulum

from log_pipeline import settings as pipeline_settings
from log_pipeline.compat import DAG

DAG_ID = "log_generation_pipeline"
TASK_ID = "generate_and_produce_logs"

settings = pipeline_settings.load()

with DAG(
    dag_id=DAG_ID,
    description="TCP log source -> Go reader -> Kafka topic logs_4, one bounded run every 5 minutes",
    schedule=timedelta(minutes=5),
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={
        "owner": "log-pipeline",
        "retries": settings.retries,
        "retry_delay": settings.retry_delay,
        # A run is bounded by reader_duration plus start-up and drain; this only stops a reader that hangs.
        "execution_timeout": timedelta(minutes=15),
    },
    doc_md=__doc__,
    tags=["kafka", "logs"],
) as dag:
    if settings.runner == "ecs" and settings.ecs is not None:
        from log_pipeline.ecs import reader_task

        generate_and_produce_logs = reader_task(
            TASK_ID,
            settings.ecs,
            duration=settings.reader_duration,
            max_events=settings.reader_max_events,
        )
    else:
        from log_pipeline.subprocess_runner import ReaderSubprocessOperator

        generate_and_produce_logs = ReaderSubprocessOperator(
            task_id=TASK_ID,
            duration=settings.reader_duration,
            max_events=settings.reader_max_events,
            reader_bin=settings.reader_bin,
            kafka_conn_id=settings.kafka_conn_id,
        )
