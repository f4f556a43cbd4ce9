"""What every ``anonymize`` command shares: the Typer apps, consoles, errors, options.

Logs go to stderr and carry run id, partition and counts, never cell values or
keys; with ``--json`` the last line on stdout is one JSON object.
"""

from __future__ import annotations

import logging
import sys
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console

from pipelines.errors import PipelinesError, from_worker

HELP = """The ``anonymize`` command.

Exit codes: 0 success; 1 run failed; 2 usage error; 3 bad spec or key;
4 missing input; 5 quality gate failed; 6 privacy budget exceeded;
7 partition busy (another run holds it; nothing was read or written).
"""

# Tracebacks never show local variables: they may hold cell values or key bytes.
app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help=HELP,
    pretty_exceptions_show_locals=False,
)
spec_app = typer.Typer(no_args_is_help=True, help="Validate specs and print their JSON Schema.")
app.add_typer(spec_app, name="spec")
quality_app = typer.Typer(no_args_is_help=True, help="Data-quality reports.")
app.add_typer(quality_app, name="quality")
budget_app = typer.Typer(no_args_is_help=True, help="The DP privacy-budget ledger.")
app.add_typer(budget_app, name="budget")
quarantine_app = typer.Typer(no_args_is_help=True, help="Partitions that failed a gate.")
app.add_typer(quarantine_app, name="quarantine")

err = Console(stderr=True, soft_wrap=True)  # never break an error line
out = Console(soft_wrap=True)


WarehouseOption = Annotated[
    str | None,
    typer.Option(help="Warehouse root (default $ANONYMIZE_WAREHOUSE or ./warehouse)."),
]
MasterOption = Annotated[str | None, typer.Option(help="Spark master URL (default local[*]).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print a JSON summary last.")]


LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LogLevelOption = Annotated[
    str | None,
    typer.Option(
        "--log-level",
        help="DEBUG, INFO, WARNING or ERROR for the product, Great Expectations and Spark "
        "(default: the product's progress and summary only, libraries at WARNING).",
    ),
]


def setup_logging(verbose: bool = False, level: str | None = None) -> None:
    """Send logs to stderr through rich: the product's only, unless asked for more.

    By default the product logs warnings (its progress shows on the status line and
    its summary is printed), and every library (Great Expectations, py4j) warnings
    too. ``verbose`` shows the product's INFO lines; ``level`` sets the product's
    *and* the libraries' level (Spark's follows through :func:`spark_conf`).

    Args:
        verbose: The product's INFO lines.
        level: A level name for everything (``--log-level``), or None.

    Raises:
        typer.BadParameter: An unknown level name (exit 2).
    """
    from rich.logging import RichHandler

    if level is not None and level.upper() not in LEVELS:
        raise typer.BadParameter(f"one of {', '.join(LEVELS)}", param_hint="--log-level")
    everything = level.upper() if level else "WARNING"
    product = level.upper() if level else ("INFO" if verbose else "WARNING")
    logging.basicConfig(
        level=everything,
        format="%(name)s: %(message)s",
        handlers=[RichHandler(console=err, show_path=False, show_time=False)],
        force=True,
    )
    logging.getLogger("pipelines").setLevel(product)
    for library in ("great_expectations", "py4j"):
        logging.getLogger(library).setLevel(everything)


def spark_conf(pairs: list[str], level: str | None) -> dict[str, str]:
    """``--conf`` pairs plus the Spark log level ``--log-level`` asks for.

    Args:
        pairs: The ``--conf key=value`` values.
        level: ``--log-level``, or None.

    Returns:
        Spark properties (``spark.log.level`` set from ``level`` unless given).
    """
    conf = parse_conf(pairs)
    if level:
        spark_level = {"WARNING": "WARN"}.get(level.upper(), level.upper())
        conf.setdefault("spark.log.level", spark_level)
    return conf


def parse_conf(pairs: list[str]) -> dict[str, str]:
    """``--conf key=value`` options as a dict.

    Args:
        pairs: The option values.

    Returns:
        Key -> value.

    Raises:
        typer.BadParameter: A pair without ``=`` (exit 2).
    """
    conf = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"expected key=value, got '{pair}'", param_hint="--conf")
        conf[key.strip()] = value
    return conf


def fail(exc: BaseException, what: str = "run") -> NoReturn:
    """Print one error line and exit with the error's code.

    Our own errors carry messages written to name columns and partitions only. Any
    other exception (Spark, IO) is reported by class and Spark error condition alone:
    Spark messages can quote cell values (e.g. CAST_INVALID_INPUT names the value).

    Args:
        exc: The error.
        what: The command, for the message.

    Raises:
        typer.Exit: Always, with the error's exit code.
    """
    exc = from_worker(exc)  # one of ours raised inside a Spark Python worker
    if isinstance(exc, PipelinesError | AssertionError):
        message = str(exc)
    else:
        condition = getattr(exc, "getCondition", lambda: None)()
        message = f"{what} failed: {type(exc).__name__}" + (f" [{condition}]" if condition else "")
    err.print(f"[bold red]error[/] ({type(exc).__name__}): {message}", highlight=False)
    raise typer.Exit(getattr(exc, "exit_code", 1))


def emit_json(payload: dict[str, Any]) -> None:
    """Write one JSON object as the last line of stdout.

    Args:
        payload: A JSON-ready mapping.
    """
    from pipelines.storage.files import to_json

    sys.stdout.write(to_json(payload) + "\n")
    sys.stdout.flush()
