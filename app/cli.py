"""The `jatsr` console script: no subcommand opens the desktop app, otherwise the engine CLI.

`jatsr` and `jatsr FILE...` open the window (with the files queued); `jatsr upsample ...`,
`jatsr train ...` etc. run headless and never import Qt.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

HEADLESS = {"upsample", "train", "export", "eval", "models", "info", "-h", "--help",
            "-v", "--verbose"}


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch to the GUI or to engine.cli."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in HEADLESS:
        from engine.cli import main as engine_main

        return engine_main(args)
    from app.__main__ import main as app_main

    return app_main(args)


if __name__ == "__main__":
    sys.exit(main())
