"""Imports that differ between Airflow 2.10+ and Airflow 3.x.

Airflow 3 moved the authoring API to the Task SDK (`airflow.sdk`); Airflow 2 keeps it in `airflow` and
`airflow.models`. Everything else in this package imports from here, so the choice is made once.
"""

from __future__ import annotations

try:  # Airflow 3.x
    from airflow.sdk import DAG, BaseHook, BaseOperator, Variable
    from airflow.sdk.exceptions import AirflowException

    AIRFLOW_3 = True
except ImportError:  # Airflow 2.10+
    from airflow import DAG  # type: ignore[no-redef]
    from airflow.exceptions import AirflowException  # type: ignore[no-redef]
    from airflow.hooks.base import BaseHook  # type: ignore[no-redef]
    from airflow.models import BaseOperator, Variable  # type: ignore[no-redef]

    AIRFLOW_3 = False

__all__ = ["AIRFLOW_3", "DAG", "AirflowException", "BaseHook", "BaseOperator", "Variable"]
