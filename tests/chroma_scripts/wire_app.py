"""An app written for Chroma's server, run through chromadb's HttpClient: ``python wire_app.py PORT``.

tests/test_chroma_wire.py runs it (in the chromadb venv) once against ``chroma run`` and
once against ``vectordb serve``, and compares the printed lines. It prints only what an
app would see: values, counts, error classes (and the messages Chroma's server words the
same way); distances rounded to 4 places (two engines may differ in the last float bits).
"""

from __future__ import annotations

import sys
from typing import Any, Callable, Dict, List

import chromadb
import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings
from chromadb.utils.embedding_functions import register_embedding_function

PORT = int(sys.argv[1])


@register_embedding_function
class LetterCounts(EmbeddingFunction[Documents]):
    """A tiny client-side embedding function with a name and a config (persisted by the server)."""

    def __init__(self, dim: int = 6) -> None:
        self.dim = dim

    def __call__(self, input: Documents) -> Embeddings:
        out = []
        for text in input:
            vector = [0.0] * self.dim
            for ch in text.lower():
                if ch.isalpha():
                    vector[(ord(ch) - 97) % self.dim] += 1.0
            out.append(vector)
        return out

    @staticmethod
    def name() -> str:
        return "wire-letter-counts"

    def get_config(self) -> Dict[str, Any]:
        return {"dim": self.dim}

    @staticmethod
    def build_from_config(config: Dict[str, Any]) -> "LetterCounts":
        return LetterCounts(int(config["dim"]))


def show(label: str, value: Any) -> None:
    print(f"{label}: {canon(value)}")


def error(label: str, call: Callable[[], Any], message: bool = False) -> None:
    """Print the class an error is raised as (and its message, where Chroma's words are matched)."""
    try:
        call()
        print(f"{label}: no error")
    except Exception as exc:  # noqa: BLE001 - the class is what is compared
        print(f"{label}: {type(exc).__name__}" + (f": {exc}" if message else ""))


def canon(value: Any) -> Any:
    """Dicts with sorted keys (Chroma itself answers metadata keys in varying orders)."""
    if isinstance(value, dict):
        return {k: canon(value[k]) for k in sorted(value)}
    if isinstance(value, (list, tuple)):
        return type(value)(canon(v) for v in value)
    return value


def rounded(rows: Any) -> List[List[float]]:
    return [[round(float(x), 4) for x in row] for row in rows]


def records(result: Dict[str, Any]) -> str:
    fields = [f for f in ("ids", "documents", "metadatas") if result.get(f) is not None]
    text = " ".join(f"{f}={canon(result[f])}" for f in fields)
    if result.get("embeddings") is not None:
        text += f" embeddings={[list(map(float, e)) for e in result['embeddings']]}"
    return text


def collections_part(client: Any) -> None:
    show("heartbeat is int", isinstance(client.heartbeat(), int))
    show("max batch", client.get_max_batch_size())
    notes = client.create_collection("notes", metadata={"topic": "demo", "level": 2}, embedding_function=None)
    people = client.create_collection("people", configuration={"hnsw": {"space": "cosine"}}, embedding_function=None)
    show("created", (notes.name, notes.metadata, people.name))
    show("people metadata", people.metadata)
    show("people space", people.configuration_json["hnsw"]["space"])
    show("people function", people.configuration_json["embedding_function"])
    again = client.get_or_create_collection("notes", metadata={"ignored": True}, embedding_function=None)
    show("get_or_create keeps", (again.id == notes.id, again.metadata))
    show("list", sorted(c.name for c in client.list_collections()))
    show("list page", len(client.list_collections(limit=1, offset=1)))
    show("count collections", client.count_collections())
    by_name = client.get_collection("notes", embedding_function=None)
    show("get by name", (by_name.id == notes.id, by_name.metadata, by_name.count()))
    by_id = client.get_collection_by_id(notes.id, embedding_function=None)
    show("get by id", (by_id.name, by_id.metadata))
    people.modify(name="persons", metadata={"kind": "humans"})
    renamed = client.get_collection("persons", embedding_function=None)
    show("modified", (renamed.name, renamed.id == people.id))
    show("modified metadata", renamed.metadata)
    error("get renamed-away", lambda: client.get_collection("people"), message=True)
    error("duplicate create", lambda: client.create_collection("notes", embedding_function=None), message=True)
    error("bad name", lambda: client.create_collection("x", embedding_function=None))
    error("empty metadata", lambda: client.create_collection("empty-meta", metadata={}, embedding_function=None))
    notes.modify(configuration={"hnsw": {"ef_search": 77}})
    show("modified ef_search", client.get_collection("notes").configuration_json["hnsw"]["ef_search"])
    client.delete_collection("persons")
    show("after delete", sorted(c.name for c in client.list_collections()))
    error("delete missing", lambda: client.delete_collection("persons"), message=True)
    error("reset refused", lambda: client.reset())


