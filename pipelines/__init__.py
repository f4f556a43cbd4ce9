"""Spark-native anonymization pipeline.

Rooms:
    spec         typed, frozen pipeline specs loaded from YAML (no Spark import).
    keys         secret resolution by reference (env var / key file) and fingerprints.
    session      SparkSession factory (local default, profiles, Hive/Derby catalog).
    desensitize  column actions compiled to native Spark SQL expressions.
    storage      partition reads, run-scoped staging, atomic publish, manifests.
    runner       one run of one partition, end to end.
    demo         a synthetic raw warehouse with realistic PII.
    cli          the ``anonymize`` command.
"""

__version__ = "0.1.0"
