"""Logging set-up shared by the command lines (``fusedata`` and ``fusedata train``).

A module of its own so that ``fusedata.cli`` (which registers ``train``) and
``fusedata.train.cli`` (which needs the same set-up) do not import each other.
"""

from __future__ import annotations

import logging
import os
import sys


def setup_logging(verbose: bool) -> None:
    """``[fusedata HH:MM:SS] message`` on stderr; DEBUG with ``verbose``, else INFO."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="[fusedata %(asctime)s] %(message)s", datefmt="%H:%M:%S", stream=sys.stderr,
    )
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
