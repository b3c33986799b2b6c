"""Pure views: they emit intent signals and expose show_* methods; no engine calls."""
