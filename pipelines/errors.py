"""Error hierarchy. Messages name spec paths, columns and partitions, never cell values."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import NoReturn


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


class PartitionBusyError(PipelinesError):
    """Another run holds the partition's lease; nothing was read or written."""

    exit_code = 7


class PublishError(PipelinesError):
    """Staging or publishing failed; the published table is unchanged."""


class InternalError(AssertionError):
    """An invariant was violated: this is probably a bug in pipelines."""

    exit_code = 1

    def __str__(self) -> str:
        """The message with a request to report the bug.

        The request is added here, not stored in ``args``, so a pickled error (one
        raised in a Spark worker) does not gain it twice.

        Returns:
            The message.
        """
        return f"{super().__str__()}{_BUG_SUFFIX}"


# An error of this module's, as a Spark Python worker's traceback ends with it.
_WORKER_ERROR = re.compile(
    r"^pipelines\.errors\.(\w+): (.*?)(?=\n\s*\n|\n\tat |\nJVM stacktrace|\Z)", re.S | re.M
)
_BUG_SUFFIX = " (this is probably a bug in pipelines; please report it)"


def from_worker(exc: BaseException) -> BaseException:
    """The error a Spark Python worker raised, as the driver would have raised it.

    An error of ours raised inside ``mapInPandas``/``applyInPandas`` reaches the
    driver as a ``PythonException`` whose text is the worker's traceback followed by
    JVM frames. Its last line names our class and message (which names columns and
    spec paths, never values); this rebuilds that error so it gets its own one-line
    message and exit code.

    Args:
        exc: Any exception.

    Returns:
        The rebuilt error of this module, or ``exc`` itself when it is not one.
    """
    text = str(exc)
    if "pipelines.errors." not in text:
        return exc
    match = _WORKER_ERROR.search(text)
    cls = globals().get(match.group(1)) if match else None
    if not (isinstance(cls, type) and issubclass(cls, PipelinesError | InternalError)):
        return exc
    message = match.group(2).rstrip()
    return cls(message.removesuffix(_BUG_SUFFIX) if cls is InternalError else message)


@contextlib.contextmanager
def driver_errors() -> Iterator[None]:
    """Re-raise errors of ours that crossed a Spark worker boundary as themselves.

    Yields:
        Nothing. An error of ours raised in a Python worker is re-raised as itself
        (:func:`from_worker`); any other error propagates unchanged.
    """
    try:
        yield
    except Exception as exc:
        _reraise(exc)


def _reraise(exc: Exception) -> NoReturn:
    """Raise ``exc`` rebuilt by :func:`from_worker`, or unchanged when it is not ours."""
    rebuilt = from_worker(exc)
    raise rebuilt from (exc.__cause__ if rebuilt is exc else None)
