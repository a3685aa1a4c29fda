"""The AWS path: one bounded run of the reader as the Fargate task definition that infra/ deploys.

The Amazon provider's EcsRunTaskOperator starts the task, waits for it to stop, fails when the container
exits non-zero, and follows the container's CloudWatch log stream into the Airflow task log. The subclass
below adds what the DAG promises on every path: the run summary (the reader's last stdout line, found in
that log stream) is checked and pushed to XCom as a dict.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from airflow.providers.amazon.aws.operators.ecs import EcsRunTaskOperator

from log_pipeline import summary as run_summary
from log_pipeline.compat import AirflowException
from log_pipeline.settings import EcsTarget

# How many of the last log events to search for the summary: the reader may log its shutdown after it.
SUMMARY_SEARCH_EVENTS = 50


class ReaderEcsRunTaskOperator(EcsRunTaskOperator):
    """EcsRunTaskOperator whose return value (XCom return_value) is the reader's run summary.

    The task's ARN is pushed under the key ecs_task_arn as the provider does. Without a log group the
    summary cannot be read and the return value is None; the container's exit status still decides
    success, and the reader exits non-zero when it lost an event.
    """

    def execute(self, context: Any) -> dict[str, int | float] | None:
        last_line = super().execute(context)
        return self._summary(last_line)

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> dict[str, int | float] | None:
        last_line = super().execute_complete(context, event)
        return self._summary(last_line)

    def _summary(self, last_line: str | None) -> dict[str, int | float] | None:
        if not self.awslogs_group:
            self.log.warning("no awslogs_group (ecs_log_group): the run summary cannot be read back")
            return None
        lines: list[str] = []
        fetcher = self.task_log_fetcher
        if fetcher is not None and hasattr(fetcher, "get_last_log_messages"):
            lines = list(fetcher.get_last_log_messages(SUMMARY_SEARCH_EVENTS))
        elif last_line:
            lines = [last_line]
        summary = run_summary.last(lines)
        if summary is None:
            raise AirflowException(
                f"the reader's run summary is not among the last {SUMMARY_SEARCH_EVENTS} events of its log stream"
            )
        self.log.info("run summary: %s", json.dumps(summary.as_dict()))
        problems = summary.problems()
        if problems:
            raise AirflowException("reader lost events: " + "; ".join(problems))
        return summary.as_dict()


def reader_task(
    task_id: str,
    target: EcsTarget,
    duration: str,
    max_events: int | None = None,
    **kwargs: Any,
) -> ReaderEcsRunTaskOperator:
    """Build the operator that runs the reader's task definition once, bounded by duration/max_events.

    The task definition already carries the reader's configuration (source, topics, secret name); the
    override only bounds the run. The task runs in the given private subnets without a public address.
    """
    environment = [{"name": "READER_DURATION", "value": duration}]
    if max_events:
        environment.append({"name": "READER_MAX_EVENTS", "value": str(max_events)})
    return ReaderEcsRunTaskOperator(
        task_id=task_id,
        cluster=target.cluster,
        task_definition=target.task_definition,
        launch_type="FARGATE",
        overrides={"containerOverrides": [{"name": target.container, "environment": environment}]},
        network_configuration={
            "awsvpcConfiguration": {
                "subnets": list(target.subnets),
                "securityGroups": list(target.security_groups),
                "assignPublicIp": "ENABLED" if target.assign_public_ip else "DISABLED",
            }
        },
        container_name=target.container,
        awslogs_group=target.log_group,
        awslogs_stream_prefix=target.log_stream_prefix if target.log_group else None,
        awslogs_region=target.region,
        region_name=target.region,
        aws_conn_id=target.aws_conn_id,
        # A worker that restarts mid-run finds the task it started instead of starting a second reader.
        reattach=True,
        propagate_tags="TASK_DEFINITION",
        wait_for_completion=True,
        waiter_delay=15,
        awslogs_fetch_interval=timedelta(seconds=15),
        **kwargs,
    )
