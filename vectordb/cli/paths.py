"""Which store folder a command opens, where that choice came from, and the error when no store is there.

A command that opens a store takes ``--path DIR``; without it, the folder named by the
``VECTORDB_PATH`` environment variable; without that, ``./vectordb_data``. A newcomer who
left out ``--path`` must learn from the error which folder was tried and why, and how
to name another one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping, Optional

from vectordb.errors import InvalidArgumentError
from vectordb.persistence.database import DB_FILE

DEFAULT_PATH = "./vectordb_data"
"""The store folder of a command given neither ``--path`` nor ``$VECTORDB_PATH``."""
PATH_ENV = "VECTORDB_PATH"
"""The environment variable that names the store folder when ``--path`` is not given."""

FROM_OPTION = "--path"
FROM_ENV = "$" + PATH_ENV
FROM_DEFAULT = "default"

PATH_HELP = f"the store's folder (default: ${PATH_ENV} if set, else {DEFAULT_PATH})"
"""The help text of every command's ``--path``."""


class NoStoreError(InvalidArgumentError):
    """A command that only reads was pointed at a folder that holds no store."""


@dataclass(frozen=True)
class StorePath:
    """The folder a command opens and where it came from (``--path``, ``$VECTORDB_PATH`` or the default)."""

    path: str
    source: str


def resolve(given: Optional[str], environ: Optional[Mapping[str, str]] = None) -> StorePath:
    """The store folder for ``--path`` ``given`` (None when left out), from the environment or the default."""
    if given is not None:
        return StorePath(given, FROM_OPTION)
    env = os.environ if environ is None else environ
    from_env = env.get(PATH_ENV)
    if from_env:
        return StorePath(from_env, FROM_ENV)
    return StorePath(DEFAULT_PATH, FROM_DEFAULT)


def holds_no_store(path: str) -> bool:
    """Whether ``path`` is a missing folder, or a folder without a store's database file."""
    if os.path.exists(path) and not os.path.isdir(path):
        return False  # a file: the library's own error says so
    return not os.path.isfile(os.path.join(path, DB_FILE))


def no_store_error(where: StorePath) -> NoStoreError:
    """The one-line error for a read of ``where`` that holds no store: which folder, why that one, what to do."""
    folder = os.path.abspath(where.path)
    choose = f"name the store's folder with --path DIR or the {PATH_ENV} environment variable"
    if where.source == FROM_DEFAULT:
        why = f"the default folder {DEFAULT_PATH}, used because neither --path nor ${PATH_ENV} was given"
    elif where.source == FROM_ENV:
        why = f"from ${PATH_ENV}={where.path}"
    else:
        why = f"from --path {where.path}"
    return NoStoreError(f"no store at {folder} ({why}); {choose}")
