"""The commands that read a built OUT on an ``s3://`` OUT (issue 21): report, export,
view, inspect (push is in tests/test_storage.py), on a real S3 server (SeaweedFS).

The demo recipe (tiny models) is built twice, once with ``output_dir`` on the store and
once locally under the same last name (``demo-out``: the card, the viewer's title and
LLaMA-Factory's dataset names use it).  Each test runs a command through click on the
URL and on the local OUT and compares what it wrote, file by file.  The stage cache
``OUT/.work/`` must never be listed or fetched: every call into the filesystem goes
through a spy that fails the test when a path under ``.work/`` passes through it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from fusedata import storage
from fusedata.cli import cli
from fusedata.storage import RemoteOutError, local_out, location

from .conftest import demo_recipe_dict, write_recipe
from .test_storage import s3  # noqa: F401 - the SeaweedFS fixture

BUCKET = "fusedata-test"
NAME = "demo-out"


class FsSpy:
    """Wraps the fsspec filesystem: records every path passed in or listed out."""

    def __init__(self, fs: Any):
        self._fs = fs
        self.seen: list[str] = []
        self.puts: list[str] = []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._fs, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            self.seen += [repr(a) for a in args if isinstance(a, str | list)]
            if name == "pipe_file":
                self.puts.append(args[0])
            res = attr(*args, **kwargs)
            self.seen.append(repr(res))
            return res

        return call

    def assert_no_stage_cache(self) -> None:
        bad = [s for s in self.seen if f"{storage.STAGE_CACHE}/" in s]
        assert not bad, f"the stage cache was listed or fetched: {bad[:3]}"
        # not vacuous: the spy saw OUT's files go by
        assert any("data/sft/" in s for s in self.seen), self.seen[:5]


@pytest.fixture
def spy(s3, monkeypatch):  # noqa: F811 - the imported fixture
    """Every RemotePath's filesystem goes through a :class:`FsSpy`; temp folders made by
    :func:`local_out` are recorded so a test can check they are gone."""
    real = storage._fs("s3")
    sp = FsSpy(real)
    monkeypatch.setattr(storage, "_fs", lambda protocol: sp)
    made: list[Path] = []
    mkdtemp = storage.tempfile.mkdtemp

    def record(*a: Any, **k: Any) -> str:
        made.append(Path(mkdtemp(*a, **k)))
        return str(made[-1])

    monkeypatch.setattr(storage.tempfile, "mkdtemp", record)
    sp.made = made  # type: ignore[attr-defined]
    yield sp
    assert made and not any(p.exists() for p in made), "local_out left its temp folder"


@pytest.fixture(scope="module")
def built(s3, tiny_models, tmp_path_factory):  # noqa: F811 - the imported fixture
    """The demo build on the store and locally: (local OUT, URL), both named demo-out."""
    from fusedata.build import build
    from fusedata.recipe import load_recipe

    base = tmp_path_factory.mktemp("built")
    url = f"s3://{BUCKET}/built/{NAME}"
    for target, rec in ((base / NAME, base / "l.yaml"), (url, base / "r.yaml")):
        write_recipe(rec, demo_recipe_dict(tiny_models, target))  # type: ignore[arg-type]
        build(load_recipe(rec), rec, progress=False)
    assert location(url).glob(".work/sample/*")  # the stage cache is on the store
    return base / NAME, url


def _real() -> Any:
    """The filesystem itself, past the spy (for the tests' own setup and checks)."""
    fs = storage._fs("s3")
    return fs._fs if isinstance(fs, FsSpy) else fs


def _fresh(built: tuple[Path, str], tmp_path: Path, test: str) -> tuple[Path, str]:
    """A copy of both built OUTs for one test (commands change OUT), plus a sentinel
    under the remote ``.work/`` (the spy fails the test if it is ever listed)."""
    local, url = built
    mine = tmp_path / NAME
    shutil.copytree(local, mine, ignore=shutil.ignore_patterns(".work"))
    src = location(url)
    dst = f"{BUCKET}/{test}/{NAME}"
    fs = _real()
    fs.invalidate_cache()
    for key in fs.find(src.path):  # type: ignore[union-attr]
        rel = key[len(src.path) + 1:]  # type: ignore[union-attr]
        if not rel.startswith(".work/"):
            fs.copy(key, f"{dst}/{rel}")
    fs.pipe_file(f"{dst}/.work/sample/sentinel/shard-00000.parquet", b"never fetched")
    return mine, f"s3://{dst}"


def _snapshot(url: str) -> dict[str, bytes]:
    """Every object under the URL (stage cache included), by relative key."""
    loc = location(url)
    fs = _real()
    fs.invalidate_cache()
    return {k[len(loc.path) + 1:]: bytes(fs.cat_file(k))  # type: ignore[union-attr]
            for k in fs.find(loc.path)}  # type: ignore[union-attr]


def _invoke(*args: str) -> str:
    res = CliRunner().invoke(cli, list(args))
    assert res.exit_code == 0, (res.output, res.exception)
    return res.output


def _same(local: Path, url: str, rels: list[str], subst: dict[str, str] | None = None) -> None:
    """The named files of the remote OUT equal the local ones, byte for byte after
    replacing each key of ``subst`` (in the local file) by its value."""
    remote = location(url)
    _real().invalidate_cache()
    for rel in rels:
        a = (local / rel).read_bytes()
        for old, new in (subst or {}).items():
            a = a.replace(old.encode(), new.encode())
        assert (remote / rel).read_bytes() == a, rel


def _changed(before: dict[str, bytes], after: dict[str, bytes]) -> list[str]:
    return sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))


