"""Expansion limits, counted on the bytes actually produced, never on header claims.

One `Budget` is shared by an archive and every archive nested in it (the nested
pipeline runs synchronously in the same process, so a ContextVar carries it):
a 42.zip-style bomb spreads its expansion over many small archives, each of
which looks harmless on its own. When the budget trips inside a nested archive,
the outermost archive is blocked too.
"""
from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

from ...cdr_errors_shim import LimitExceeded  # noqa: F401  (replaced below)
