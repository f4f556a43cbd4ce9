"""A real Spark standalone cluster on 127.0.0.1 (master + two workers, started here with
the pip-installed ``spark-class``, no Docker): spark-submit of ``jobs/anonymize.py``
with the package zip, and the Iceberg jars shipped with ``--jars``, publishes to an
Iceberg table the same partition as local mode publishes to a path table, and the
work ran on executors, not on the driver. The test stops the processes it started,
by pid."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from pipelines import jars
from pipelines.packaging import build_zip
from pipelines.runner import run_partition
from tests.conftest import TEST_KEY
from tests.e2e.helpers import source_and_specs

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _free_ports(n: int) -> list[int]:
    """n distinct free ports (all held open together, so none is handed out twice)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@pytest.fixture(scope="module")
def standalone(tmp_path_factory):
    """spark://127.0.0.1:<port> with two one-core workers; yields (url, ui_port)."""
    spark_class = BIN / "spark-class"
    if not spark_class.exists():
        pytest.skip("spark-class is not installed next to this Python (pip pyspark ships it)")
    work = tmp_path_factory.mktemp("cluster")
    port, ui, *worker_ui = _free_ports(4)
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable,
           "SPARK_NO_DAEMONIZE": "1"}  # fmt: skip
    procs = []

    def start(args: list[str], log: str) -> None:
        procs.append(subprocess.Popen([str(spark_class), *args], env=env, cwd=work,
                                      stdout=open(work / log, "w"), stderr=subprocess.STDOUT,
                                      start_new_session=True))  # fmt: skip

    try:
        start(["org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port",
               str(port), "--webui-port", str(ui)], "master.log")  # fmt: skip
        url = f"spark://127.0.0.1:{port}"
        for i in range(2):
            start(["org.apache.spark.deploy.worker.Worker", url, "--host", "127.0.0.1",
                   "--cores", "1", "--memory", "1g", "--webui-port", str(worker_ui[i]),
                   "--work-dir", str(work / f"worker{i}")], f"worker{i}.log")  # fmt: skip
        deadline = time.time() + 120
        alive = 0
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{ui}/json/", timeout=5) as r:
                    alive = json.load(r).get("aliveworkers", 0)
            except OSError:
                alive = 0
            if alive == 2:
                break
            time.sleep(1)
        assert alive == 2, (work / "master.log").read_text()[-2000:]
        yield url, ui
    finally:
        for p in procs:  # by pid (and its process group: spark-class execs java)
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)


@pytest.mark.slow
def test_standalone_cluster_publishes_what_local_mode_publishes(spark, standalone, warehouse,
                                                                 key_env, tmp_path):  # fmt: skip
    url, _ = standalone
    local_spec, cluster_spec = source_and_specs(spark, warehouse / "cluster" / "raw", tmp_path,
                                                "cluster", rows=400, users=7, files=4)  # fmt: skip
    run_partition(local_spec, "2026-11-25")
    # The cluster run publishes to an Iceberg table (Hadoop catalog on this machine's
    # disk, which the workers share), its jars shipped by --jars from the driver.
    ice = tmp_path / "ice"
    sink = f"sink: {{format: iceberg, table: anon.cluster, catalog: {{name: cluster_ice, warehouse: '{ice}'}}}}"
    text = Path(cluster_spec).read_text()
    Path(cluster_spec).write_text("\n".join(sink if ln.startswith("sink:") else ln
                                            for ln in text.splitlines()) + "\n")  # fmt: skip
    fmt = jars.submit_conf(["iceberg"])

    z = build_zip(tmp_path / "dist")
    events = tmp_path / "events"
    events.mkdir()
    env = {**os.environ, "ANON_TEST_KEY": TEST_KEY, "PYSPARK_PYTHON": sys.executable,
           "SPARK_LOCAL_IP": "127.0.0.1"}  # fmt: skip
    proc = subprocess.run(
        [str(BIN / "spark-submit"), "--master", url, "--deploy-mode", "client",
         "--conf", "spark.ui.enabled=false", "--conf", "spark.executor.memory=512m",
         "--conf", "spark.cores.max=2", "--conf", "spark.sql.shuffle.partitions=4",
         "--conf", "spark.eventLog.enabled=true", "--conf", f"spark.eventLog.dir={events}",
         "--conf", "spark.eventLog.compress=false", "--conf", "spark.eventLog.rolling.enabled=false",
         "--jars", fmt["spark.jars"], "--conf", f"spark.sql.extensions={fmt['spark.sql.extensions']}",
         "--py-files", str(z), str(ROOT / "jobs" / "anonymize.py"), str(cluster_spec),
         "--partition", "2026-11-25", "--warehouse", str(tmp_path / "wh"), "--json"],
        capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1])["status"] == "published"
    # Tasks ran on executors (ids "0", "1", ...), not on the driver.
    executors = set()
    for log in [p for p in events.rglob("*") if p.is_file()]:
        for line in log.read_text().splitlines():
            event = json.loads(line)
            if event.get("Event") == "SparkListenerTaskEnd":
                executors.add(event["Task Info"]["Executor ID"])
    assert executors and "driver" not in executors, executors
    a = sorted(map(tuple, spark.read.parquet(str(tmp_path / "local_out")).collect()))
    spark.conf.set("spark.sql.catalog.cluster_ice", "org.apache.iceberg.spark.SparkCatalog")
    spark.conf.set("spark.sql.catalog.cluster_ice.type", "hadoop")
    spark.conf.set("spark.sql.catalog.cluster_ice.warehouse", str(ice))
    b = sorted(map(tuple, spark.table("cluster_ice.anon.cluster").collect()))
    assert a == b and len(a) == 400
