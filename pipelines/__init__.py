"""Spark-native anonymization pipeline.

Rooms (one run of one partition reads top to bottom):
    spec         typed, frozen pipeline specs loaded from YAML (no Spark import).
    partition    the partition value type, parsed once (canonical YYYY-MM-DD).
    keys         secret resolution by reference (env var / key file); fingerprints only
                 in anything printable, never pickled.
    plan         the compiled run plan and its output contract, built before Spark work.
    desensitize  one operator per column action kind (``actions/``), registered by kind,
                 compiled to native Spark SQL; the stage as ``with_desensitized(plan)``.
    kanon        k-anonymity (Mondrian, l-diversity, t-closeness), verified independently.
    dp           differentially private releases: two-phase accounting, OpenDP mechanisms,
                 contribution bounding, group selection, the budget ledger.
    pii          the PII detection engine: entity catalogue, a native screen (a Java UDF
                 built at set-up), Python validators over candidate rows (gate,
                 ``scrub``, discovery).
    quality      Great Expectations gates built from the plan (PII scan via ``pii``); Data Docs.
    storage      one table interface (read, stage, publish atomically, versions, restore)
                 with path and Hive-catalog backends; every layout name in one module.
    records      typed records: gate results, run identity and state, quarantine notes.
    manifest     the versioned manifest published with every partition (one module).
    run_context  what the steps of one run share (session, tables, timings).
    runner       one run of one partition: plan -> read -> input gate -> transforms ->
                 stage -> output gate -> publish.
    checks       a gate, or the k-anonymity stage, on demand (publishes nothing).
    ops          status, quarantine handling, restore, gc of leftovers.
    discover     ``spec suggest``: profile a raw partition, draft a spec (counts only).
    report       the privacy/utility report pages, from manifests, ledger and released
                 tables only (Plotly figures, Jinja2 templates; no Spark).
    session      SparkSession factory (local default, profiles, Hive/Derby catalog).
    jars         the table formats' pinned jars, fetched once at set-up (never at run time).
    demo         a synthetic raw warehouse with realistic PII, and the whole pipeline on it.
    cli          the ``anonymize`` command.
    packaging    the ``--py-files`` zip.
"""

__version__ = "0.1.0"