def test_report_on_s3_writes_what_a_local_report_writes(built, spy, tmp_path):
    local, url = _fresh(built, tmp_path, "report")
    before = _snapshot(url)
    out_remote = _invoke("report", url)
    out_local = _invoke("report", str(local))
    spy.assert_no_stage_cache()
    assert f"wrote {url}/report.md and {url}/report.json" in out_remote
    # the report records the OUT as given: the URL, not the temp copy it was made in
    assert json.loads(location(f"{url}/report.json").read_text())["out"] == url
    assert out_remote.replace(url, str(local)) == out_local
    _same(local, url, ["report.json", "report.md", "report/margins.png", "report/lengths.png"],
          {str(local): url})
    after = _snapshot(url)
    # the report names its OUT (the build's URL, not this copy's): it changed; the
    # plots are the same bytes, so they were not uploaded again
    assert _changed(before, after) == ["report.json", "report.md"]
    assert sorted(p.rsplit("/", 1)[-1] for p in spy.puts) == ["report.json", "report.md"]


def test_export_llamafactory_on_s3_writes_what_a_local_export_writes(built, spy, tmp_path):
    local, url = _fresh(built, tmp_path, "export")
    before = _snapshot(url)
    out_remote = _invoke("export", url, "--format", "llamafactory")
    out_local = _invoke("export", str(local), "--format", "llamafactory")
    spy.assert_no_stage_cache()
    assert out_remote == f"{url}: card {url}/README.md, LLaMA-Factory {url}/dataset_info.json\n"
    assert out_local.replace(str(local), url) == out_remote
    lf = sorted(p.relative_to(local).as_posix() for p in (local / "llamafactory").rglob("*")
                if p.is_file())
    assert lf
    # the card embeds the recipe, whose output_dir differs: the local build's is a
    # local path (shown as <local>/demo-out), the remote build's the URL of its OUT
    _same(local, url, ["dataset_info.json", *lf])
    _same(local, url, ["README.md"],
          {f"output_dir: <local>/{NAME}": f"output_dir: s3://{BUCKET}/built/{NAME}"})
    changed = _changed(before, _snapshot(url))
    # the card now mentions dataset_info.json; the report is kept as it was
    assert changed == sorted(["README.md", "dataset_info.json", *lf])


def test_view_on_s3_writes_what_a_local_view_writes(built, spy, tmp_path):
    local, url = _fresh(built, tmp_path, "view")
    out_remote = _invoke("view", url, "--sample", "5")
    out_local = _invoke("view", str(local), "--sample", "5")
    spy.assert_no_stage_cache()
    assert out_remote.startswith(f"wrote {url}/view.html (")
    assert out_local.replace(str(local), url) == out_remote
    _same(local, url, ["view.html"])


def test_view_open_needs_a_local_out(built, s3):  # noqa: F811 - the imported fixture
    res = CliRunner().invoke(cli, ["view", built[1], "--open"])
    assert res.exit_code == 2 and "--open needs a local OUT" in res.output, res.output


def test_inspect_on_s3_prints_what_a_local_inspect_prints(built, spy, tmp_path):
    local, url = _fresh(built, tmp_path, "inspect")
    before = _snapshot(url)
    out_remote = _invoke("inspect", url, "-n", "1")
    out_local = _invoke("inspect", str(local), "-n", "1")
    spy.assert_no_stage_cache()
    assert "SFT:" in out_remote and out_remote == out_local
    assert _snapshot(url) == before and not spy.puts  # read only


def test_a_url_without_files_is_a_clear_error(s3, tmp_path):  # noqa: F811
    url = f"s3://{BUCKET}/no-such-build"
    for cmd in (["report", url], ["export", url], ["view", url], ["inspect", url]):
        res = CliRunner().invoke(cli, cmd)
        assert res.exit_code == 1, (cmd, res.output)
        assert f"{url}: no files there; is it the OUT of a build?" in res.output, res.output
    # a local folder that is not there: click's message, as before
    res = CliRunner().invoke(cli, ["report", str(tmp_path / "missing")])
    assert res.exit_code == 2 and "does not exist" in res.output, res.output


