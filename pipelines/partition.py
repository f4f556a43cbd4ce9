"""The partition value type: one calendar day of a table, parsed once.

Every partition value that enters the product (the CLI's ``--partition``, the
spark-submit jobs, the DAG's ``{{ ds }}``, ledger rows) goes through
:meth:`Partition.parse`, which accepts the canonical ``YYYY-MM-DD`` form only: the
basic ISO form ``20261125`` or a week date ``2026-W48-3`` would publish a second
directory for the same day.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from pipelines.errors import SpecError

_CANONICAL = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_day(value: str, where: str = "--partition") -> dt.date:
    """Parse a canonical ``YYYY-MM-DD`` day.

    Args:
        value: The text to parse.
        where: The option or spec path named in the error.

    Returns:
        The calendar day.

    Raises:
        SpecError: ``value`` is not a valid date written ``YYYY-MM-DD``.
    """
    if isinstance(value, str) and _CANONICAL.fullmatch(value):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise SpecError(f"{where}: '{value}' is not an ISO date (YYYY-MM-DD)")


def dirname_value(column: str, name: str) -> str | None:
    """The raw value of a ``<column>=<value>`` directory name, as stored (not parsed).

    Args:
        column: The partition column.
        name: A directory name or path segment.

    Returns:
        The value, or None when ``name`` is not one of ``column``'s.
    """
    prefix = f"{column}="
    return name[len(prefix):] if name.startswith(prefix) else None


@dataclass(frozen=True, order=True)
class Partition:
    """One partition of a table partitioned by a date column.

    Attributes:
        column: The partition column's name (e.g. ``dt``).
        day: The partition's calendar day.

    Example:
        >>> p = Partition.parse("dt", "2026-11-25")
        >>> p.value, p.dirname, p.shifted(-1).value
        ('2026-11-25', 'dt=2026-11-25', '2026-11-24')
    """

    column: str
    day: dt.date

    @classmethod
    def parse(cls, column: str, value: str, where: str = "--partition") -> Partition:
        """The partition of ``column`` whose value is ``value``.

        A ``value`` that is not a canonical ISO date raises SpecError (from ``parse_day``).

        Args:
            column: The partition column.
            value: A canonical ``YYYY-MM-DD`` date.
            where: The option or spec path named in an error.

        Returns:
            The partition.
        """
        return cls(column, parse_day(value, where))

    @classmethod
    def from_dirname(cls, column: str, name: str, where: str) -> Partition | None:
        """The partition a ``<column>=<value>`` directory name stands for.

        A value that is not a canonical ISO date raises SpecError (from ``parse_day``).

        Args:
            column: The partition column.
            name: A directory name or path segment.
            where: The path named in an error.

        Returns:
            The partition, or None when ``name`` is not one of ``column``'s.
        """
        value = dirname_value(column, name)
        return None if value is None else cls.parse(column, value, where)

    @property
    def value(self) -> str:
        """The partition value as stored in the table (``YYYY-MM-DD``)."""
        return self.day.isoformat()

    @property
    def dirname(self) -> str:
        """The Hive-style directory name, ``<column>=<value>``."""
        return f"{self.column}={self.value}"

    def shifted(self, days: int) -> Partition:
        """The partition ``days`` days later (earlier if negative).

        Args:
            days: Days to add.

        Returns:
            The other partition of the same column.
        """
        return Partition(self.column, self.day + dt.timedelta(days=days))

    def __str__(self) -> str:
        """The value, so a partition reads as its date in messages.

        Returns:
            The partition value, ``YYYY-MM-DD``.
        """
        return self.value