def writes_part(client: Any) -> Any:
    notes = client.get_collection("notes", embedding_function=None)
    notes.add(
        ids=["n1", "n2", "n3", "n4", "n5"],
        embeddings=[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.5, 0.5, 0.0], [0.1, 0.2, 0.3]],
        documents=["apples and pears", "the quick brown fox", "vectors in space", "apple pie recipe", None],
        metadatas=[
            {"year": 2019, "tags": ["fruit", "food"], "ok": True},
            {"year": 2021, "tags": ["animal"], "ok": False},
            {"year": 2023, "tags": ["math", "space"], "score": 0.5},
            {"year": 2020, "tags": ["food"], "author": "ann"},
            None,
        ],
    )
    show("count after add", notes.count())
    notes.add(ids=["n1"], embeddings=[[9.0, 9.0, 9.0]], documents=["changed?"])
    show("add of an existing id", records(notes.get(ids=["n1"], include=["documents", "embeddings"])))
    notes.upsert(ids=["n5", "n6"], embeddings=[[0.1, 0.2, 0.4], [0.3, 0.3, 0.3]],
                 documents=["upserted five", "brand new six"], metadatas=[{"year": 2024}, {"year": 2018, "tags": ["new"]}])
    notes.update(ids=["n2"], embeddings=[[0.0, 0.9, 0.1]], metadatas=[{"year": 2022, "extra": "x"}],
                 documents=["the slow brown fox"])
    notes.update(ids=["n3"], metadatas=[{"score": None, "note": "score removed"}])
    show("count after upsert", notes.count())
    show("after update", records(notes.get(ids=["n2", "n3", "n5", "n6"])))
    show("embeddings", records(notes.get(ids=["n4", "n5"], include=["embeddings"])))
    show("uris", notes.get(ids=["n1"], include=["uris", "documents"])["uris"])
    error("wrong dimension", lambda: notes.add(ids=["bad"], embeddings=[[1.0, 2.0]]), message=True)
    error("duplicate ids", lambda: notes.add(ids=["d", "d"], embeddings=[[1.0, 0, 0], [0, 1.0, 0]]))
    return notes


