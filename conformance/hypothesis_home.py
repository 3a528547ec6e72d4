"""Keeping hypothesis' files out of the user's tree.

Drawing property cases with hypothesis writes ``.hypothesis/`` into the current directory even with
``database=None``: hypothesis caches the constants it collects from local source files (its
"local constants" feature, ``hypothesis.internal.constants_ast``) in its storage directory, which
defaults to ``./.hypothesis``. Wrap the drawing in :func:`outside_the_tree` to put that storage under
the user's cache directory instead, unless the user chose a directory (``HYPOTHESIS_STORAGE_DIRECTORY``).

    with outside_the_tree():
        cases = plan_cases(plan)
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

ENV = "HYPOTHESIS_STORAGE_DIRECTORY"


def cache_dir() -> Path:
    """Where convspec keeps hypothesis' storage: $XDG_CACHE_HOME/convspec/hypothesis (~/.cache/...)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "convspec" / "hypothesis"


@contextlib.contextmanager
def outside_the_tree():
    """Within this block, hypothesis stores its files under cache_dir(), not ./.hypothesis; the
    previous setting is restored after it. A no-op when HYPOTHESIS_STORAGE_DIRECTORY is set."""
    if os.environ.get(ENV):
        yield
        return
    from hypothesis import configuration

    names = vars(configuration)
    key = "__hypothesis_home_directory"  # the module's own global (set_hypothesis_home_dir sets it)
    previous = names.get(key)
    configuration.set_hypothesis_home_dir(cache_dir())
    try:
        yield
    finally:
        configuration.set_hypothesis_home_dir(previous)
