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

The commands that read or refresh a built ``OUT/`` (``report``, ``export``, ``view``,
``inspect``, ``push``) work on a local folder; :func:`local_out` gives them one for an
``OUT`` at a URL (a temp copy, less the stage cache) and puts back what they changed.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

#: the stage cache inside an OUT (``OUT/.work``): never fetched by :func:`local_out`
STAGE_CACHE = ".work"


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


class RemoteOutError(click.ClickException):
    """An ``OUT`` URL that holds no build output (a typo, or a build that never finished)."""


class OutFolder(click.ParamType):
    """The OUT argument of the commands that read a built output: a local folder that must
    exist (checked as ``click.Path(exists=True, file_okay=False)`` checks it, with its
    message), or an fsspec URL, checked when it is fetched (:func:`local_out`).

    Converts to ``str``: the URL as given (less a trailing ``/``) or the local path."""

    name = "out"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> str:
        text = str(value)
        if is_url(text):
            return text.rstrip("/")
        if text.startswith("file://"):
            text = text[len("file://"):]
        return str(click.Path(exists=True, file_okay=False).convert(text, param, ctx))


def _sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def out_keys(src: RemotePath) -> list[str]:
    """The fsspec paths of the files of the OUT at ``src``, less its stage cache.

    ``OUT/.work/`` holds every shard of every stage (it can be far larger than the
    output) and no command reading OUT needs it, so it is not even listed: the top
    level is listed, then every other folder."""
    fs = src.fs
    fs.invalidate_cache()
    try:
        entries = fs.ls(src.path, detail=True)
    except FileNotFoundError:
        return []
    keys: list[str] = []
    for e in entries:
        name = e["name"].rstrip("/")
        rel = name[len(src.path):].strip("/")
        if not rel or rel == STAGE_CACHE:
            continue
        if e["type"] == "directory":
            keys += [k for k in fs.find(name) if k.rstrip("/") != name]
        else:
            keys.append(name)
    return sorted(keys)


@contextlib.contextmanager
def local_out(out: str | Path, write_back: bool, missing_ok: bool = False) -> Iterator[Path]:
    """A local folder holding the built OUT ``out``, for code that reads and writes files.

    A local path is yielded unchanged (``file://`` stripped): the command works in place.

    For a URL, the files of OUT except the stage cache ``.work/`` (see :func:`out_keys`)
    are fetched into a temp folder named after the URL's last part (the card, the
    viewer's title and LLaMA-Factory's dataset names use OUT's name, so they read as
    for a local OUT of that name), which is yielded.  When the block ends normally and
    ``write_back`` is set, the store is made to match the folder: each file that is new
    or whose content (sha256) changed is uploaded as one whole-object PUT
    (:meth:`RemotePath.write_bytes`: no reader ever sees half a file), then fetched
    files the block deleted are deleted there (a re-export with fewer shards leaves no
    stale ones).  When the block raises, nothing is uploaded or deleted: the store keeps
    the previous, consistent OUT.  (Several changed files are several PUTs: a crash
    during the upload itself can leave some new, some old files, each whole; re-running
    the command completes it.)  The temp folder is always removed.

    A URL with no files raises :class:`RemoteOutError` naming it, unless ``missing_ok``
    (a first build into a new OUT): the folder is then empty.
    """
    loc = location(out)
    if isinstance(loc, Path):
        yield loc
        return
    keys = out_keys(loc)
    if not keys and not missing_ok:
        raise RemoteOutError(f"{loc}: no files there; is it the OUT of a build?")
    tmp = Path(tempfile.mkdtemp(prefix="fusedata-out-"))
    try:
        local = tmp / (loc.name or "out")
        fetched: dict[str, str] = {}
        for key in keys:
            rel = key[len(loc.path):].lstrip("/")
            target = local / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            loc.fs.get_file(key, str(target))
            fetched[rel] = _sha256(target)
        local.mkdir(parents=True, exist_ok=True)
        yield local
        if write_back:
            _write_back(local, loc, fetched)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _write_back(local: Path, dest: RemotePath, fetched: dict[str, str]) -> list[str]:
    """Upload new or changed files of ``local`` to ``dest``; delete the fetched ones that
    are gone.  Returns the uploaded relative paths."""
    now: dict[str, Path] = {}
    for root, dirs, names in os.walk(local):
        base = Path(root).relative_to(local)
        if base == Path("."):
            dirs[:] = [d for d in dirs if d != STAGE_CACHE]
        for n in names:
            now[(base / n).as_posix()] = Path(root) / n
    uploaded = []
    for rel, path in sorted(now.items()):
        if fetched.get(rel) != _sha256(path):
            (dest / rel).write_bytes(path.read_bytes())
            uploaded.append(rel)
    for rel in sorted(set(fetched) - set(now)):
        (dest / rel).unlink(missing_ok=True)
    return uploaded


def shown(out: str | Path, local: Path, path: Path) -> str:
    """How to name ``path`` (a file under the folder :func:`local_out` gave for ``out``)
    to the user: itself for a local OUT, its URL for a remote one."""
    if not is_url(str(out)):
        return str(path)
    return f"{str(out).rstrip('/')}/{path.relative_to(local).as_posix()}"
