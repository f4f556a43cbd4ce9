"""Great Expectations Data Docs for published partitions, in a site under the warehouse.

Layout (``<warehouse>/_quality/``): ``store/`` holds the GX expectation suites and
the (sanitized) validation results of published outputs; ``data_docs/`` is the HTML
site GX builds from them, ``data_docs/index.html`` its entry page. Only output-gate
results of partitions that passed are added: raw data and failed outputs never
reach the site, and every result is already reduced to counts by the gate.

Runs of different partitions may finish at the same time; a file lock serializes
the store update and the site build (GX rewrites the index page on every build).
"""

from __future__ import annotations

import datetime as dt
import fcntl
from pathlib import Path
from typing import Any

from pipelines.storage import layout


def site_dir(warehouse: Path) -> Path:
    """Directory of the Data Docs site.

    Args:
        warehouse: The warehouse root.

    Returns:
        ``<warehouse>/_quality/data_docs``.
    """
    return Path(warehouse) / layout.QUALITY / "data_docs"


def index_path(warehouse: Path) -> Path:
    """Entry page of the Data Docs site.

    Args:
        warehouse: The warehouse root.

    Returns:
        ``<warehouse>/_quality/data_docs/index.html``.
    """
    return site_dir(warehouse) / "index.html"


def _context(root: Path) -> Any:
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    from pipelines.quality import expectations  # noqa: F401 (custom expectations render)

    def fs(sub: str) -> dict[str, Any]:
        return {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(root / sub)}

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
    )
    config.stores["expectations_store"] = {
        "class_name": "ExpectationsStore",
        "store_backend": fs("store/expectations"),
    }
    config.stores["validation_results_store"] = {
        "class_name": "ValidationResultsStore",
        "store_backend": fs("store/validations"),
    }
    config.data_docs_sites = {
        "pipelines": {
            "class_name": "SiteBuilder",
            "store_backend": fs("data_docs"),
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        }
    }
    return gx.get_context(project_config=config)


def add_published(warehouse: Path, gx_result: Any, partition: str, run_id: str) -> Path:
    """Add one published partition's output-gate result to the site; rebuild it.

    Concurrent runs are serialised by an exclusive lock on ``<warehouse>/_quality/.lock``;
    only the new result's page and the index are rendered.

    Args:
        warehouse: The warehouse root.
        gx_result: The output gate's GX validation result.
        partition: The partition's directory name (``dt=YYYY-MM-DD``), the batch identifier.
        run_id: The published run, the result's run name.

    Returns:
        The site's index page.
    """
    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    root = Path(warehouse) / layout.QUALITY
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        ctx = _context(root)
        name = gx_result.suite_name
        expectations = [r.expectation_config.to_domain_obj() for r in gx_result.results]
        suite = gx.ExpectationSuite(name=name, expectations=expectations)
        ctx.suites.add_or_update(suite)
        key = ValidationResultIdentifier(
            ExpectationSuiteIdentifier(name),
            RunIdentifier(run_name=run_id, run_time=dt.datetime.now(dt.UTC)),
            partition,
        )
        ctx.validation_results_store.set(key, gx_result)
        # Render only the new page (and the index, which lists every stored result).
        ctx.build_data_docs(resource_identifiers=[key])
    return index_path(warehouse)
