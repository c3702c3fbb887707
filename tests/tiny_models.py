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
