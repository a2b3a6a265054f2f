"""AppendLogTable: a TinyDB Table whose writes append records instead of rewriting the file.

TinyDB's stock ``Table`` funnels every write through ``_update_table``, which copies the whole
table and hands it to ``Storage.write``: O(N) per insert. This subclass overrides every write
method to build only the records that change, appended by `AppendLogStorage` in one write under
the inter-process lock. Reads (``search``, ``get``, ``all``, ``count``, ``Query``) are TinyDB's
own, over the storage's in-memory tables.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from typing import cast

from tinydb import TinyDB
from tinydb.queries import QueryLike
from tinydb.table import Document, Table

from inspector.store.log import encode_doc
from inspector.store.storage import AppendLogStorage, Transaction

Fields = Mapping | Callable[[MutableMapping], None]


class AppendLogTable(Table):
    _storage: AppendLogStorage  # (StoreDB gives its tables nothing else)
    _gen = -1

    # ------------------------------------------------------------------ reads

    def _sync_cache(self) -> None:
        gen = self._storage.generation(self.name)
        if gen != self._gen:
            self._query_cache.clear()
            self._gen = gen

    def search(self, cond: QueryLike) -> list[Document]:
        self._sync_cache()
        return super().search(cond)

    def _read_table(self) -> dict[str, Mapping]:
        return cast(dict[str, Mapping], self._storage.table_data(self.name))

    # ------------------------------------------------------------------ writes

    def _tx(self):
        storage = self._storage
        if not isinstance(storage, AppendLogStorage):
            raise TypeError("AppendLogTable needs an AppendLogStorage")
        return storage.transaction()

    def _done(self) -> None:
        self.clear_cache()
        self._next_id = None

    def insert(self, document: Mapping) -> int:
        return self.insert_multiple([document])[0]

    def insert_multiple(self, documents: Iterable[Mapping], *, keep_newest: int | None = None) -> list[int]:
        """Insert documents in one append; with `keep_newest`, also delete the oldest documents
        (lowest ids) beyond that many, in the same append."""
        docs = list(documents)
        encoded = [encode_doc(d) for d in docs]  # outside the lock
        with self._tx() as tx:
            ids = self._insert_tx(tx, docs, encoded)
            if keep_newest is not None:
                excess = len(tx.table(self.name)) + len(ids) - keep_newest
                if excess > 0:
                    victims = self._storage.oldest_ids(self.name, min(excess, len(tx.table(self.name))))
                    victims += ids[:excess - len(victims)]
                    for doc_id in victims:
                        tx.delete(self.name, doc_id)
        self._done()
        return ids

    def _insert_tx(self, tx: Transaction, docs: list[Mapping], encoded: list[str]) -> list[int]:
        ids = []
        for doc, enc in zip(docs, encoded, strict=True):
            if isinstance(doc, self.document_class):
                doc_id = self.document_id_class(doc.doc_id)
                if tx.exists(self.name, doc_id):
                    raise ValueError(f"Document with ID {doc_id} already exists")
            else:
                doc_id = tx.next_id(self.name)
            tx.put(self.name, doc_id, enc, dict(doc))
            ids.append(doc_id)
        return ids

    def replace_docs(self, docs: Mapping[int, Mapping]) -> list[int]:
        """Replace whole documents by id (those that exist), without reading the old ones."""
        encoded = {int(i): encode_doc(d) for i, d in docs.items()}
        with self._tx() as tx:
            done = [i for i in encoded if tx.exists(self.name, i)]
            for i in done:
                tx.put(self.name, i, encoded[i], dict(docs[i]))
        self._done()
        return done

    def _targets(self, tx: Transaction, cond: QueryLike | None, doc_ids: Iterable[int] | None) -> list[int]:
        current = tx.table(self.name)
        if doc_ids is not None:
            return [i for i in dict.fromkeys(int(i) for i in doc_ids) if str(i) in current]
        if cond is not None:
            return [int(k) for k, doc in current.items() if cond(doc)]
        return [int(k) for k in current]

    @staticmethod
    def _updated(old: Mapping, fields: Fields) -> dict:
        if callable(fields):
            new = copy.deepcopy(dict(old))
            fields(new)
            return new
        new = dict(old)
        new.update(fields)
        return new

    def _update_tx(self, tx: Transaction, fields: Fields, cond: QueryLike | None,
                   doc_ids: Iterable[int] | None) -> list[int]:
        current = tx.table(self.name)
        targets = self._targets(tx, cond, doc_ids)
        for doc_id in targets:
            new = self._updated(current[str(doc_id)], fields)
            tx.put(self.name, doc_id, encode_doc(new), new)
        return targets

    def update(self, fields: Fields, cond: QueryLike | None = None,
               doc_ids: Iterable[int] | None = None) -> list[int]:
        with self._tx() as tx:
            ids = self._update_tx(tx, fields, cond, doc_ids)
        self._done()
        return ids

    def update_multiple(self, updates: Iterable[tuple[Fields, QueryLike]]) -> list[int]:
        updates = list(updates)
        updated: list[int] = []
        with self._tx() as tx:
            for key, doc in tx.table(self.name).items():
                work, changed = doc, False
                for fields, cond in updates:
                    if cond(work):
                        updated.append(int(key))
                        work, changed = self._updated(work, fields), True
                if changed:
                    tx.put(self.name, int(key), encode_doc(work), work)
        self._done()
        return updated

    def upsert(self, document: Mapping, cond: QueryLike | None = None) -> list[int]:
        if isinstance(document, self.document_class) and hasattr(document, "doc_id"):
            doc_ids: list[int] | None = [document.doc_id]
        else:
            doc_ids = None
        if doc_ids is None and cond is None:
            raise ValueError("If you don't specify a search query, you must specify a doc_id. "
                             "Hint: use a table.Document object.")
        with self._tx() as tx:  # one locked append: atomic across processes
            ids = self._update_tx(tx, document, cond, doc_ids)
            if not ids:
                ids = self._insert_tx(tx, [document], [encode_doc(document)])
        self._done()
        return ids

    def remove(self, cond: QueryLike | None = None, doc_ids: Iterable[int] | None = None) -> list[int]:
        if cond is None and doc_ids is None:
            raise RuntimeError("Use truncate() to remove all documents")
        with self._tx() as tx:
            ids = self._targets(tx, cond, doc_ids)
            for doc_id in ids:
                tx.delete(self.name, doc_id)
        self._done()
        return ids

    def truncate(self) -> None:
        with self._tx() as tx:
            tx.truncate(self.name)
        self._done()

    def _update_table(self, updater: Callable[[dict[int, Mapping]], None]) -> None:
        """Fallback for any other write path: diff a deep copy (O(N), correct)."""
        with self._tx() as tx:
            current = tx.table(self.name)
            work = {int(k): copy.deepcopy(v) for k, v in current.items()}
            updater(work)
            for key in current:
                if int(key) not in work:
                    tx.delete(self.name, int(key))
            for doc_id, doc in work.items():
                old = current.get(str(doc_id))
                if old is None or old != doc:
                    tx.put(self.name, doc_id, encode_doc(doc), dict(doc))
        self._done()


class StoreDB(TinyDB):
    """TinyDB over `AppendLogStorage` with `AppendLogTable` tables.

    ``StoreDB(path)`` is ``TinyDB(path, storage=AppendLogStorage)`` with the appending table
    class; storage options (``fsync=``, ``readonly=``...) are passed through.
    """

    table_class = AppendLogTable
    default_storage_class = AppendLogStorage  # type: ignore[assignment]  # (TinyDB types it as its JSONStorage)

    def drop_table(self, name: str) -> None:
        self.table(name).truncate()
        self._tables.pop(name, None)

    def drop_tables(self) -> None:
        storage = self.storage
        assert isinstance(storage, AppendLogStorage)
        with storage.transaction() as tx:
            for name in list(storage.read()):
                tx.truncate(name)
        self._tables.clear()

    def refresh(self) -> int:
        return self.storage.refresh()  # type: ignore[attr-defined]

