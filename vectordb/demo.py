"""The README's main job: a persisted store of Python's own documentation, searched by meaning.

It builds (or reopens) a store of the docstrings of the standard library's public
functions and classes (each document is ``"<qualified name>: <first paragraph>"``),
embedded with the default model (all-MiniLM-L6-v2), and answers a few questions in
plain words. Then it asks for an exact name, ``iterparse``, by vector search alone and by
hybrid search side by side: the embedding of a bare identifier lands near unrelated
records, BM25 matches the name itself, and the fused ranking puts it first. Run it
twice: the second run reopens the folder and answers at once, without embedding
anything again. It ends with the store's folder, the collection's name
(:data:`COLLECTION`) and commands to try next on it.

    python -m vectordb demo --path ./demo_db
"""

from __future__ import annotations

import importlib
import inspect
import shlex
import time
import warnings
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

COLLECTION = "python-docs"
"""The demo's collection."""

NEXT_QUESTION = "how do I read a csv file"
"""The question of the command line suggested at the end of the demo."""

MODULES = (
    "abc argparse array ast asyncio base64 binascii bisect calendar codecs collections concurrent.futures "
    "configparser contextlib copy csv dataclasses datetime decimal difflib dis email enum filecmp fnmatch "
    "fractions functools gc getpass gettext glob gzip hashlib heapq hmac html html.parser http.client "
    "http.server inspect io ipaddress itertools json locale logging lzma math mimetypes multiprocessing "
    "operator os os.path pathlib pickle platform pprint queue random re sched secrets select shelve shlex "
    "shutil signal smtplib socket sqlite3 ssl statistics string struct subprocess tarfile tempfile "
    "textwrap threading time timeit tokenize traceback types typing unicodedata unittest urllib.parse "
    "urllib.request uuid warnings weakref xml.etree.ElementTree zipfile zlib"
).split()

QUESTIONS = (
    "how do I turn a JSON string into a Python object",
    "make a SHA-256 digest of some data",
    "run another program and capture what it prints",
    "pick a random element from a list",
    "read a compressed file",
    "wait for several tasks and collect their results",
)

IDENTIFIER = "iterparse"
"""An exact name that vector search alone gets wrong (all-MiniLM-L6-v2 ranks ``shelve.Pickler``
first) and hybrid search gets right (``xml.etree.ElementTree.iterparse``)."""


def stdlib_docstrings(modules: Sequence[str] = MODULES) -> Iterator[Tuple[str, str, Dict[str, str]]]:
    """``(id, document, metadata)`` for each public documented callable: the document is its
    qualified name and the first paragraph of its docstring, so the name can be searched by text."""
    seen = set()
    for module_name in modules:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                module = importlib.import_module(module_name)
        except ImportError:
            continue
        for attr, obj in sorted(vars(module).items()):
            if attr.startswith("_") or not (inspect.isroutine(obj) or inspect.isclass(obj)):
                continue
            doc = inspect.getdoc(obj) or ""
            paragraph = doc.split("\n\n")[0].strip().replace("\n", " ")
            key = f"{module_name}.{attr}"
            if len(paragraph) < 20 or key in seen:
                continue
            seen.add(key)
            kind = "class" if inspect.isclass(obj) else "function"
            yield key, f"{key}: {paragraph[:500]}", {"module": module_name, "kind": kind}


def main(
    path: Optional[str] = "./demo_db",
    questions: Sequence[str] = QUESTIONS,
    n_results: int = 3,
    modules: Sequence[str] = MODULES,
    identifier: str = IDENTIFIER,
) -> None:
    """Build or reopen the demo store at ``path`` (None: in memory), print the answers to
    ``questions``, then the vector-only and hybrid answers to ``identifier`` side by side."""
    import vectordb

    client = vectordb.PersistentClient(path=path) if path else vectordb.Client()
    collection = client.get_or_create_collection(COLLECTION, metadata={"hnsw:space": "cosine"})
    first = collection.get(limit=1)
    if first["ids"] and not (first["documents"][0] or "").startswith(first["ids"][0] + ":"):
        print("The store holds documents without their names (an older demo): building it again")
        client.delete_collection(COLLECTION)
        collection = client.create_collection(COLLECTION, metadata={"hnsw:space": "cosine"})
    if collection.count() == 0:
        records = list(stdlib_docstrings(modules))
        started = time.perf_counter()
        print(f"Embedding {len(records)} docstrings of the standard library with all-MiniLM-L6-v2 ...")
        for start in range(0, len(records), 1000):
            chunk = records[start : start + 1000]
            collection.add(
                ids=[r[0] for r in chunk], documents=[r[1] for r in chunk], metadatas=[r[2] for r in chunk]
            )
        print(f"Stored {collection.count()} records in {time.perf_counter() - started:.1f} s at {path or 'memory'}")
    else:
        print(f"Reopened {path}: {collection.count()} records already stored, nothing to embed")
    for question in questions:
        started = time.perf_counter()
        result = collection.query(query_texts=[question], n_results=n_results)
        elapsed = (time.perf_counter() - started) * 1000
        print(f"\n? {question}   ({elapsed:.0f} ms)")
        for rid, distance, document in zip(result["ids"][0], result["distances"][0], result["documents"][0]):
            print(f"  {distance:5.3f}  {rid:<34} {_clip(document)}")
    classes = collection.query(
        query_texts=["a queue that threads can share"], n_results=2, where={"kind": "class"}
    )
    print("\n? a queue that threads can share   (only classes)")
    for rid, document in zip(classes["ids"][0], classes["documents"][0]):
        print(f"  {rid:<40} {_clip(document)}")
    vector = collection.query(query_texts=[identifier], n_results=n_results)
    hybrid = collection.query(query_texts=[identifier], n_results=n_results, mode="hybrid")
    print(f"\n? {identifier}   (an exact name: vector search alone | hybrid search, BM25 fused in)")
    for vector_id, hybrid_id in zip(vector["ids"][0], hybrid["ids"][0]):
        print(f"  vector {vector_id:<34} | hybrid {hybrid_id}")
    client.close()
    print()
    print("\n".join(closing_lines(path)))


def next_commands(path: str) -> List[str]:
    """Command lines to try on the demo's store at ``path`` (quoted for a POSIX shell)."""
    where = f"--path {_shell_word(path)}"
    return [
        f"vectordb query {COLLECTION} {_shell_word(NEXT_QUESTION)} {where}",
        f"vectordb info {COLLECTION} {where}",
    ]


def closing_lines(path: Optional[str]) -> List[str]:
    """What the demo prints last: where its store is, the collection's name, and what to try next."""
    if not path:
        return [f"The store was in memory (collection {COLLECTION!r}): nothing was kept."]
    return [f"Store: {path}   collection: {COLLECTION}", "Try next:"] + [f"  {c}" for c in next_commands(path)]


def _shell_word(text: str) -> str:
    """``text`` as one shell word: bare when safe, else in double quotes when nothing in it is
    special there (as people write it, and as Windows reads it), else as :func:`shlex.quote` makes it."""
    quoted = shlex.quote(text)
    if quoted == text:
        return text
    if not any(c in text for c in '"$`\\!\n'):
        return f'"{text}"'
    return quoted


def _clip(text: str, width: int = 70) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


if __name__ == "__main__":
    main()
