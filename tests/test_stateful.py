"""Random sequences of writes, reads and close/reopen steps against vectordb and a plain
Python model of it; every read must agree with the model (queries: exact search)."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from conftest import backend_client
from bm25_oracle import oracle
from vectordb.engine import vectorindex as manager

DIM = 3
POOL = [f"id{i}" for i in range(10)]

Record = Tuple[Tuple[float, ...], Optional[Dict[str, Any]], Optional[str]]

ids_st = st.lists(st.sampled_from(POOL), min_size=1, max_size=5, unique=True)
vector_st = st.tuples(*[st.integers(-4, 4).map(float) for _ in range(DIM)])
value_st = st.one_of(st.integers(0, 3), st.sampled_from(["x", "y", "ü"]), st.booleans())
meta_st = st.one_of(st.none(), st.dictionaries(st.sampled_from(["k", "s"]), value_st, max_size=2))
patch_st = st.one_of(st.none(), st.dictionaries(st.sampled_from(["k", "s"]), st.one_of(st.none(), value_st), max_size=2))
doc_st = st.one_of(st.none(), st.sampled_from(["alpha", "beta", "gamma", "alpha beta", "Beta beta gamma!",
                                               "gamma alpha alpha delta", ""]))
text_st = st.lists(st.sampled_from(["alpha", "beta", "gamma", "delta", "omega"]), min_size=1, max_size=3).map(" ".join)


def _merge(old: Optional[Dict[str, Any]], new: Optional[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    merged = dict(old or {})
    for key, value in (new or {}).items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged or None


class VectorDBMachine(RuleBasedStateMachine):
    """vectordb on one backend (``BACKEND``, a subclass's) versus a dict of records in insertion order."""

    BACKEND = "disk"

    def __init__(self) -> None:
        super().__init__()
        self.background_min, manager.BACKGROUND_MIN = manager.BACKGROUND_MIN, 3  # writes of 3+ go to the worker
        self.folder = tempfile.mkdtemp(prefix="vectordb-stateful-")
        self.model: Dict[str, Record] = {}
        self._open()
        self.col = self.client.create_collection("state", metadata={"hnsw:search_ef": 100}, embedding_function=None)

    def _open(self) -> None:
        self.opened = contextlib.ExitStack()
        self.client = self.opened.enter_context(backend_client(self.BACKEND, self.folder))

    def teardown(self) -> None:
        self.opened.close()
        shutil.rmtree(self.folder, ignore_errors=True)
        manager.BACKGROUND_MIN = self.background_min

    def _write(self, mode: str, ids: List[str], data: st.DataObject) -> None:
        vectors = data.draw(st.lists(vector_st, min_size=len(ids), max_size=len(ids)))
        give_meta = data.draw(st.booleans())
        metas = data.draw(st.lists(meta_st if mode == "add" else patch_st, min_size=len(ids), max_size=len(ids)))
        docs = data.draw(st.lists(doc_st.filter(lambda d: d is not None), min_size=len(ids), max_size=len(ids))) \
            if data.draw(st.booleans()) else None
        getattr(self.col, mode)(ids, [list(v) for v in vectors], metadatas=metas if give_meta else None, documents=docs)
        for i, record_id in enumerate(ids):
            meta = metas[i] if give_meta else None
            doc = None if docs is None else docs[i]
            old = self.model.get(record_id)
            if old is None:
                if mode != "update":
                    self.model[record_id] = (vectors[i], _merge(None, meta), doc)
            elif mode != "add":
                self.model[record_id] = (vectors[i], _merge(old[1], meta) if give_meta else old[1],
                                         old[2] if doc is None else doc)

    @rule(ids=ids_st, data=st.data())
    def add(self, ids: List[str], data: st.DataObject) -> None:
        self._write("add", ids, data)

    @rule(ids=ids_st, data=st.data())
    def upsert(self, ids: List[str], data: st.DataObject) -> None:
        self._write("upsert", ids, data)

    @rule(ids=ids_st, data=st.data())
    def update(self, ids: List[str], data: st.DataObject) -> None:
        self._write("update", ids, data)

    @rule(ids=ids_st)
    def delete_ids(self, ids: List[str]) -> None:
        self.col.delete(ids)
        for record_id in ids:
            self.model.pop(record_id, None)

    @rule(value=st.integers(0, 3))
    def delete_where(self, value: int) -> None:
        self.col.delete(where={"k": value})
        self.model = {i: r for i, r in self.model.items() if not (r[1] and r[1].get("k") == value and
                                                                    not isinstance(r[1]["k"], bool))}

    @precondition(lambda self: self.BACKEND != "memory")  # a store in memory is gone once closed
    @rule()
    def reopen(self) -> None:
        self.opened.close()
        self._open()
        self.col = self.client.get_collection("state")

    @rule(ids=st.lists(st.sampled_from(POOL), min_size=1, max_size=6))
    def get_ids(self, ids: List[str]) -> None:
        got = self.col.get(ids=ids, include=["embeddings", "metadatas", "documents"])
        expected = list(dict.fromkeys(i for i in ids if i in self.model))
        assert got["ids"] == expected
        for record_id, emb, meta, doc in zip(got["ids"], got["embeddings"], got["metadatas"], got["documents"]):
            vector, model_meta, model_doc = self.model[record_id]
            assert tuple(emb) == vector and meta == model_meta and doc == model_doc

    @rule(value=value_st)
    def get_where(self, value: Any) -> None:
        got = self.col.get(where={"s": value})["ids"]
        assert got == [i for i, r in self.model.items() if r[1] and "s" in r[1] and _same(r[1]["s"], value)]

    @precondition(lambda self: self.model)
    @rule(query=vector_st, k=st.integers(1, 12))
    def query(self, query: Tuple[float, ...], k: int) -> None:
        result = self.col.query([list(query)], n_results=k, include=["distances"])
        ids, vectors = list(self.model), np.asarray([r[0] for r in self.model.values()], dtype=np.float32)
        exact = ((vectors - np.asarray(query, dtype=np.float32)) ** 2).sum(1)
        np.testing.assert_allclose(result["distances"][0], np.sort(exact)[:k], atol=1e-4)
        for record_id, distance in zip(result["ids"][0], result["distances"][0]):
            assert abs(exact[ids.index(record_id)] - distance) < 1e-4

    @precondition(lambda self: self.BACKEND != "milvus")  # Milvus has no BM25 index (README: Scaling out)
    @rule(text=text_st, k=st.integers(1, 12))
    def text_query(self, text: str, k: int) -> None:
        """BM25 over the model's live documents (tests/bm25_oracle.py), ties by id."""
        result = self.col.query(query_texts=[text], n_results=k, mode="text", include=["scores"])
        want = oracle({i: r[2] for i, r in self.model.items()}, text)[:k]
        assert result["ids"][0] == [i for i, _ in want]
        np.testing.assert_allclose(result["scores"][0], [score for _, score in want], rtol=1e-5)

    @invariant()
    def count_agrees(self) -> None:
        assert self.col.count() == len(self.model)

    @invariant()
    def insertion_order_agrees(self) -> None:
        assert self.col.get(include=[])["ids"] == list(self.model)


def _same(a: Any, b: Any) -> bool:
    """Metadata equality as filters see it: bools are not numbers."""
    return type(a) is type(b) and a == b if isinstance(a, bool) or isinstance(b, bool) else a == b


VectorDBMachine.TestCase.settings = settings(
    max_examples=30, stateful_step_count=25, deadline=None, suppress_health_check=list(HealthCheck)
)
TestVectorDB = VectorDBMachine.TestCase  # on disk


class MemoryMachine(VectorDBMachine):
    BACKEND = "memory"


class HttpMachine(VectorDBMachine):
    BACKEND = "http"


class MilvusMachine(VectorDBMachine):
    BACKEND = "milvus"


MemoryMachine.TestCase.settings = settings(  # fewer examples: an HTTP step costs a few requests
    max_examples=10, stateful_step_count=25, deadline=None, suppress_health_check=list(HealthCheck)
)
HttpMachine.TestCase.settings = MemoryMachine.TestCase.settings
MilvusMachine.TestCase.settings = MemoryMachine.TestCase.settings
TestVectorDBInMemory = MemoryMachine.TestCase
TestVectorDBOverHttp = HttpMachine.TestCase
TestVectorDBOnMilvus = MilvusMachine.TestCase
