"""The README's main job: a persisted store of Python's own documentation, searched by meaning.

It builds (or reopens) a store of the docstrings of the standard library's public
functions and classes, embedded with the default model (all-MiniLM-L6-v2), and
answers a few questions in plain words. Run it twice: the second run reopens the
folder and answers at once, without embedding anything again.

    python -m vectordb demo --path ./demo_db
"""

from __future__ import annotations

import importlib
import inspect
import time
import warnings
from typing import Dict, Iterator, Optional, Sequence, Tuple

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


def stdlib_docstrings(modules: Sequence[str] = MODULES) -> Iterator[Tuple[str, str, Dict[str, str]]]:
    """``(id, first paragraph of the docstring, metadata)`` for each public documented callable."""
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
            yield key, paragraph[:500], {"module": module_name, "kind": kind}


def main(
    path: Optional[str] = "./demo_db",
    questions: Sequence[str] = QUESTIONS,
    n_results: int = 3,
    modules: Sequence[str] = MODULES,
) -> None:
    """Build or reopen the demo store at ``path`` (None: in memory) and print the answers to ``questions``."""
    import vectordb

    client = vectordb.PersistentClient(path=path) if path else vectordb.Client()
    collection = client.get_or_create_collection("python-docs", metadata={"hnsw:space": "cosine"})
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
    client.close()


def _clip(text: str, width: int = 70) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


if __name__ == "__main__":
    main()
