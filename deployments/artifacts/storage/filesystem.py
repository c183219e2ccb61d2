"""Artifacts as files under `$MENDER_DATA_DIR/artifacts`, written to a temp file and renamed into place.

A temp file is locked (`flock`) by its writer for as long as it writes; the kernel drops the lock
when the writer's process dies, however it dies. The sweep removes only temp files it can lock:
the leftovers of uploads whose process is gone, never an upload in progress, however slow.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import time
import uuid

from common.errors import NotFound, Unavailable
from deployments.artifacts.storage import ArtifactStorage, ObjectWriter

TEMP_DIR = ".tmp"
TEMP_SUFFIX = ".part"
SWEEP_MIN_AGE = 10.0  # seconds without a write: covers the instant between creating a temp file and locking it
WRITEBACK_STEP = 16 * 1024 * 1024  # bytes of an upload written between two write-back requests


class _FileWriter(ObjectWriter):
    def __init__(self, temp_path: str, final_path: str):
        self._temp = temp_path
        self._final = final_path
        fd = os.open(temp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held until closed: "this upload is alive"
        self._file = os.fdopen(fd, "wb", buffering=0)
        self._written = self._flushed = 0

    def write(self, data: bytes) -> None:
        self._file.write(data)
        self._written += len(data)
        if self._written - self._flushed >= WRITEBACK_STEP:
            # start writing back what we have so far, so the final fsync does not wait for it all
            # (and the page cache does not fill up with a multi-GB upload)
            os.posix_fadvise(self._file.fileno(), self._flushed, self._written - self._flushed,
                             os.POSIX_FADV_DONTNEED)
            self._flushed = self._written

    def commit(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        os.makedirs(os.path.dirname(self._final), mode=0o700, exist_ok=True)
        os.replace(self._temp, self._final)

    def abort(self) -> None:
        try:
            self._file.close()
        except OSError:
            pass
        try:
            os.unlink(self._temp)
        except FileNotFoundError:
            pass


class FilesystemStorage(ArtifactStorage):
    kind = "filesystem"

    def __init__(self, data_dir: str, signer_factory):
        self.root = os.path.join(os.path.abspath(data_dir), "artifacts")
        self._signer_factory = signer_factory

    def path(self, key: str) -> str:
        """The file of a key (keys are server-made; still, never leave the root)."""
        path = os.path.normpath(os.path.join(self.root, key))
        if not path.startswith(self.root + os.sep) or os.sep + TEMP_DIR in path[len(self.root):]:
            raise ValueError("key outside the storage root")
        return path

    def writer(self, key: str) -> ObjectWriter:
        temp_dir = os.path.join(self.root, TEMP_DIR)
        os.makedirs(temp_dir, mode=0o700, exist_ok=True)
        return _FileWriter(os.path.join(temp_dir, uuid.uuid4().hex + TEMP_SUFFIX), self.path(key))

    def open(self, key: str):
        try:
            return open(self.path(key), "rb")
        except FileNotFoundError:
            raise NotFound("artifact file not found") from None

    def exists(self, key: str) -> bool:
        return os.path.isfile(self.path(key))

    def delete(self, key: str) -> None:
        try:
            os.unlink(self.path(key))
        except FileNotFoundError:
            pass

    def delete_prefix(self, prefix: str) -> int:
        directory = self.path(prefix.rstrip("/"))
        removed = sum(len(files) for _root, _dirs, files in os.walk(directory))
        try:
            shutil.rmtree(directory)
        except FileNotFoundError:
            return 0
        return removed

    def promote(self, source: str, target: str) -> None:
        os.replace(self.path(source), self.path(target))

    def download_link(self, key, *, tenant, filename, expires_in, base_url, path):
        query, expire = self._signer_factory().sign("GET", path, tenant, expires_in, obj=key)
        return f"{base_url}{path}?{query}", expire

    def upload_link(self, key, *, tenant, expires_in, base_url, path):
        query, expire = self._signer_factory().sign("PUT", path, tenant, expires_in)
        return f"{base_url}{path}?{query}", expire

    def check(self, timeout: float) -> None:
        os.makedirs(self.root, mode=0o700, exist_ok=True)
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise Unavailable("artifact storage is not writable")

    def sweep(self, min_age: float = SWEEP_MIN_AGE) -> int:
        """Remove the temp files of uploads whose writer is gone (no lock on the file) and that
        were not written to for `min_age` seconds; return how many."""
        temp_dir = os.path.join(self.root, TEMP_DIR)
        removed = 0
        try:
            entries = list(os.scandir(temp_dir))
        except FileNotFoundError:
            return 0
        now = time.time()
        for entry in entries:
            try:
                if (entry.name.endswith(TEMP_SUFFIX) and entry.is_file(follow_symlinks=False)
                        and now - entry.stat(follow_symlinks=False).st_mtime >= min_age
                        and _remove_if_unlocked(entry.path)):
                    removed += 1
            except FileNotFoundError:
                pass  # another process's sweep, or the upload finished
        return removed


def _remove_if_unlocked(path: str) -> bool:
    """Unlink `path` if no writer holds its lock (checked under the lock, on the same file)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # its upload is still being written
        if os.fstat(fd).st_ino != os.stat(path, follow_symlinks=False).st_ino:
            return False
        os.unlink(path)
        return True
    finally:
        os.close(fd)
