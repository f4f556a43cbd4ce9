"""Reading text (CSV) partitions: the spec's types, multi-line records, flagged rows.

Text formats have no schema of their own. A text partition is read with the spec's
declared types (other columns as strings), records may span lines (quoted
newlines), and a row that does not fit the schema is kept with its fields null and
flagged in the boolean column :data:`MALFORMED`, which the input gate counts (the
row's text is never exposed). Spark refuses queries on a corrupt-record column
unless its frame is persisted, so a flagged frame is persisted: pass it to
:func:`unpersist_source` after use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

#: A text source's flag column: true for a row that does not fit the read schema.
MALFORMED = "__anon_malformed"
_CORRUPT = "__anon_corrupt_record"


def read_text(
    spark: SparkSession, fmt: str, options: dict[str, str], path: str, types: dict[str, str]
) -> DataFrame:
    """A text location typed by the spec, multi-line records, malformed rows flagged.

    Args:
        spark: The session.
        fmt: The Spark source format (``csv``).
        options: Reader options (the table's, e.g. ``header``, ``sep``).
        path: The directory or file to read.
        types: Source column name -> declared Spark type name; others are strings.

    Returns:
        A persisted DataFrame with the file's columns and :data:`MALFORMED`.
    """
    from pyspark import StorageLevel
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType, StructField, StructType, _parse_datatype_string

    reader = spark.read.format(fmt).options(**{"multiLine": "true", **options})
    names = reader.load(path).columns  # the header: one record read, nothing inferred
    fields = [StructField(n, _parse_datatype_string(types.get(n, "string"))) for n in names]
    schema = StructType([*fields, StructField(_CORRUPT, StringType())])
    df = (
        reader.schema(schema)
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", _CORRUPT)
        .load(path)
    )
    flagged = df.withColumn(MALFORMED, F.col(_CORRUPT).isNotNull()).drop(_CORRUPT)
    return flagged.persist(StorageLevel.MEMORY_AND_DISK)


def without_flags(df: DataFrame) -> DataFrame:
    """The rows without a text source's :data:`MALFORMED` flag (the input gate counts it).

    Args:
        df: A frame ``Table.read_partition`` returned.

    Returns:
        The frame without the flag column.
    """
    return df.drop(MALFORMED) if MALFORMED in df.columns else df


def unpersist_source(df: DataFrame) -> None:
    """Free what ``Table.read_partition`` cached for a text source, if anything.

    Args:
        df: A frame ``Table.read_partition`` returned.
    """
    if df.storageLevel.useMemory or df.storageLevel.useDisk:
        df.unpersist()