def reads_part(notes: Any) -> None:
    show("get all", records(notes.get()))
    show("where $gte", notes.get(where={"year": {"$gte": 2021}})["ids"])
    show("where $in", notes.get(where={"year": {"$in": [2019, 2020, 2018]}})["ids"])
    show("where $contains list", notes.get(where={"tags": {"$contains": "food"}})["ids"])
    show("where $not_contains list", notes.get(where={"tags": {"$not_contains": "food"}})["ids"])
    show("where $and", notes.get(where={"$and": [{"year": {"$gt": 2018}}, {"ok": True}]})["ids"])
    show("where $or", notes.get(where={"$or": [{"author": "ann"}, {"score": {"$lt": 1}}]})["ids"])
    show("where_document $contains", notes.get(where_document={"$contains": "fox"})["ids"])
    show("where_document $regex", notes.get(where_document={"$regex": "^app"})["ids"])
    show("where_document $not_contains", notes.get(where_document={"$not_contains": "apple"})["ids"])
    show("limit offset", notes.get(limit=2, offset=1)["ids"])
    show("peek", notes.peek(limit=2)["ids"])
    result = notes.query(query_embeddings=[[1.0, 0.1, 0.0], [0.0, 0.0, 1.0]], n_results=3)
    show("query ids", result["ids"])
    show("query distances", [rounded([d])[0] for d in result["distances"]])
    show("query documents", result["documents"])
    filtered = notes.query(query_embeddings=[[1.0, 0.0, 0.0]], n_results=10,
                           where={"year": {"$lte": 2022}}, where_document={"$contains": "o"})
    show("query filtered", filtered["ids"])
    with_ids = notes.query(query_embeddings=[[0.0, 1.0, 0.2]], n_results=2, ids=["n1", "n3", "n6"],
                           include=["embeddings", "metadatas", "distances"])
    show("query ids= and include", (with_ids["ids"], with_ids["metadatas"],
                                    [[list(map(float, e)) for e in m] for m in with_ids["embeddings"]]))
    show("query included", list(with_ids["included"]))
    error("query wrong dimension", lambda: notes.query(query_embeddings=[[1.0, 0.0]]), message=True)
    error("bad where", lambda: notes.get(where={"$bad": 1}))
    show("delete by ids", notes.delete(ids=["n6"]))
    show("delete by where", notes.delete(where={"year": {"$lt": 2020}}))
    show("count after deletes", notes.count())


def function_part(client: Any) -> None:
    """A collection with a client-side function: the server stores its name and config, the client embeds."""
    docs = client.create_collection("docs", embedding_function=LetterCounts(6))
    show("function stored", docs.configuration_json["embedding_function"])
    docs.add(ids=["a", "b", "c"], documents=["aaa bbb", "ccc ddd", "eeee ffff"])
    hit = docs.query(query_texts=["aab"], n_results=2)
    show("query by text", (hit["ids"], rounded(hit["distances"])))
    got = client.get_collection("docs", embedding_function=LetterCounts(6))
    show("get with function", (got.configuration_json["embedding_function"], got.count()))
    reopened = client.get_collection("docs")
    show("reopened embeds", reopened.query(query_texts=["ccd"], n_results=1)["ids"])


def batch_part(client: Any) -> None:
    big = client.create_collection("batch", embedding_function=None)
    n, dim = 3000, 8
    ids = [f"r{i:05d}" for i in range(n)]
    vectors = np.random.default_rng(7).random((n, dim)).astype(np.float32).tolist()
    metadatas = [{"i": i, "even": i % 2 == 0, "bucket": f"b{i % 5}"} for i in range(n)]
    big.add(ids=ids, embeddings=vectors, metadatas=metadatas, documents=[f"record number {i}" for i in range(n)])
    show("batch count", big.count())
    show("batch query", big.query(query_embeddings=[vectors[123]], n_results=3, include=[])["ids"])
    show("batch filtered", big.query(query_embeddings=[vectors[10]], n_results=4,
                                     where={"$and": [{"even": True}, {"bucket": "b0"}]}, include=[])["ids"])
    show("batch page", big.get(limit=3, offset=2995, include=["metadatas"])["metadatas"])
    show("batch delete", big.delete(where={"bucket": "b3"}))
    show("batch count after", big.count())


def main() -> None:
    client = chromadb.HttpClient(host="127.0.0.1", port=PORT)
    for leftover in client.list_collections():  # a store of its own each run; this makes reruns start clean
        client.delete_collection(leftover.name)
    show("identity", client.get_user_identity())
    collections_part(client)
    notes = writes_part(client)
    reads_part(notes)
    function_part(client)
    batch_part(client)
    error("missing collection handle", lambda: client.get_collection("nowhere"), message=True)
    client.delete_collection("notes")
    error("use after delete", lambda: notes.count())
    show("final", sorted(c.name for c in client.list_collections()))


if __name__ == "__main__":
    main()