def test_a_command_failing_midway_uploads_nothing(built, spy, tmp_path, monkeypatch):
    """export writes dataset_info.json and the llamafactory files, then the card fails:
    the store is left exactly as it was, and the temp copy is removed."""
    import fusedata.card

    _, url = _fresh(built, tmp_path, "fails")
    before = _snapshot(url)

    def broken(*a: Any, **k: Any) -> None:
        raise RuntimeError("card failed")

    monkeypatch.setattr(fusedata.card, "write_card", broken)
    res = CliRunner().invoke(cli, ["export", url, "--format", "llamafactory"])
    assert res.exit_code == 1 and isinstance(res.exception, RuntimeError), res.output
    assert _snapshot(url) == before and not spy.puts


def test_local_out_puts_back_changes_only(s3, monkeypatch):  # noqa: F811
    """Unchanged files are not re-uploaded, changed and new ones are (one PUT each),
    deleted ones are deleted; .work/ is left alone; a local OUT is used in place."""
    fs = storage._fs("s3")
    base = f"{BUCKET}/unit/{NAME}"
    for rel, data in {"same.txt": b"1", "data/sft/a.parquet": b"2", "gone.txt": b"3",
                      ".hidden.json": b"4", ".work/x/shard.parquet": b"5"}.items():
        fs.pipe_file(f"{base}/{rel}", data)
    spy = FsSpy(fs)
    monkeypatch.setattr(storage, "_fs", lambda protocol: spy)
    with local_out(f"s3://{base}/", write_back=True) as root:
        assert root.name == NAME
        assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                      if p.is_file()) == [".hidden.json", "data/sft/a.parquet", "gone.txt",
                                          "same.txt"]
        (root / "data/sft/a.parquet").write_bytes(b"2 changed")
        (root / "new/b.txt").parent.mkdir()
        (root / "new/b.txt").write_bytes(b"new")
        (root / "gone.txt").unlink()
    assert not root.exists()
    assert sorted(spy.puts) == [f"{base}/data/sft/a.parquet", f"{base}/new/b.txt"]
    assert _snapshot(f"s3://{base}") == {
        "same.txt": b"1", "data/sft/a.parquet": b"2 changed", ".hidden.json": b"4",
        ".work/x/shard.parquet": b"5", "new/b.txt": b"new"}
    with local_out(f"s3://{base}", write_back=False) as root:
        (root / "same.txt").write_bytes(b"not put back")
    assert location(f"s3://{base}/same.txt").read_bytes() == b"1"
    with pytest.raises(RemoteOutError, match=f"s3://{BUCKET}/unit/nothing: no files there"):
        with local_out(f"s3://{BUCKET}/unit/nothing", write_back=True):
            pass
    # a first build into a new OUT starts from an empty folder
    with local_out(f"s3://{BUCKET}/unit/new", write_back=True, missing_ok=True) as root:
        assert root.is_dir() and not any(root.iterdir())
        (root / "a.txt").write_bytes(b"a")
    assert _snapshot(f"s3://{BUCKET}/unit/new") == {"a.txt": b"a"}


def test_local_out_of_a_local_path_is_the_path(tmp_path):
    with local_out(str(tmp_path), write_back=True) as root:
        assert root == tmp_path
    with local_out(f"file://{tmp_path}", write_back=False) as root:
        assert root == tmp_path


def test_a_rebuild_into_an_s3_out_leaves_no_stale_shard(built, tiny_models, tmp_path):
    """A build into an s3:// OUT that holds an earlier build's shards: the build works
    on a local copy of that OUT (``local_out``), so export sees the stale shard and
    removes it, and the report names the URL, not the temp copy."""
    import json

    from fusedata.build import build
    from fusedata.recipe import load_recipe

    url = f"s3://{BUCKET}/rebuild/{NAME}"
    stale = f"{BUCKET}/rebuild/{NAME}/data/sft/train-00007-of-00009.parquet"
    _real().pipe_file(stale, (built[0] / "data/sft/train-00000-of-00001.parquet").read_bytes())
    rec = write_recipe(tmp_path / "r.yaml", demo_recipe_dict(
        tiny_models, url, work_dir=f"{built[1]}/.work"))  # type: ignore[arg-type]
    res = build(load_recipe(rec), rec, progress=False)
    assert all(r.cached for _, r in res.stages)  # the stage cache of the built OUT
    _real().invalidate_cache()
    assert not _real().exists(stale), "a stale shard of an earlier build is still there"
    rep = json.loads(_real().cat_file(f"{BUCKET}/rebuild/{NAME}/report.json"))
    assert rep["out"] == url
