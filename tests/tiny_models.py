"""Tiny Sentence Transformers models built and saved locally, so tests run offline in seconds.

A 2-layer BERT with 32 hidden units over a small WordPiece vocabulary, wrapped as
``SentenceTransformer(modules=[Transformer, Pooling(mean)(, Normalize)])`` and saved the
way a real checkpoint is, so loading it exercises the real ``SentenceTransformer(path)`` path.
"""

from __future__ import annotations

from pathlib import Path

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = (
    "represent the document for retrieval question retrieving supporting documents science "
    "title a an of and in on with is are cat cats kitten dog sat mat stock market fell rose "
    "quantum physics proteins fold new study shows how 3d action slam : , . ? !"
).split()


def build_tiny_model(directory: Path, *, normalize: bool = False, seed: int = 0) -> Path:
    """Save a tiny random BERT sentence model under ``directory``; return its path."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    try:
        from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    except ImportError:  # sentence-transformers before 6
        from sentence_transformers.models import Normalize, Pooling, Transformer
    from sentence_transformers import SentenceTransformer

    hf_dir = directory / "hf"
    hf_dir.mkdir(parents=True)
    vocab = SPECIAL + sorted(set(WORDS))
    (hf_dir / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer = BertTokenizerFast.from_pretrained(str(hf_dir), do_lower_case=True)
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    BertModel(config).eval().save_pretrained(hf_dir)
    tokenizer.save_pretrained(hf_dir)

    transformer = Transformer(str(hf_dir), max_seq_length=128)
    modules = [transformer, Pooling(32, "mean")] + ([Normalize()] if normalize else [])
    out = directory / "st"
    SentenceTransformer(modules=modules, device="cpu").save(str(out))
    return out


MARKER_MODULE = '''"""Custom model code: importing this module leaves a marker file, so a test sees that it ran."""
from pathlib import Path

Path({marker!r}).write_text("imported")

from transformers import BertConfig, BertModel


class MarkerConfig(BertConfig):
    pass


class MarkerModel(BertModel):
    config_class = MarkerConfig
'''


def build_remote_code_model(directory: Path, marker: Path) -> Path:
    """A tiny sentence model whose config needs remote code: ``auto_map`` names ``modeling_marker.py``.

    Loading it with ``trust_remote_code=True`` imports that file (which writes ``marker``)
    and uses its ``MarkerModel``; without, transformers ignores the custom code. Returns its path.
    """
    import json

    model_dir = build_tiny_model(directory)
    config_file = model_dir / "config.json"
    config = json.loads(config_file.read_text(encoding="utf-8"))
    config["auto_map"] = {"AutoConfig": "modeling_marker.MarkerConfig", "AutoModel": "modeling_marker.MarkerModel"}
    config_file.write_text(json.dumps(config, indent=2), encoding="utf-8")
    (model_dir / "modeling_marker.py").write_text(MARKER_MODULE.format(marker=str(marker)), encoding="utf-8")
    return model_dir


def build_custom_module_model(directory: Path, marker: Path) -> Path:
    """A tiny sentence model whose ``modules.json`` names a module class in the folder's own code.

    sentence-transformers before 6 imports such a class from a local folder even without
    ``trust_remote_code``; importing ``modeling_marker.py`` writes ``marker``.
    """
    import json

    model_dir = build_remote_code_model(directory, marker)
    modules_file = model_dir / "modules.json"
    modules = json.loads(modules_file.read_text(encoding="utf-8"))
    modules[0]["type"] = "modeling_marker.MarkerModel"
    modules_file.write_text(json.dumps(modules, indent=2), encoding="utf-8")
    return model_dir
