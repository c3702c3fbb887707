"""The embedding functions under Chroma's path (``chromadb.utils.embedding_functions``).

Every public name of :mod:`vectordb.embedding_functions`, re-exported: the same
classes, so ``isinstance`` and persisted names agree whichever path imported them.
"""

from vectordb.embedding_functions import *  # noqa: F401,F403 (a re-export by design)
from vectordb.embedding_functions import __all__  # noqa: F401
