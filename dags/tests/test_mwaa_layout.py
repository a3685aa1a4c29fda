"""What MWAA gets: plugins.zip with the reader, the startup script that makes it runnable and tells the DAG
where it is, and a pinned requirements file."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import zipfile
from pathlib import Path

import pytest
from conftest import DAGS

from log_pipeline.subprocess_runner import find_reader

MWAA = DAGS / "mwaa"


@pytest.fixture(scope="module")
def plugins_zip(binaries, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("mwaa") / "plugins.zip"
    result = subprocess.run(
        [str(MWAA / "plugins.sh"), str(out)],
        env=os.environ | {"READER_BINARY": str(binaries["reader"])},
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return out


def startup(airflow_home: Path, tmp: Path) -> tuple[str, str]:
    """Source the startup script as MWAA does; return the reader path it exported, and its messages."""
    result = subprocess.run(
        ["sh", "-c", f'. "{MWAA / "startup.sh"}" && printf %s "${{LOG_PIPELINE_READER_BIN:-}}"'],
        env={"PATH": os.environ["PATH"], "AIRFLOW_HOME": str(airflow_home), "TMPDIR": str(tmp)},
        capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout, result.stdout + result.stderr


def run_help(reader: str) -> str:
    result = subprocess.run([reader, "--help"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return result.stdout + result.stderr


def test_plugins_zip_holds_an_executable_reader(plugins_zip):
    with zipfile.ZipFile(plugins_zip) as zf:
        (info,) = zf.infolist()
    assert info.filename == "bin/reader"
    assert stat.S_IMODE(info.external_attr >> 16) == 0o755


@pytest.mark.parametrize("keeps_mode", [True, False], ids=["unpacked-with-mode", "unpacked-without-mode"])
def test_startup_script_points_the_dag_at_the_reader(plugins_zip, tmp_path, keeps_mode):
    home = tmp_path / "airflow"
    plugins = home / "plugins"
    with zipfile.ZipFile(plugins_zip) as zf:
        zf.extractall(plugins)  # Python's unpacker drops the mode, as some do
        if keeps_mode:
            for info in zf.infolist():
                os.chmod(plugins / info.filename, stat.S_IMODE(info.external_attr >> 16))

    reader, messages = startup(home, tmp_path)

    if keeps_mode:
        assert reader == str(plugins / "bin" / "reader"), messages
    else:  # copied into a fresh temporary directory and made executable there
        assert Path(reader).parent.parent == tmp_path and Path(reader).name == "reader", messages
    assert "Usage: reader" in run_help(reader)
    assert find_reader(reader) == reader


def test_startup_script_without_plugins_says_so(tmp_path):
    reader, messages = startup(tmp_path / "airflow", tmp_path)
    assert reader == ""
    assert "no reader in plugins.zip" in messages


def test_mwaa_requirements_are_pinned_under_constraints():
    lines = [l.strip() for l in (DAGS / "requirements.txt").read_text().splitlines()]
    lines = [l for l in lines if l and not l.startswith("#")]
    constraints = [l for l in lines if l.startswith("--constraint")]
    requirements = [l for l in lines if not l.startswith("-")]
    assert len(constraints) == 1
    assert re.search(r"constraints-\d+\.\d+\.\d+/constraints-3\.\d+\.txt", constraints[0])
    assert requirements, "no requirement at all"
    for requirement in requirements:
        assert re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[0-9][0-9A-Za-z.]*", requirement), requirement
    assert any(r.startswith("apache-airflow-providers-amazon==") for r in requirements)
