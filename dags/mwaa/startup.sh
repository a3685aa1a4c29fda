#!/bin/sh
# MWAA startup script: upload it to the environment's bucket and set it as the startup script. MWAA runs it
# on every Airflow component before Airflow starts; what it exports is in the components' environment.
#
# It makes the reader shipped in plugins.zip (bin/reader, see dags/mwaa/plugins.sh) runnable and tells the
# DAG where it is. MWAA unpacks plugins.zip under $AIRFLOW_HOME/plugins; when the executable bit did not
# survive the unpacking, the binary is copied to a writable place and made executable there.
PLUGIN_READER="${AIRFLOW_HOME:-/usr/local/airflow}/plugins/bin/reader"

if [ -f "$PLUGIN_READER" ]; then
  if [ -x "$PLUGIN_READER" ]; then
    LOG_PIPELINE_READER_BIN="$PLUGIN_READER"
  else
    READER_DIR=$(mktemp -d) &&
      cp "$PLUGIN_READER" "$READER_DIR/reader" &&
      chmod 0755 "$READER_DIR/reader" &&
      LOG_PIPELINE_READER_BIN="$READER_DIR/reader"
  fi
  if [ -n "${LOG_PIPELINE_READER_BIN:-}" ]; then
    export LOG_PIPELINE_READER_BIN
    echo "log pipeline: reader at $LOG_PIPELINE_READER_BIN" >&2
  else
    echo "log pipeline: could not make $PLUGIN_READER executable; the DAG's subprocess runner will fail" >&2
  fi
else
  echo "log pipeline: no reader in plugins.zip ($PLUGIN_READER); use the ecs runner or ship bin/reader" >&2
fi
