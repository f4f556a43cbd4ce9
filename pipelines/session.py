"""SparkSession factory.

Under ``spark-submit`` the session already exists (master, resources and
properties come from the command line or ``--properties-file conf/spark/*.conf``)
and is reused as is. In-process runs build one: ``local[*]`` unless a master is
given, Hive support with an embedded Derby metastore inside the warehouse root,
so catalog tables work with nothing to install, and the Iceberg and Delta Lake
jars and SQL extensions when ``make jars`` fetched them.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

DEFAULT_WAREHOUSE = "warehouse"
_LOG4J = Path(__file__).with_name("log4j2.properties")


def warehouse_root(explicit: str | None = None) -> Path:
    """``--warehouse``, else ``$ANONYMIZE_WAREHOUSE``, else ``./warehouse`` (absolute).

    Args:
        explicit: The ``--warehouse`` option, or None.

    Returns:
        The warehouse root, resolved to an absolute path (not created).
    """
    return Path(explicit or os.environ.get("ANONYMIZE_WAREHOUSE") or DEFAULT_WAREHOUSE).resolve()


def warehouse_given(explicit: str | None) -> bool:
    """Whether the user chose a warehouse (``--warehouse`` or ``$ANONYMIZE_WAREHOUSE``).

    Args:
        explicit: The ``--warehouse`` option, or None.

    Returns:
        True when either is set.
    """
    return explicit is not None or bool(os.environ.get("ANONYMIZE_WAREHOUSE"))


def run_warehouse(explicit: str | None = None) -> Path:
    """The warehouse root a run's session will have, found before the session starts.

    As :func:`get_session` resolves it: a running session's (reused as it is), else
    the ``spark.sql.warehouse.dir`` spark-submit set, else :func:`warehouse_root`.

    Args:
        explicit: The ``--warehouse`` option, or None.

    Returns:
        The warehouse root.
    """
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return session_warehouse(active)
    submitted = _submitted_conf().get("spark.sql.warehouse.dir")
    if submitted:
        return Path(submitted.removeprefix("file:").removeprefix("//")
                    if submitted.startswith("file:") else submitted)  # fmt: skip
    return warehouse_root(explicit)


def session_warehouse(spark: SparkSession) -> Path:
    """The warehouse root of a running session (its ``spark.sql.warehouse.dir``).

    Args:
        spark: The running session.

    Returns:
        The warehouse directory, with a ``file:`` scheme stripped.
    """
    raw = spark.conf.get("spark.sql.warehouse.dir")
    return Path(raw.removeprefix("file:").removeprefix("//") if raw.startswith("file:") else raw)


def import_gx_in_background() -> None:
    """Start importing Great Expectations in a daemon thread, overlapping Spark's start.

    GX takes about 6 s to import on this project's machine, and a run (every Airflow
    task is a new process) needs it only once its session is up, which takes about
    as long: importing it meanwhile saves most of one of the two. Python's
    per-module import locks make the main thread's own import wait until the
    thread's has finished, so GX is only ever used complete. pyspark.sql, the one
    large package both threads import, is imported here first so the two never
    import it at once. Nothing happens when GX is already imported.
    """
    import importlib
    import threading

    import pyspark.sql  # noqa: F401 (see above)

    module = "pipelines.quality.expectations"  # GX, with the custom expectations
    if module not in sys.modules:
        threading.Thread(
            target=importlib.import_module, args=(module,), name="import GX", daemon=True
        ).start()


def get_session(
    master: str | None = None,
    conf: dict[str, str] | None = None,
    warehouse: str | None = None,
    app_name: str = "anonymize",
) -> SparkSession:
    """Return the active session, or build a local one with a Hive/Derby catalog.

    An active session is reused as it is: only ``conf`` is applied to it, and
    ``master``, ``warehouse`` and ``app_name`` are ignored. A new session never
    overrides what spark-submit or a profile already set.

    Args:
        master: Spark master URL; default ``local[*]`` unless spark-submit set one.
        conf: Extra Spark properties, applied last.
        warehouse: The warehouse root (see :func:`warehouse_root`), created if missing;
            it also holds the Derby metastore.
        app_name: The Spark application name.

    Returns:
        The session, with Hive support and log level WARN.
    """
    from pyspark.sql import SparkSession

    from pipelines import jars

    active = SparkSession.getActiveSession()
    if active is not None:
        for k, v in (conf or {}).items():
            active.conf.set(k, v)
        return active

    # Python workers must use this interpreter (the virtualenv), not whatever
    # `python3` is first on PATH, or pandas UDFs fail to import pandas.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    submitted = _submitted_conf()
    root = warehouse_root(warehouse)
    defaults = {
        "spark.sql.warehouse.dir": str(root),
        "spark.hadoop.javax.jdo.option.ConnectionURL": (
            f"jdbc:derby:;databaseName={root / 'metastore_db'};create=true"
        ),
        "spark.driver.extraJavaOptions": (
            f"-Dderby.system.home={root} -Dlog4j2.configurationFile={_LOG4J}"
        ),
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.sources.partitionColumnTypeInference.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        # Iceberg and Delta Lake, when `make jars` fetched them (pipelines.jars).
        **jars.session_conf(),
    }
    effective = master or submitted.get("spark.master") or "local[*]"
    shuffle = local_shuffle_partitions(effective)
    if shuffle is not None:
        defaults["spark.sql.shuffle.partitions"] = str(shuffle)
        # Delta Lake rebuilds a table version's file list with 50 tasks by default:
        # about 4 s of a publish on 2 cores, 1 s with this many.
        defaults["spark.databricks.delta.snapshotPartitions"] = str(shuffle)
    builder = SparkSession.builder.appName(app_name)
    for k, v in defaults.items():
        if k not in submitted:  # never override what spark-submit / a profile set
            builder = builder.config(k, v)
    if master:
        builder = builder.master(master)
    elif "spark.master" not in submitted:
        builder = builder.master("local[*]")
    for k, v in (conf or {}).items():
        builder = builder.config(k, v)
    spark = builder.enableHiveSupport().getOrCreate()
    # WARN unless the caller or spark-submit asked for a level (`--log-level`,
    # `--conf spark.log.level=INFO`).
    level = (conf or {}).get("spark.log.level") or submitted.get("spark.log.level") or "WARN"
    spark.sparkContext.setLogLevel(level.upper())
    return spark


def local_shuffle_partitions(master: str) -> int | None:
    """Shuffle partitions for a local-mode session: twice its cores (Spark's 200 otherwise).

    Spark's default of 200 shuffle partitions is sized for clusters; on a laptop's
    local mode every shuffle of a small partition then runs 200 tiny tasks (the
    k-anonymity stage of a 1,000-row demo partition took 41 s instead of 15 s).
    Cluster masters keep Spark's default (or what the cluster sets).

    Args:
        master: The session's master URL.

    Returns:
        ``2 × cores`` (``local`` is 1 core, ``local[*]`` every CPU, ``local[N, F]`` N),
        or None for a non-local master.
    """
    m = re.fullmatch(r"local(?:\[(\*|\d+)(?:,\s*\d+)?\])?", master.strip())
    if m is None:
        return None
    cores = m.group(1)
    if cores is None:  # "local": one core
        n = 1
    elif cores == "*":
        n = os.cpu_count() or 1
    else:
        n = int(cores)
    return max(2, 2 * n)


def _submitted_conf() -> dict[str, str]:
    """Spark properties set by ``spark-submit`` (empty for in-process runs).

    Under spark-submit the Python driver talks to an already running JVM whose system
    properties hold ``--master``, ``--conf`` and ``--properties-file`` settings.
    """
    if not os.environ.get("PYSPARK_GATEWAY_PORT"):
        return {}
    from pyspark import SparkConf, SparkContext

    SparkContext._ensure_initialized()
    return dict(SparkConf().getAll())
