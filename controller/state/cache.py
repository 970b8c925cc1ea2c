"""The state directory's cache: what a plan may skip computing again.

Two tables in their own SQLite file (``cache.db``), apart from the state database:
nothing in it is a decision or an audit record, it is never backed up or checked,
and deleting it only makes the next plan slower. Every read or write is best
effort: a cache that cannot be opened, read or written (locked by another
process, corrupt, on a read-only disk) answers nothing and keeps nothing.

* ``spec_files``: what each spec file loaded to, keyed by a digest of its bytes
  (:class:`controller.loading.cache.SpecCache` decides what is kept and when it holds).
* ``data_digests``: each data file's content hash, by path, with the file's
  identity (device, inode, size, modification and change times) as git's index
  keeps it. A digest is answered only while the identity is unchanged, and it is
  recorded only when the file was last modified or changed well before it was
  read (:data:`RACY_NS`): a file written again within the same timestamp tick as
  the read it was hashed from would otherwise keep its identity with new bytes
  (git's "racy clean" problem). Such a file is hashed again on every plan until
  it is old enough to be remembered.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path

log = logging.getLogger("modelplane.state.cache")

CACHE_FILE = "cache.db"
# A file's timestamps must be this much older than the moment it was read for its digest
# to be remembered: more than the coarsest timestamp tick of common file systems (FAT's
# 2 s), and the lag of the kernel's coarse clock behind the wall clock.
RACY_NS = 3_000_000_000
BUSY_TIMEOUT_MS = 500  # another process writing: skip remembering rather than wait

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spec_files (name TEXT PRIMARY KEY, key TEXT NOT NULL, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS data_digests (
    path TEXT PRIMARY KEY, dev INTEGER NOT NULL, ino INTEGER NOT NULL, size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL, ctime_ns INTEGER NOT NULL, digest TEXT NOT NULL
)
"""

Identity = tuple[int, int, int, int, int]


def identity(stat: os.stat_result) -> Identity:
    return stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns


class Cache:
    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / CACHE_FILE
        self._conn: sqlite3.Connection | None = None
        self._broken = False
        self._digests: dict[str, tuple[Identity, str]] | None = None
        self._new_digests: dict[str, tuple[Identity, str]] = {}

    def _db(self) -> sqlite3.Connection | None:
        if self._conn is None and not self._broken:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=OFF")  # losing the cache loses nothing
                conn.executescript(_SCHEMA)
                self._conn = conn
            except (sqlite3.Error, OSError) as exc:
                self._give_up(exc)
        return self._conn

    def _give_up(self, exc: Exception) -> None:
        log.debug("cache %s unusable: %s", self.path, exc)
        self._broken = True
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _write(self, sql: str, rows: Iterable[tuple[object, ...]]) -> None:
        conn = self._db()
        if conn is None:
            return
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(sql, rows)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            log.debug("cache %s not written: %s", self.path, exc)

    # Spec files (controller.loading.cache.Entries)

    def rows(self) -> Iterator[tuple[str, str, str]]:
        """Every spec file's (name, key, value), streamed."""
        conn = self._db()
        if conn is None:
            return
        try:
            yield from conn.execute("SELECT name, key, value FROM spec_files")
        except sqlite3.Error as exc:
            self._give_up(exc)

    def put_many(self, rows: Iterable[tuple[str, str, str]]) -> None:
        self._write("INSERT OR REPLACE INTO spec_files (name, key, value) VALUES (?, ?, ?)", rows)

    # Data-file digests (reconcilers.data.FileDigests)

    def digest(self, path: str, stat: os.stat_result) -> str | None:
        """The remembered digest of the file at ``path`` if its identity is unchanged."""
        if self._digests is None:
            self._digests = {}
            conn = self._db()
            if conn is not None:
                try:
                    rows = conn.execute("SELECT path, dev, ino, size, mtime_ns, ctime_ns, digest FROM data_digests")
                    self._digests = {row[0]: ((row[1], row[2], row[3], row[4], row[5]), row[6]) for row in rows}
                except sqlite3.Error as exc:
                    self._give_up(exc)
        entry = self._new_digests.get(path) or self._digests.get(path)
        return entry[1] if entry is not None and entry[0] == identity(stat) else None

    def remember_digest(self, path: str, stat: os.stat_result, digest: str, read_at_ns: int) -> bool:
        """Remember ``digest`` for the file at ``path`` as it was when hashed (``stat`` taken
        before the read began at ``read_at_ns``, wall clock) unless it was modified or
        changed too recently for a later edit to be sure to change its timestamps."""
        if max(stat.st_mtime_ns, stat.st_ctime_ns) >= read_at_ns - RACY_NS:
            return False
        self._new_digests[path] = (identity(stat), digest)
        return True

    def flush(self) -> None:
        """Write what was remembered since the last flush."""
        new, self._new_digests = self._new_digests, {}
        if not new:
            return
        self._write(
            "INSERT OR REPLACE INTO data_digests (path, dev, ino, size, mtime_ns, ctime_ns, digest) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(path, *ident, digest) for path, (ident, digest) in new.items()],
        )
        if self._digests is not None:
            self._digests.update(new)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
