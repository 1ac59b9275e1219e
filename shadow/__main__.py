"""`shadow` and `python -m shadow`: the command line, or one line saying which extra it needs.

The lean install (`pip install shadow-scoring`, the tap and the shared core) has no typer or
rich: `shadow --version` still answers, anything else says how to get the command.
"""

from __future__ import annotations

import sys
from importlib import metadata

from shadow.extras import DISTRIBUTION


def version() -> str:
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def main() -> None:
    try:
        import rich  # noqa: F401
        import typer  # noqa: F401
    except ImportError:
        if sys.argv[1:] == ["--version"]:
            print(f"shadow {version()}")
            return
        print(
            f"error: the shadow command needs the cli extra: pip install '{DISTRIBUTION}[cli]' "
            f"(or [worker], [analysis], [all])",
            file=sys.stderr,
        )
        sys.exit(2)
    from shadow.app.cli import main as run

    run()


if __name__ == "__main__":
    main()
