"""Where data and secrets come from: table references and key references."""

from __future__ import annotations

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


class TableRef(Frozen):
    """A Spark catalog table (``table: db.name``) or a path with a ``format``.

    Relative paths resolve against the warehouse root (``--warehouse``, the
    ``ANONYMIZE_WAREHOUSE`` variable, or ``./warehouse``).
    """

    table: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")
    path: str | None = None
    format: Literal["parquet", "csv"] = "parquet"
    options: dict[str, str] = Field(
        default_factory=dict, description="Extra reader/writer options (e.g. CSV 'header')."
    )

    @model_validator(mode="after")
    def _one_location(self) -> TableRef:
        if (self.table is None) == (self.path is None):
            raise ValueError("give exactly one of 'table' or 'path'")
        return self

    @property
    def display(self) -> str:
        """Human-readable location (table name or ``format:path``)."""
        return self.table if self.table else f"{self.format}:{self.path}"
