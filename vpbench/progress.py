"""Progress a person can watch and a log file can hold: bars on a terminal, whole lines elsewhere.

tqdm redraws its bar with carriage returns wherever it writes, a redirected log included, where they
pile up as one enormous line. So a bar is drawn only when standard error is a terminal; elsewhere long
work reports itself in plain lines instead (one per validation, one per finished run or data set),
and ``show=False`` (``--no-progress``) silences both.
"""

from __future__ import annotations

import sys
from typing import Iterable

from tqdm import tqdm


def interactive() -> bool:
    """Whether standard error is a terminal (where a bar can redraw itself in place)."""
    return sys.stderr.isatty()


def bar(iterable: Iterable | None = None, *, show: bool = True, **options) -> tqdm:
    """A tqdm bar over ``iterable``, drawn only when ``show`` and standard error is a terminal."""
    return tqdm(iterable, disable=not (show and interactive()), **options)


def line(text: str, *, show: bool = True) -> None:
    """``text`` as one line on standard error where no bar is drawn (not a terminal; a bar shows it there)."""
    if show and not interactive():
        print(text, file=sys.stderr, flush=True)
