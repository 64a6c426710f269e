"""Progress bars: tqdm's widget in a notebook, text in a terminal.

`UNMASK_PROGRESS=text` forces text bars even inside a notebook kernel: `make demo` runs the
notebooks headless and sets it, so that their training bars reach the console.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from tqdm import std
from tqdm.auto import tqdm as auto_tqdm


def progress_bar(iterable: Iterable | None = None, **kwargs) -> std.tqdm:
    """`tqdm.auto.tqdm(iterable, **kwargs)`, or the text bar when `UNMASK_PROGRESS=text`."""
    bar = std.tqdm if os.environ.get("UNMASK_PROGRESS") == "text" else auto_tqdm
    return bar(iterable, **kwargs)
