"""Which options an embedding function's stored or received config may carry: one allow-list per provider.

A collection's config comes back from places the process does not control: a store
folder someone handed over, a catalog edited by hand, a ``vectordb serve`` server.
Rebuilding a function from it must never make the process load or run code
(``trust_remote_code``, a pickle loaded with ``weights_only=False``, an ONNX backend,
hub kernels, ...). So each built-in provider class declares, as ``CONFIG_OPTIONS``, the
options a config may hold and the values each may have (:data:`Spec`); everything else
is refused:

* :func:`persistable` is what ``get_config()`` returns: the allowed part only (the
  constructor warns, naming what will not be stored).
* :func:`allowed_config` is what ``build_from_config()`` checks first: a config with
  a refused option raises :class:`~vectordb.errors.RefusedConfigError` naming each
  option and how to opt in (pass the function itself to ``get_collection``).
* :func:`comparable` is the part that identifies the function, so that a function
  passed by its caller (refused options and all) matches the collection's stored one.

An allow-list, not a deny-list: a new option of a provider's SDK is refused until it is
judged safe and added to the provider's ``CONFIG_OPTIONS``.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Union

from vectordb.errors import RefusedConfigError

logger = logging.getLogger(__name__)

Check = Callable[[Any], bool]
"""True when a value is safe to store and honour."""


class OnlyDefault:
    """An option honoured only at its harmless default, which is dropped (e.g. ``trust_remote_code=False``)."""

    def __init__(self, default: Any) -> None:
        self.default = default

    def __call__(self, value: Any) -> bool:
        return value is self.default or (type(value) is type(self.default) and value == self.default)


Spec = Mapping[str, Union[Check, "Spec"]]
"""Option name -> a :data:`Check` of its value, or the :data:`Spec` of a nested dict of options."""


def is_str(value: Any) -> bool:
    return isinstance(value, str)


def is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def optional(check: Check) -> Check:
    """``check``, or None."""
    return lambda value: value is None or check(value)


def one_of(*allowed: Any) -> Check:
    """One of ``allowed`` (compared as JSON values, so True is not 1)."""
    return lambda value: any(type(value) is type(a) and value == a for a in allowed)


def str_dict(value: Any) -> bool:
    """A dict of strings to strings (e.g. prompts)."""
    return isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())


def split_options(config: Mapping[str, Any], spec: Spec, prefix: str = "") -> Tuple[Dict[str, Any], List[str]]:
    """``(allowed, refused)``: the options ``spec`` allows, and the dotted names of the others.

    A value that is not JSON-safe is left out without being refused (it cannot be stored);
    an option at its :class:`OnlyDefault` is left out too. A nested dict that is left
    empty is dropped, so ``{"model_kwargs": {}}`` and no ``model_kwargs`` compare equal.
    """
    allowed: Dict[str, Any] = {}
    refused: List[str] = []
    for key, value in config.items():
        path = f"{prefix}{key}"
        rule = spec.get(key) if isinstance(key, str) else None
        if rule is None:
            refused.append(f"{path}={_show(value)}")
        elif isinstance(rule, Mapping):
            if not isinstance(value, Mapping):
                refused.append(f"{path}={_show(value)}")
                continue
            inner, inner_refused = split_options(value, rule, f"{path}.")
            refused.extend(inner_refused)
            if inner:
                allowed[key] = inner
        elif not json_safe(value):
            continue
        elif isinstance(rule, OnlyDefault) and rule(value):
            continue
        elif rule(value):
            allowed[key] = value
        else:
            refused.append(f"{path}={_show(value)}")
    return allowed, refused


def persistable(cls: Any, config: Mapping[str, Any], *, warn: bool = False) -> Dict[str, Any]:
    """The part of ``config`` that ``cls.get_config()`` may return (by ``cls.CONFIG_OPTIONS``).

    With ``warn``, logs a warning naming the options left out (the constructor does, once).
    """
    allowed, refused = split_options(config, cls.CONFIG_OPTIONS)
    if refused and warn:
        logger.warning(
            "%s: %s will not be stored with the collection (a stored config never carries options that may "
            "load or run code); pass the function again with get_collection(name, embedding_function=...)",
            cls.__name__,
            ", ".join(refused),
        )
    return allowed


def allowed_config(cls: Any, config: Any) -> Dict[str, Any]:
    """``config``'s options if ``cls.CONFIG_OPTIONS`` allows every one; what ``build_from_config`` builds from.

    Raises:
        RefusedConfigError: the config holds an option that is not allowed (or is not a
            JSON object); the error names each such option and how to opt in.
    """
    if not isinstance(config, Mapping):
        refused = [f"a config that is not a JSON object ({_show(config)})"]
    else:
        allowed, refused = split_options(config, cls.CONFIG_OPTIONS)
        if not refused:
            return allowed
    raise RefusedConfigError(refusal_message(cls, refused), function=cls.name(), options=refused)


def refusal_message(cls: Any, refused: List[str], collection: Optional[str] = None) -> str:
    """What a refused config says: which options, why, and how the caller opts in."""
    where = f"collection {collection!r}: " if collection is not None else ""
    target = repr(collection) if collection is not None else "name"
    return (
        f"{where}the stored config of embedding function {cls.name()!r} holds {', '.join(refused)}, which "
        "vectordb never honours from a stored or received config (it may load or run code, or it is not "
        f"on {cls.__name__}'s list of safe options). To use it, build the function yourself and pass it: "
        f"get_collection({target}, embedding_function={cls.__name__}(...))"
    )


def comparable(config: Any, spec: Optional[Spec]) -> Any:
    """The part of ``config`` that says which function it is (its refused options dropped)."""
    if spec is None or not isinstance(config, Mapping):
        return config
    return split_options(config, spec)[0]


def json_safe(value: Any) -> bool:
    """Whether ``value`` can be stored as JSON."""
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def _show(value: Any, limit: int = 80) -> str:
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
