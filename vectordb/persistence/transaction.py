"""One DuckDB transaction of the store, and what happens when its COMMIT fails.

The store runs every change as ``with Transaction(db, action, landed):``. The block is
all or nothing on one thread's cursor; the only subtle part is a failed COMMIT, which
:meth:`vectordb.persistence.database.Database.settle` decides from the database itself.
"""

from __future__ import annotations

from typing import Any, Optional

import duckdb

from vectordb.persistence.database import Database, Landed


class Transaction:
    """``with`` block: BEGIN, then COMMIT, or ROLLBACK on any error, all on this thread's cursor.

    Before BEGIN, a log left untrusted by an earlier failed commit is checkpointed
    (:meth:`Database.trust_log`). A COMMIT that fails is settled from the database
    (:meth:`Database.settle`): ``landed`` reads whether the transaction's changes are
    there; the block ends normally only if they are and a checkpoint made them durable.
    """

    def __init__(self, db: Database, action: str, landed: Optional[Landed]) -> None:
        self.db = db
        self.action = action
        self.landed = landed

    def __enter__(self) -> None:
        self.db.trust_log()
        self.pin = self.db.pinned()  # every statement until COMMIT runs on this thread's one cursor
        self.con = self.pin.__enter__()
        try:
            self.con.execute("BEGIN TRANSACTION")
        except BaseException:
            self.pin.__exit__(None, None, None)
            raise

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        failed: Optional[duckdb.Error] = None
        try:
            if exc_type is None:
                try:
                    self.con.execute("COMMIT")
                except duckdb.Error as error:
                    failed = error
            else:
                self._rollback()
        finally:
            self.pin.__exit__(None, None, None)
        if failed is not None:
            self._rollback()  # DuckDB ends a failed commit's transaction itself; this makes sure
            self.db.settle(failed, self.landed, self.action)

    def _rollback(self) -> None:
        try:
            self.con.execute("ROLLBACK")
        except duckdb.Error:
            pass  # DuckDB already aborted the transaction (or lost the database): the original error goes on up
