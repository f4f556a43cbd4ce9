"""The ``anonymize`` command.

Exit codes: 0 success; 1 run failed; 2 usage error; 3 bad spec or key;
4 missing input; 5 quality gate failed; 6 privacy budget exceeded;
7 partition busy (another run holds it; nothing was read or written).

Rooms: ``common`` (the Typer apps, consoles, one-line errors, options), ``runs``
(run, rerun, validate, kanon, demo, build-zip), ``dp`` (release, budget), ``ops``
(status, quarantine, quality docs), ``spec`` (spec validate, spec schema).
"""

from __future__ import annotations

import sys

from pipelines.cli import dp, ops, runs, spec  # noqa: F401 (register the commands)
from pipelines.cli.common import app

__all__ = ["app", "main"]


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point.

    Args:
        argv: The arguments (default: the process's).

    Returns:
        The exit code.
    """
    try:
        app(args=argv, prog_name="anonymize", standalone_mode=True)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
