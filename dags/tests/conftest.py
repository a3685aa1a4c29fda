"""Session set-up of the DAG tests: real Airflow with a private home, and the real local stack.

Airflow reads its configuration when it is first imported, so the environment is set here, at import of
this conftest, before any test module imports Airflow: a fresh AIRFLOW_HOME per session under
.cache/airflow-test/ (sqlite metadata DB, no example DAGs), the repository's dags/ as the DAG folder.
Settings that a developer's shell may carry (LOG_PIPELINE_*, READER_*, the pipeline's Airflow Variable
and connections) are cleared, so the tests see the DAG's defaults unless a test sets them.

Nothing here skips: a missing stack or binary fails the test that needs it, naming the command to run.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "dags"
BIN = REPO / "bin"
DAG_ID = "log_generation_pipeline"
TASK_ID = "generate_and_produce_logs"

_CLEARED_PREFIXES = ("LOG_PIPELINE_", "READER_", "AIRFLOW_VAR_LOG_PIPELINE", "AIRFLOW_CONN_", "AIRFLOW__")
for _key in list(os.environ):
    if _key.startswith(_CLEARED_PREFIXES):
        del os.environ[_key]

_TEST_ROOT = REPO / ".cache" / "airflow-test"
_TEST_ROOT.mkdir(parents=True, exist_ok=True)
AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="session-", dir=_TEST_ROOT))
AIRFLOW_DB = AIRFLOW_HOME / "airflow.db"
os.environ.update(
    {
        "AIRFLOW_HOME": str(AIRFLOW_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{AIRFLOW_DB}",
        # Without a TTY Airflow's console output is plain text, which the tests search.
        "NO_COLOR": "1",
    }
)
# The DAG processor puts the DAG folder on sys.path; so do the tests that parse the DAG in-process.
sys.path.insert(0, str(DAGS))

AIRFLOW_BIN = Path(sys.executable).with_name("airflow")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Keep the session's Airflow home when a test failed (its DB and logs tell why), else remove it."""
    if exitstatus == 0:
        shutil.rmtree(AIRFLOW_HOME, ignore_errors=True)
    else:
        print(f"\nAirflow home of this session kept for inspection: {AIRFLOW_HOME}", file=sys.stderr)


@pytest.fixture(scope="session", autouse=True)
def airflow_db() -> Path:
    """Migrate the session's metadata DB once, with the real `airflow db migrate`."""
    result = subprocess.run(
        [str(AIRFLOW_BIN), "db", "migrate"], capture_output=True, text=True, timeout=600, env=os.environ.copy()
    )
    assert result.returncode == 0, f"airflow db migrate failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return AIRFLOW_DB


def load_dagbag(environ: Mapping[str, str] | None = None) -> Any:
    """Parse the DAG folder in-process as Airflow's DAG processor does (3.x: a bundle; 2.x: the folder)."""
    try:
        from airflow.dag_processing.dagbag import BundleDagBag  # Airflow 3.x

        return BundleDagBag(dag_folder=str(DAGS), bundle_path=DAGS, bundle_name="dags-folder")
    except ImportError:
        from airflow.models.dagbag import DagBag  # Airflow 2.x

        return DagBag(dag_folder=str(DAGS), include_examples=False)


# --- the local stack and the binaries -----------------------------------------------------------------


@pytest.fixture(scope="session")
def stack() -> dict[str, str]:
    """The local stack's env file (dev/README.md), after checking that Kafka and the emulator answer."""
    stack_dir = Path(os.environ.get("STACK_DIR") or REPO / ".cache" / "stack")
    env_file = stack_dir / "stack.env"
    if not env_file.is_file():
        pytest.fail(f"the local stack is not up ({env_file} is missing): run `dev/stack.sh up`", pytrace=False)
    values: dict[str, str] = {}
    for line in env_file.read_text().splitlines():
        parts = shlex.split(line, comments=True)
        if len(parts) == 2 and parts[0] == "export" and "=" in parts[1]:
            key, _, value = parts[1].partition("=")
            values[key] = value
    for key in ("KAFKA_PLAINTEXT_BOOTSTRAP", "KAFKA_CA_FILE", "AWS_ENDPOINT_URL_SECRETSMANAGER",
                "KAFKA_BOOTSTRAP_SERVER", "KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD"):
        if not values.get(key):
            pytest.fail(f"{env_file} has no {key}: run `dev/stack.sh up` again", pytrace=False)
    endpoints = {
        "Kafka PLAINTEXT": values["KAFKA_PLAINTEXT_BOOTSTRAP"],
        "Kafka SASL_SSL": values["KAFKA_BOOTSTRAP_SERVER"],
        "Secrets Manager emulator": values["AWS_ENDPOINT_URL_SECRETSMANAGER"].split("//", 1)[-1],
    }
    for name, hostport in endpoints.items():
        host, _, port = hostport.rpartition(":")
        try:
            socket.create_connection((host, int(port)), timeout=3).close()
        except OSError as err:
            pytest.fail(f"{name} at {hostport} does not answer ({err}): run `dev/stack.sh up`", pytrace=False)
    return values


