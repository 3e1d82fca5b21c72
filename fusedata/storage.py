"""Where the work folder lives: a local path, or any fsspec URL (``s3://``, ``gs://``, ...).

Cloud Ray clusters have object storage, not a shared filesystem, so the stage engine
must put and read its shards by URL.  :func:`location` turns a recipe's ``work_dir``
into either a :class:`pathlib.Path` (local: today's code and speed, unchanged) or a
:class:`RemotePath`, a small path-like object over fsspec with just the operations the
engine uses.  ``file://`` URLs become plain paths.

Credentials and endpoints come from the environment the usual way (``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL``, ``GOOGLE_APPLICATION_CREDENTIALS``...),
never from the recipe: a Ray worker then reaches the same store with the same
environment, and no secret is hashed into a cache key or written to a log.

Object stores have no atomic rename, but a single PUT is all-or-nothing: an object is
either absent or complete.  :meth:`RemotePath.write_bytes` is one PUT of the whole
content, which is what the engine's commit protocol builds on.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def is_url(s: str | Path) -> bool:
    """True for a URL with a scheme other than ``file`` (Windows drive letters are not)."""
    s = str(s)
    return "://" in s and not s.startswith("file://")


def location(s: str | Path, base: Path | None = None) -> Path | RemotePath:
    """A local path (resolved against ``base`` when relative) or a :class:`RemotePath`."""
    if isinstance(s, RemotePath):
        return s
    if is_url(s):
        return RemotePath(str(s).rstrip("/"))
    text = str(s)
    if text.startswith("file://"):
        text = text[len("file://"):]
    p = Path(text)
    return (base / p).resolve() if base is not None and not p.is_absolute() else p


@functools.lru_cache(maxsize=32)
def _fs(protocol: str) -> Any:
    """One fsspec filesystem per protocol per process (credentials from the environment)."""
    import fsspec

    return fsspec.filesystem(protocol)


@dataclass(frozen=True, order=True)
class RemotePath:
    """A file or folder on an fsspec filesystem, addressed by URL.

    Picklable (just the URL), so a :class:`fusedata.engine.ShardPlan` naming remote
    folders travels to Ray workers, which open their own filesystem from their own
    environment.  Folders are implicit on object stores: :meth:`mkdir` does nothing.
    """

    url: str

    @property
    def protocol(self) -> str:
        return self.url.split("://", 1)[0]

    @property
    def path(self) -> str:
        """The URL without its scheme (what fsspec methods take)."""
        return self.url.split("://", 1)[1]

    @property
    def fs(self) -> Any:
        return _fs(self.protocol)

    def __str__(self) -> str:
        return self.url

    def __truediv__(self, other: str) -> RemotePath:
        return RemotePath(f"{self.url}/{str(other).strip('/')}")

    @property
    def name(self) -> str:
        return self.url.rsplit("/", 1)[-1]

    @property
    def parent(self) -> RemotePath:
        return RemotePath(self.url.rsplit("/", 1)[0])

    def with_name(self, name: str) -> RemotePath:
        return self.parent / name

    def exists(self) -> bool:
        # object stores list lazily and fsspec caches listings: a shard another worker
        # just committed must be seen, so the cache is dropped before each check
        self.fs.invalidate_cache(self.path)
        return bool(self.fs.exists(self.path))

    def mkdir(self, parents: bool = True, exist_ok: bool = True) -> None:
        if self.protocol not in ("s3", "s3a", "gs", "gcs", "az", "abfs", "memory"):
            self.fs.makedirs(self.path, exist_ok=True)

    def read_bytes(self) -> bytes:
        return bytes(self.fs.cat_file(self.path))

    def read_text(self, encoding: str = "utf-8") -> str:
        return self.read_bytes().decode(encoding)

    def write_bytes(self, data: bytes) -> None:
        """One PUT of the whole content: readers see nothing or all of it."""
        self.fs.pipe_file(self.path, data)

    def write_text(self, text: str, encoding: str = "utf-8") -> None:
        self.write_bytes(text.encode(encoding))

    def unlink(self, missing_ok: bool = False) -> None:
        try:
            self.fs.rm_file(self.path)
        except FileNotFoundError:
            if not missing_ok:
                raise

    def glob(self, pattern: str) -> list[RemotePath]:
        # a pattern may reach into sub-folders whose listings are cached (fsspec drops
        # a path and its parents on invalidate_cache(path), not its children): drop all
        self.fs.invalidate_cache()
        return [RemotePath(f"{self.protocol}://{p}")
                for p in sorted(self.fs.glob(f"{self.path}/{pattern}"))]

    def open(self, mode: str = "rb") -> Any:
        return self.fs.open(self.path, mode)


PathLike = Path | RemotePath
