"""Error hierarchy. Messages name spec paths, columns and partitions, never cell values."""

from __future__ import annotations


class PipelinesError(Exception):
    """Root of every error this package raises on purpose."""

    #: Process exit code used by the CLI and the spark-submit jobs.
    exit_code = 1


class SpecError(PipelinesError, ValueError):
    """The spec is invalid or does not fit the source (bad field, bad column, bad type)."""

    exit_code = 3


class KeyMaterialError(SpecError):
    """A referenced secret is missing, unreadable or too weak."""


class MissingInputError(PipelinesError):
    """The source table or partition does not exist."""

    exit_code = 4


class QualityGateFailed(PipelinesError):
    """A data-quality gate failed; nothing was published."""

    exit_code = 5


class BudgetExceededError(PipelinesError):
    """A DP release would exceed the privacy budget; nothing was computed."""

    exit_code = 6


class PublishError(PipelinesError):
    """Staging or publishing failed; the published table is unchanged."""


class InternalError(AssertionError):
    """An invariant was violated: this is probably a bug in pipelines."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        """Append a request to report the bug to the message.

        Args:
            message: What invariant was violated.
        """
        super().__init__(f"{message} (this is probably a bug in pipelines; please report it)")
