"""Settings of the log_generation_pipeline DAG, read once when the DAG file is parsed.

Each setting KEY comes from, in order:

1. the environment variable ``LOG_PIPELINE_<KEY>`` (upper case), e.g. ``LOG_PIPELINE_RUNNER=ecs``;
2. the key of the JSON object in the Airflow Variable ``log_pipeline``, e.g. ``{"runner": "ecs"}``
   (the Variable may live in the metadata DB, in a secrets backend, or in ``AIRFLOW_VAR_LOG_PIPELINE``);
3. the default below.

One Variable holds every key so that a parse costs one lookup, not one per key. Secrets never go here:
the reader reads its Kafka credentials itself (Secrets Manager secret ``MWAA_Secrets``, or the
environment), or the DAG hands it those of an Airflow connection named by ``kafka_conn_id``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

VARIABLE = "log_pipeline"
ENV_PREFIX = "LOG_PIPELINE_"

RUNNERS = ("subprocess", "ecs")

# A Go time.Duration as the reader's --duration flag parses it (e.g. 4m, 90s, 1m30s).
_GO_DURATION = re.compile(r"^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$")


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the setting and where it can be set."""


@dataclass(frozen=True)
class EcsTarget:
    """Where and how to launch the reader's Fargate task definition: the CDK stack's outputs.

    cluster (output ClusterName), task_definition (TaskDefinitionArn), subnets (Subnets, comma-separated),
    security_groups (SecurityGroup), container (ContainerName, default "reader"), log_group
    (ReaderLogGroup: without it the run's summary cannot be read back), log_stream_prefix (the task
    definition's awslogs stream prefix, "reader").
    """

    cluster: str
    task_definition: str
    subnets: tuple[str, ...]
    security_groups: tuple[str, ...]
    container: str = "reader"
    log_group: str | None = None
    log_stream_prefix: str = "reader"
    region: str | None = None
    aws_conn_id: str = "aws_default"
    assign_public_ip: bool = False


@dataclass(frozen=True)
class Settings:
    """Everything the DAG file needs to build its one task. Defaults are the production values.

    runner: "subprocess" runs the Go reader as a child process of the Airflow task (local development, or
    MWAA with the binary shipped in plugins.zip); "ecs" launches the Fargate task definition.
    reader_duration bounds one run (a Go duration): runs start every 5 minutes and at most one is active,
    so a run of 4 minutes plus start-up and drain ends inside its interval and the next run picks up.
    """

    runner: str = "subprocess"
    retries: int = 2
    retry_delay: timedelta = timedelta(seconds=60)
    reader_duration: str = "4m"
    reader_max_events: int | None = None
    reader_bin: str | None = None
    kafka_conn_id: str | None = None
    ecs: EcsTarget | None = field(default=None)


def where(key: str) -> str:
    """Return where a setting can be set, for error messages."""
    return f"{ENV_PREFIX}{key.upper()} or key {key!r} of the Airflow Variable {VARIABLE!r}"


def _variable_from_airflow() -> str | None:
    from log_pipeline.compat import Variable

    # The default is positional: Airflow 2 names it default_var, Airflow 3 default.
    return Variable.get(VARIABLE, None)


def load(
    environ: Mapping[str, str] | None = None,
    variable: Callable[[], str | None] = _variable_from_airflow,
) -> Settings:
    """Read the settings from the environment and the Airflow Variable, validating every value.

    Raises SettingsError naming the first bad or missing setting.
    """
    env = os.environ if environ is None else environ
    raw = variable()
    values: dict[str, Any] = {}
    if raw:
        try:
            values = json.loads(raw) if isinstance(raw, str) else dict(raw)
        except ValueError as err:
            raise SettingsError(f"Airflow Variable {VARIABLE!r} is not a JSON object: {err}") from None
        if not isinstance(values, dict):
            raise SettingsError(f"Airflow Variable {VARIABLE!r} is not a JSON object")

    def get(key: str) -> str | None:
        value = env.get(ENV_PREFIX + key.upper())
        if value is None or value == "":
            value = values.get(key)
        if value is None:
            return None
        value = str(value).strip()
        return value or None

    runner = get("runner") or "subprocess"
    if runner not in RUNNERS:
        raise SettingsError(f"runner {runner!r}: want one of {', '.join(RUNNERS)} ({where('runner')})")

    duration = get("reader_duration") or "4m"
    if not _GO_DURATION.match(duration):
        raise SettingsError(f"reader_duration {duration!r}: want a duration like 4m or 90s ({where('reader_duration')})")

    return Settings(
        runner=runner,
        retries=_int(get, "retries", 2, minimum=0),
        retry_delay=timedelta(seconds=_int(get, "retry_delay_seconds", 60, minimum=0)),
        reader_duration=duration,
        reader_max_events=_int(get, "reader_max_events", None, minimum=1),
        reader_bin=get("reader_bin"),
        kafka_conn_id=get("kafka_conn_id"),
        ecs=_ecs(get) if runner == "ecs" else None,
    )


def _int(get: Callable[[str], str | None], key: str, default: int | None, minimum: int) -> int | None:
    value = get(key)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise SettingsError(f"{key} {value!r}: want an integer ({where(key)})") from None
    if number < minimum:
        raise SettingsError(f"{key} {number}: want at least {minimum} ({where(key)})")
    return number


def _list(value: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (value or "").split(",") if part.strip())


def _ecs(get: Callable[[str], str | None]) -> EcsTarget:
    required = {
        "ecs_cluster": "ClusterName",
        "ecs_task_definition": "TaskDefinitionArn",
        "ecs_subnets": "Subnets",
        "ecs_security_groups": "SecurityGroup",
    }
    missing = [f"{key} (CDK output {output})" for key, output in required.items() if not get(key)]
    if missing:
        raise SettingsError(
            "runner 'ecs' needs " + ", ".join(missing) + f"; set each as {ENV_PREFIX}<KEY> or as a key of the "
            f"Airflow Variable {VARIABLE!r}"
        )
    assign = (get("ecs_assign_public_ip") or "false").lower()
    if assign not in ("true", "false"):
        raise SettingsError(f"ecs_assign_public_ip {assign!r}: want true or false ({where('ecs_assign_public_ip')})")
    return EcsTarget(
        cluster=get("ecs_cluster") or "",
        task_definition=get("ecs_task_definition") or "",
        subnets=_list(get("ecs_subnets")),
        security_groups=_list(get("ecs_security_groups")),
        container=get("ecs_container") or "reader",
        log_group=get("ecs_log_group"),
        log_stream_prefix=get("ecs_log_stream_prefix") or "reader",
        region=get("ecs_region"),
        aws_conn_id=get("aws_conn_id") or "aws_default",
        assign_public_ip=assign == "true",
    )