@pytest.fixture(scope="session")
def binaries() -> dict[str, Path]:
    """bin/reader and bin/logsource, built by `make build`."""
    found = {}
    for name in ("reader", "logsource"):
        path = BIN / name
        if not (path.is_file() and os.access(path, os.X_OK)):
            pytest.fail(f"{path} is missing: run `make build` (or `go build -o bin/ ./tasks/reader ./tasks/logsource`)",
                        pytrace=False)
        found[name] = path
    return found


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LogSource:
    """bin/logsource serving one reader on a loopback port it picks; result is its final JSON line."""

    binary: Path
    count: int
    addr: str = ""
    result: dict[str, Any] = field(default_factory=dict)
    stderr: list[str] = field(default_factory=list)
    _proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> LogSource:
        self._proc = subprocess.Popen(
            [str(self.binary), "--listen", "127.0.0.1:0", "--count", str(self.count), "--clients", "1"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        assert self._proc.stderr is not None
        deadline = time.monotonic() + 15
        while not self.addr and time.monotonic() < deadline:
            line = self._proc.stderr.readline()
            if not line:
                break
            self.stderr.append(line)
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("msg") == "listening":
                self.addr = record["addr"]
        if not self.addr:
            self._stop()
            pytest.fail("logsource did not report its listening address:\n" + "".join(self.stderr))
        threading.Thread(target=lambda: self.stderr.extend(self._proc.stderr), daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop()

    def _stop(self) -> None:
        proc = self._proc
        if proc is None:
            return
        try:
            out, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.terminate()
            out, _ = proc.communicate(timeout=10)
        lines = [l for l in (out or "").splitlines() if l.startswith("{")]
        if lines:
            self.result = json.loads(lines[-1])


# --- Kafka ----------------------------------------------------------------------------------------------


@pytest.fixture
def topic(stack: dict[str, str]) -> Iterator[str]:
    """A topic of its own for one test (3 partitions) and its dead-letter topic `<topic>_dlq` (1 partition),
    created and deleted on the PLAINTEXT listener. Tests never use the stack's logs_4 and logs_4_dlq: the
    demo's ClickHouse table consumes logs_4."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": stack["KAFKA_PLAINTEXT_BOOTSTRAP"]})
    name = f"dagtest_{uuid.uuid4().hex[:12]}"
    names = [name, f"{name}_dlq"]
    specs = [NewTopic(name, num_partitions=3, replication_factor=1), NewTopic(names[1], num_partitions=1, replication_factor=1)]
    for future in admin.create_topics(specs).values():
        future.result(timeout=30)
    yield name
    for future in admin.delete_topics(names, operation_timeout=30).values():
        try:
            future.result(timeout=30)
        except Exception as err:  # a leftover test topic is not worth failing a passed test over
            print(f"deleting topics {names}: {err}", file=sys.stderr)


def read_event_ids(stack: dict[str, str], topic: str, expected: int, timeout: float = 60) -> list[int]:
    """Read the topic from the start until `expected` events arrived (or the timeout); return their eventIds.

    A message may hold several newline-joined events (--events-per-message), so values are split on newlines.
    """
    from confluent_kafka import Consumer

    consumer = Consumer({
        "bootstrap.servers": stack["KAFKA_PLAINTEXT_BOOTSTRAP"],
        "group.id": f"dagtest-{uuid.uuid4().hex[:8]}",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    })
    consumer.subscribe([topic])
    ids: list[int] = []
    deadline = time.monotonic() + timeout
    try:
        while len(ids) < expected and time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is None:
                continue
            assert not msg.error(), f"consuming {topic}: {msg.error()}"
            for line in msg.value().splitlines():
                if line.strip():
                    ids.append(json.loads(line)["eventId"])
        # Anything more than expected (a duplicate) shows up within a short extra wait.
        extra_deadline = time.monotonic() + 2
        while time.monotonic() < extra_deadline:
            msg = consumer.poll(0.5)
            if msg is not None and not msg.error():
                ids.extend(json.loads(l)["eventId"] for l in msg.value().splitlines() if l.strip())
    finally:
        consumer.close()
    return ids


# --- running the DAG with `airflow dags test` ----------------------------------------------------------

_logical_dates = iter(range(1, 10_000))


@dataclass
class DagTestRun:
    returncode: int
    output: str
    run_id: str

    def output_beyond_mask_requests(self) -> str:
        """The output without the lines that echo the task's own request to mask a secret.

        Airflow 3.0's `airflow dags test` runs the task under an in-process supervisor whose channel logs every
        request at debug level, the MaskSecret request (which carries the value to mask) included; the
        supervisor that runs tasks in a deployment logs that request without its body. Those lines are where
        Airflow is told to hide the secret: a secret anywhere else in the output has leaked.
        """
        return "\n".join(line for line in self.output.splitlines() if "msg=MaskSecret(" not in line)


def airflow_dags_test(extra_env: Mapping[str, str], timeout: float = 420) -> DagTestRun:
    """Run `airflow dags test log_generation_pipeline <date>` with the session's Airflow home plus extra_env.

    Each call uses its own logical date, so its run, task instance and XCom are its own.
    """
    logical_date = datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(minutes=5 * next(_logical_dates))
    env = os.environ.copy()
    env.update(extra_env)
    # Airflow's DAG processor and task runner put the DAG folder (the bundle root) on sys.path, so the DAG
    # file imports its log_pipeline package; Airflow 3.0's `airflow dags test` parses in-process without
    # doing so (3.3 does), so the folder is put on the path here as the processor would.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(DAGS), env.get("PYTHONPATH", "")) if p)
    result = subprocess.run(
        [str(AIRFLOW_BIN), "dags", "test", DAG_ID, logical_date.isoformat()],
        env=env, capture_output=True, text=True, timeout=timeout, cwd=str(REPO),
    )
    return DagTestRun(result.returncode, result.stdout + result.stderr, _run_id(logical_date))


def _db() -> sqlite3.Connection:
    return sqlite3.connect(f"file:{AIRFLOW_DB}?mode=ro", uri=True)


def _run_id(logical_date: datetime) -> str:
    with _db() as db:
        columns = {row[1] for row in db.execute("PRAGMA table_info(dag_run)")}
        date_column = "logical_date" if "logical_date" in columns else "execution_date"
        rows = db.execute(
            f"SELECT run_id, {date_column} FROM dag_run WHERE dag_id = ? ORDER BY id DESC", (DAG_ID,)
        ).fetchall()
    for run_id, stored in rows:
        if stored and datetime.fromisoformat(str(stored).replace(" ", "T")).replace(tzinfo=timezone.utc) == logical_date:
            return run_id
    return ""


def task_instance(run_id: str) -> tuple[str, int]:
    """The state and try number of the task in a run, from the metadata DB."""
    with _db() as db:
        row = db.execute(
            "SELECT state, try_number FROM task_instance WHERE dag_id = ? AND task_id = ? AND run_id = ?",
            (DAG_ID, TASK_ID, run_id),
        ).fetchone()
    assert row is not None, f"no task instance of {TASK_ID} in run {run_id!r}"
    return row[0], row[1]


def xcom_return_value(run_id: str) -> Any:
    """The task's XCom return_value in a run, decoded from the metadata DB (JSON in both 2.x and 3.x)."""
    with _db() as db:
        row = db.execute(
            "SELECT value FROM xcom WHERE dag_id = ? AND task_id = ? AND run_id = ? AND key = 'return_value'",
            (DAG_ID, TASK_ID, run_id),
        ).fetchone()
    assert row is not None, f"no XCom return_value of {TASK_ID} in run {run_id!r}"
    value: Any = row[0]
    while isinstance(value, (bytes, str)):
        value = json.loads(value)
    return value


def tail(text: str, lines: int = 80) -> str:
    return "\n".join(text.splitlines()[-lines:])
