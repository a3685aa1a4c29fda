"""ReaderSubprocessOperator: one bounded run of the Go reader as a child process of the Airflow task.

The reader does the work (TCP source -> Kafka); this operator starts it with configuration only, streams
its JSON logs into the task log line by line, reads its run summary, pushes the summary to XCom and fails
the task when the reader failed or the summary shows a lost event.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from log_pipeline import summary as run_summary
from log_pipeline.compat import AirflowException, BaseHook, BaseOperator

# Where the reader is looked for when no reader_bin setting names it: the repository's build output
# (dags/../bin/reader, `make build`) and the MWAA plugins layout (plugins.zip unpacks under
# $AIRFLOW_HOME/plugins; dags/mwaa/startup.sh exports LOG_PIPELINE_READER_BIN, a copy when the mode was lost).
_REPO_READER = Path(__file__).resolve().parents[2] / "bin" / "reader"
_PLUGINS_READER = Path("plugins") / "bin" / "reader"

# Reader log levels (log/slog JSON) mapped onto Python logging, so a reader error is an error in the task log.
_LEVELS = {"DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARN": logging.WARNING, "ERROR": logging.ERROR}


def find_reader(configured: str | None, environ: Mapping[str, str] | None = None) -> str:
    """Return the path of the reader binary to run, or raise AirflowException saying where it looked."""
    env = os.environ if environ is None else environ
    if configured:
        candidates = [Path(configured)]
    else:
        candidates = [_REPO_READER]
        if env.get("AIRFLOW_HOME"):
            candidates.append(Path(env["AIRFLOW_HOME"]) / _PLUGINS_READER)
        on_path = shutil.which("reader")
        if on_path:
            candidates.append(Path(on_path))
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    tried = ", ".join(str(p) for p in candidates)
    raise AirflowException(
        f"reader binary not found or not executable (tried {tried}); build it with `make build`, "
        "or set reader_bin (LOG_PIPELINE_READER_BIN)"
    )


class ReaderSubprocessOperator(BaseOperator):
    """Run the reader in bounded mode and return its summary (pushed to XCom as return_value).

    duration (a Go duration, e.g. "4m") and max_events bound the run; a READER_DURATION or
    READER_MAX_EVENTS already in the worker's environment reaches the reader unchanged and wins, as
    every READER_* variable does (the reader reads them itself). kafka_conn_id names an Airflow
    connection (host[:port], login, password) whose credentials the reader then gets through its
    environment with --credentials env; without it the reader reads the secret MWAA_Secrets itself.
    terminate_timeout is how long a stopped task waits for the reader to drain after SIGTERM.
    """

    template_fields: Sequence[str] = ("reader_bin", "duration", "kafka_conn_id")
    ui_color = "#e6f7ff"

    def __init__(
        self,
        *,
        duration: str = "4m",
        max_events: int | None = None,
        reader_bin: str | None = None,
        kafka_conn_id: str | None = None,
        terminate_timeout: float = 45.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.duration = duration
        self.max_events = max_events
        self.reader_bin = reader_bin
        self.kafka_conn_id = kafka_conn_id
        self.terminate_timeout = terminate_timeout
        self._proc: subprocess.Popen[str] | None = None

    def execute(self, context: Any) -> dict[str, int | float]:
        binary = find_reader(self.reader_bin)
        env = dict(os.environ)
        with tempfile.TemporaryDirectory(prefix="reader-run-") as workdir:
            args = self._arguments(env, workdir)
            self.log.info("running %s", " ".join([binary, *args]))
            self.log.info("reader settings from the environment: %s", _reader_settings(env))
            rc, stdout_lines, last_error = self._run([binary, *args], env)
            summary_path = Path(env.get("READER_SUMMARY_FILE") or Path(workdir) / "summary.json")
            summary = _read_summary(summary_path) or run_summary.last(stdout_lines)

        if rc != 0:
            reason = f": {last_error}" if last_error else " (no error line in its log)"
            counts = f"; summary {json.dumps(summary.as_dict())}" if summary else ""
            raise AirflowException(f"reader exited with status {rc}{reason}{counts}")
        if summary is None:
            raise AirflowException("reader exited with status 0 but printed no run summary")
        self.log.info("run summary: %s", json.dumps(summary.as_dict()))
        problems = summary.problems()
        if problems:
            raise AirflowException("reader lost events: " + "; ".join(problems))
        return summary.as_dict()

    def on_kill(self) -> None:
        self._terminate()

    def _arguments(self, env: dict[str, str], workdir: str) -> list[str]:
        args: list[str] = []
        if env.get("READER_DURATION"):
            self.log.info("READER_DURATION=%s from the environment bounds the run", env["READER_DURATION"])
        elif self.duration:
            args += ["--duration", self.duration]
        if self.max_events and not env.get("READER_MAX_EVENTS"):
            args += ["--max-events", str(self.max_events)]
        if not env.get("READER_SUMMARY_FILE"):
            args += ["--summary-file", str(Path(workdir) / "summary.json")]
        if not env.get("READER_METRICS_ADDR"):
            # A bounded run needs no scrape endpoint, and a fixed port would collide with any other reader
            # on the worker.
            args += ["--metrics-addr="]
        if self.kafka_conn_id:
            env.update(_connection_credentials(self.kafka_conn_id))
            args += ["--credentials", "env"]
            self.log.info("Kafka credentials from the Airflow connection %r", self.kafka_conn_id)
        return args

    def _run(self, argv: list[str], env: dict[str, str]) -> tuple[int, list[str], str]:
        """Run argv, streaming stderr (JSON logs) and stdout into the task log; return its status,
        its stdout lines and its last error log line."""
        proc = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            bufsize=1,
            start_new_session=True,  # its own process group: on_kill signals it and nothing else
        )
        self._proc = proc
        last_error = ""
        stdout_lines: list[str] = []

        def pump_stderr(stream: IO[str]) -> None:
            nonlocal last_error
            for line in stream:
                level, error = _log_level(line)
                self.log.log(level, "reader: %s", line.rstrip())
                if error:
                    last_error = error

        stderr_thread = threading.Thread(target=pump_stderr, args=(proc.stderr,), daemon=True)
        stderr_thread.start()
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                stdout_lines.append(line.rstrip("\n"))
                self.log.info("reader stdout: %s", line.rstrip())
            rc = proc.wait()
            stderr_thread.join()
            return rc, stdout_lines, last_error
        finally:
            # Reached early only when the task itself is interrupted (timeout, kill): stop the reader too.
            self._terminate()

    def _terminate(self) -> None:
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        self.log.warning("stopping the reader (pid %d): SIGTERM, then SIGKILL after %.0fs", proc.pid, self.terminate_timeout)
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=self.terminate_timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        except ProcessLookupError:
            pass


def _log_level(line: str) -> tuple[int, str]:
    """Return the logging level of a reader log line and, for an error, its message and cause."""
    try:
        record = json.loads(line)
    except ValueError:
        return logging.INFO, ""
    if not isinstance(record, dict):
        return logging.INFO, ""
    level = _LEVELS.get(str(record.get("level", "INFO")).upper(), logging.INFO)
    if level < logging.ERROR:
        return level, ""
    message = str(record.get("msg", "error"))
    cause = record.get("err") or record.get("error")
    return level, f"{message}: {cause}" if cause else message


def _read_summary(path: Path) -> run_summary.Summary | None:
    try:
        return run_summary.parse(path.read_text())
    except OSError:
        return None


def _connection_credentials(conn_id: str) -> dict[str, str]:
    """Return the reader's env credentials from an Airflow connection (never logged)."""
    conn = BaseHook.get_connection(conn_id)
    if not conn.host:
        raise AirflowException(f"Airflow connection {conn_id!r} has no host (the Kafka bootstrap server)")
    bootstrap = f"{conn.host}:{conn.port}" if conn.port else conn.host
    return {
        "KAFKA_BOOTSTRAP_SERVER": bootstrap,
        "KAFKA_SASL_USERNAME": conn.login or "",
        "KAFKA_SASL_PASSWORD": conn.password or "",
    }


def _reader_settings(env: Mapping[str, str]) -> str:
    """The READER_* variables the reader will read. They are configuration, not secrets; librdkafka
    overrides (READER_KAFKA_PROPERTY) could still carry one, so that value and any key that names a
    password or secret are masked."""
    pairs = []
    for key in sorted(k for k in env if k.startswith("READER_")):
        masked = any(word in key for word in ("PASSWORD", "SECRET", "PROPERTY"))
        pairs.append(f"{key}={'***' if masked else env[key]}")
    return " ".join(pairs) or "(none)"
