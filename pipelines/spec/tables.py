"""Where data and secrets come from: table references and key references."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, model_validator

from pipelines.spec.base import Frozen


class KeyRef(Frozen):
    """A secret referenced by name: an environment variable or a key file, never inline.

    ``encoding`` says how the referenced text becomes key bytes: ``utf8`` takes the
    text as is (what ``hmac.new(os.environ[NAME].encode(), ...)`` does), ``hex`` and
    ``base64`` decode it. Surrounding whitespace (a trailing newline in a key file)
    is stripped before decoding.
    """

    env: str | None = Field(None, description="Environment variable holding the key.")
    file: str | None = Field(None, description="Path of a file holding the key.")
    encoding: Literal["utf8", "hex", "base64"] = "utf8"
    unsafe_permissions: bool = Field(
        False,
        description="Accept a key file that group or others may read or write (refused "
        "by default, as ssh refuses such private keys).",
    )

    @model_validator(mode="after")
    def _one_source(self) -> KeyRef:
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of 'env' or 'file'")
        return self


_SECRET_PROPERTY = re.compile(r"(?i)password|secret|token|credential|private")
_URI_PASSWORD = re.compile(r"(?i)://[^/@:]+:[^/@]+@|[?&;]password=")
_OBJECT_STORE = re.compile(r"(?i)^(s3a?|gs|abfss?|wasbs?|oss)://")


class CatalogRef(Frozen):
    """The Iceberg catalog holding a table (``format: iceberg``).

    ``hadoop`` (the default) keeps the catalog's metadata in the table directories
    under ``warehouse`` (default ``<warehouse root>/iceberg``): nothing to run, one
    writer machine. ``jdbc`` keeps it in a database (``uri``: ``jdbc:sqlite:…`` or
    ``jdbc:postgresql://…``, whose JDBC driver must be on the classpath) and ``rest``
    asks an Iceberg REST catalog service (``uri``), the choices for production. The
    catalog is registered in the session as Spark catalog ``name``; ``properties`` are
    passed to it as ``spark.sql.catalog.<name>.<key>`` (``io-impl``, ``s3.endpoint``,
    ``client.region``). A secret (a key naming a password, secret, token, credential
    or private key) is given by reference, ``{env: VAR}`` or ``{file: PATH}``, never
    inline, and a ``uri`` carries no password. Source: the Apache Iceberg Spark
    configuration, https://iceberg.apache.org/docs/latest/spark-configuration/.
    """

    type: Literal["hadoop", "jdbc", "rest"] = "hadoop"
    name: str = Field("anonymize_iceberg", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    uri: str | None = Field(None, description="The JDBC URL or the REST service's URL.")
    warehouse: str | None = Field(
        None, description="Where table data goes (default <warehouse root>/iceberg)."
    )
    properties: dict[str, str | KeyRef] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _uri_when_needed(self) -> CatalogRef:
        for key, value in self.properties.items():
            if isinstance(value, str) and _SECRET_PROPERTY.search(key):
                raise ValueError(
                    f"properties.{key}: give a secret by reference ({{env: VAR}} or "
                    "{file: PATH}), never inline"
                )
        if self.uri and _URI_PASSWORD.search(self.uri):
            raise ValueError(
                "uri: holds a password; give it by reference in properties (e.g. "
                "jdbc.password: {env: VAR})"
            )
        if self.type == "hadoop" and self.warehouse and _OBJECT_STORE.match(self.warehouse):
            raise ValueError(
                "warehouse: a hadoop catalog needs a filesystem with atomic rename; on an "
                "object store use a jdbc or rest catalog"
            )
        if self.type != "hadoop" and not self.uri:
            raise ValueError(f"a {self.type} catalog needs 'uri'")
        if self.type == "hadoop" and self.uri:
            raise ValueError("a hadoop catalog has no 'uri' (it lives in 'warehouse')")
        if self.name == "spark_catalog":
            raise ValueError("'spark_catalog' is the session catalog; name the catalog otherwise")
        return self


#: Formats whose tables commit atomically with snapshots (``pipelines.storage.formats``).
TABLE_FORMATS = ("iceberg", "delta")


class TableRef(Frozen):
    """A table: a catalog table (``table:``) or a path, with its ``format``.

    ``parquet`` and ``csv``: a Spark catalog table (``table: db.name``) or a
    directory tree (``path:``). ``iceberg``: a table (``table: namespace.name``) of
    the Iceberg ``catalog`` (a Hadoop catalog in the warehouse by default).
    ``delta``: a Delta Lake table by path (``path:``) or in the session catalog
    (``table: db.name``). Relative paths resolve against the warehouse root
    (``--warehouse``, the ``ANONYMIZE_WAREHOUSE`` variable, or ``./warehouse``).
    """

    table: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")
    path: str | None = None
    format: Literal["parquet", "csv", "iceberg", "delta"] = "parquet"
    catalog: CatalogRef | None = Field(
        None, description="The Iceberg catalog (format: iceberg only; default: hadoop)."
    )
    options: dict[str, str] = Field(
        default_factory=dict, description="Extra reader/writer options (e.g. CSV 'header')."
    )
    keep_versions: int = Field(
        1,
        ge=1,
        le=1000,
        description="Earlier published versions of each partition a parquet or csv sink "
        "keeps for `anonymize restore` (Iceberg and Delta keep snapshots until `gc`).",
    )

    @model_validator(mode="after")
    def _one_location(self) -> TableRef:
        if (self.table is None) == (self.path is None):
            raise ValueError("give exactly one of 'table' or 'path'")
        if self.format == "iceberg" and self.table is None:
            raise ValueError("an iceberg table is named by 'table: namespace.name', not a path")
        if self.catalog is not None and self.format != "iceberg":
            raise ValueError(f"'catalog' is for format: iceberg, not {self.format}")
        if self.format == "delta" and self.path and _OBJECT_STORE.match(self.path):
            raise ValueError(
                "path: Delta on an object store needs Hadoop's S3A and a log store, which are "
                "not shipped; use format: iceberg with a jdbc or rest catalog there"
            )
        if self.format in TABLE_FORMATS and self.options:
            raise ValueError(f"'options' are for parquet and csv tables, not {self.format}")
        if self.format in TABLE_FORMATS and "keep_versions" in self.model_fields_set:
            raise ValueError(
                f"'keep_versions' is for parquet and csv tables; {self.format} keeps earlier "
                "snapshots until `anonymize gc` expires them"
            )
        return self

    @property
    def iceberg_catalog(self) -> CatalogRef:
        """The Iceberg catalog (the default Hadoop catalog when none is given)."""
        return self.catalog or CatalogRef()

    @property
    def display(self) -> str:
        """Human-readable location (``db.name``, ``format:path``, ``iceberg:catalog.ns.name``)."""
        if self.format == "iceberg":
            return f"iceberg:{self.iceberg_catalog.name}.{self.table}"
        if self.format == "delta":
            return f"delta:{self.table or self.path}"
        return self.table if self.table else f"{self.format}:{self.path}"
