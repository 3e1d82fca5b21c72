"""``fusedata push`` against a local fake Hub (tests/fake_hub.py, 127.0.0.1 only).

Covers the call sequence, the uploaded repository (loads with ``datasets``), stale-shard
deletion, branches, an interrupted upload resumed by re-running the command, the error
messages (missing/rejected token, no permission, name clash, bad id, no export), and
that the token appears in no captured output, log record or written file.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from fusedata.cli import cli
from fusedata.publish import _published_files
from fusedata.report import compute

from .fake_hub import HANG, FakeHub
from .test_export import _export as _export_with_report
from .test_export import _selection


def _export(tmp: Path, sel=None):
    """An export with its card, no report files (tests add them where they need them)."""
    return _export_with_report(tmp, sel=sel, report=False)


@pytest.fixture
def token(monkeypatch, tmp_path) -> str:
    """A fresh token in HF_TOKEN; the login token file points nowhere; Hub calls allowed."""
    import huggingface_hub.constants as hc

    tok = f"hf_fusedataTEST{secrets.token_hex(12)}"
    monkeypatch.setenv("HF_TOKEN", tok)
    monkeypatch.setattr(hc, "HF_TOKEN_PATH", str(tmp_path / "no-login" / "token"))
    monkeypatch.setattr(hc, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hc, "HF_DEBUG", True)  # the most verbose client logging
    return tok


@pytest.fixture
def hub(token, monkeypatch, tmp_path):
    import huggingface_hub.constants as hc

    with FakeHub(token=token, user="tester", orgs=("fuse",)) as h:
        monkeypatch.setenv("HF_ENDPOINT", h.url)
        # huggingface_hub reads these at import; its background look-ups (the agent-harness
        # registry) must go to the fake Hub too, and cache into tmp: loopback traffic only
        monkeypatch.setattr(hc, "ENDPOINT", h.url)
        monkeypatch.setattr(hc, "AGENT_HARNESSES_PATH", str(tmp_path / "hf" / "agents.json"))
        yield h


def _push(*args: str):
    return CliRunner().invoke(cli, ["push", *args])


def _local_files(out: Path) -> dict[str, bytes]:
    return {r: (out / r).read_bytes() for r in _published_files(out)}


def _ops(h: FakeHub) -> list[str]:
    """Recorded calls reduced to endpoint kinds, e.g. 'POST commit'."""
    kinds = []
    for c in h.calls:
        segs = c.path.strip("/").split("/")
        if segs[:2] == ["api", "agent-harnesses"]:
            continue  # huggingface_hub's once-a-day registry look-up
        kinds.append(f"{c.method} {segs[4] if len(segs) > 4 else segs[-1]}")
    return kinds


def test_push_creates_repo_uploads_and_result_loads(hub, tmp_path):
    import datasets

    out, _ = _export(tmp_path)
    (out / ".work" / "sample").mkdir(parents=True)
    (out / ".work" / "sample" / "shard-00000.parquet").write_bytes(b"cache")
    (out / "recipe.json").write_text(json.dumps({"name": "demo", "models": [
        {"name": "a", "path": str(tmp_path / "m")}]}))
    # a report as `fusedata report` writes it: it records the absolute OUT path
    rep = compute(out)
    rep.pop("_series")
    (out / "report.json").write_text(json.dumps({**rep, "plots": {
        "margins": "report/margins.png"}}))
    (out / "report").mkdir()
    (out / "report" / "margins.png").write_bytes(b"\x89PNG")
    res = _push(str(out), "--repo", "fuse/demo", "--private")
    assert res.exit_code == 0, res.output
    assert "pushed 7 files" in res.output and "fuse/demo" in res.output
    assert "not uploaded (they contain local paths): report.json" in res.output
    assert _ops(hub) == ["GET whoami-v2", "POST create", "GET tree", "GET revision", "GET tree",
                         "POST validate-yaml", "POST preupload", "POST commit"]
    assert all(c.authenticated for c in hub.calls if "agent-harnesses" not in c.path)
    repo = hub.repos["fuse/demo"]
    assert repo.private
    remote = hub.files("fuse/demo")
    # byte for byte; the stage cache, recipe.json and the report with a local path stay home
    assert remote == {k: v for k, v in _local_files(out).items() if k != "report.json"}
    assert sorted(remote) == [".fusedata-export.json", "README.md",
                              "data/dpo/train-00000-of-00001.parquet",
                              "data/sft/train-00000-of-00001.parquet",
                              "data/wrpo/train-00000-of-00001.parquet", "drops.parquet",
                              "report/margins.png"]
    assert hub.validated == [remote["README.md"].decode()]
    assert all(str(tmp_path).encode() not in data for data in remote.values())  # no local paths
    # the repository as uploaded is a loadable dataset
    clone = tmp_path / "clone"
    for rel, data in remote.items():
        (clone / rel).parent.mkdir(parents=True, exist_ok=True)
        (clone / rel).write_bytes(data)
    dpo = datasets.load_dataset(str(clone), "dpo", split="train",
                                cache_dir=str(tmp_path / "hf-cache"))
    assert len(dpo) == 3 and dpo[0]["chosen"][0]["role"] == "assistant"

    # pushing again changes nothing: no commit
    again = _push(str(out), "--repo", "fuse/demo")
    assert again.exit_code == 0, again.output
    assert len(repo.commits) == 1 and "unchanged" in again.output

    # a re-export without WRPO: the remote WRPO shard is deleted in the same commit
    sel = _selection()
    sel["wrpo"] = sel["wrpo"].clear()
    _export(tmp_path, sel=sel)
    third = _push(str(out), "--repo", "fuse/demo")
    assert third.exit_code == 0, third.output
    assert repo.commits[-1]["deleted"] == ["data/wrpo/train-00000-of-00001.parquet"]
    assert hub.files("fuse/demo") == {k: v for k, v in _local_files(out).items()
                                      if k != "report.json"}


def test_interrupted_upload_resumes(hub, tmp_path, monkeypatch):
    import huggingface_hub._upload_pipeline as up

    out, _ = _export(tmp_path)
    local = _local_files(out)
    # two files per commit, so an upload of 6 files takes 3 commits; the 2nd one fails
    monkeypatch.setattr(up, "COMMIT_SIZE_SCALE", [2] * len(up.COMMIT_SIZE_SCALE))
    hub.fail["commit"] = [0, 507]
    first = _push(str(out), "--repo", "fuse/demo")
    assert first.exit_code != 0
    assert "Re-running the same command resumes the upload" in first.output
    repo = hub.repos["fuse/demo"]
    assert len(repo.commits) == 1
    done = set(repo.commits[0]["added"])
    assert len(done) == 2 and set(hub.files("fuse/demo")) == done

    second = _push(str(out), "--repo", "fuse/demo")
    assert second.exit_code == 0, second.output
    resent = {f for c in repo.commits[1:] for f in c["added"]}
    assert resent == set(local) - done  # committed files were not sent again
    assert hub.files("fuse/demo") == local


def test_push_killed_mid_upload_resumes(hub, token, tmp_path):
    """SIGKILL the push process while its 2nd commit is in flight; the re-run finishes
    the job without re-sending what the 1st commit stored."""
    out, _ = _export(tmp_path)
    local = _local_files(out)
    hub.fail["commit"] = [0, HANG]
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(HF_TOKEN=token, HF_ENDPOINT=hub.url, HF_HOME=str(tmp_path / "hf-home"),
               PYTHONPATH=str(Path(__file__).resolve().parents[1]), HF_DEBUG="1")
    code = ("import huggingface_hub._upload_pipeline as u; u.COMMIT_SIZE_SCALE = [2] * 10; "
            "from fusedata.cli import main; main()")
    p = subprocess.Popen([sys.executable, "-c", code, "push", str(out), "--repo", "fuse/demo"],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    def commits_seen() -> int:
        return sum(c.path.endswith("/commit/main") for c in hub.calls)

    deadline = time.time() + 60
    while time.time() < deadline and p.poll() is None and commits_seen() < 2:
        time.sleep(0.02)
    assert commits_seen() == 2 and p.poll() is None, "the 2nd commit should be in flight"
    p.send_signal(signal.SIGKILL)
    stdout, stderr = p.communicate(timeout=30)
    assert p.returncode == -signal.SIGKILL
    repo = hub.repos["fuse/demo"]
    assert len(repo.commits) == 1
    done = set(repo.commits[0]["added"])
    assert token.encode() not in stdout + stderr
    assert b"<TOKEN>" in stderr  # HF_DEBUG logged the request, with the token masked

    again = _push(str(out), "--repo", "fuse/demo")
    assert again.exit_code == 0, again.output
    assert {f for c in repo.commits[1:] for f in c["added"]} == set(local) - done
    assert hub.files("fuse/demo") == local


def test_revision_branch(hub, tmp_path):
    out, _ = _export(tmp_path)
    res = _push(str(out), "--repo", "fuse/demo", "--revision", "v2")
    assert res.exit_code == 0, res.output
    assert "POST branch" in _ops(hub)
    assert hub.files("fuse/demo", "v2") == _local_files(out)
    assert hub.files("fuse/demo", "main") == {}


def test_error_messages(hub, token, tmp_path, monkeypatch):
    out, _ = _export(tmp_path)

    bad = _push(str(out), "--repo", "no-namespace")
    assert bad.exit_code != 0 and "expected ORG/NAME" in bad.output

    denied = _push(str(out), "--repo", "someone-else/demo")
    assert denied.exit_code != 0 and "permission denied (HTTP 403)" in denied.output
    assert "someone-else/demo" in denied.output

    # an existing repo in a namespace we cannot write to
    hub.add_repo("acme/data", owner="acme")
    no_write = _push(str(out), "--repo", "acme/data")
    assert no_write.exit_code != 0 and "permission denied" in no_write.output

    # --private never uploads into an existing public repo
    hub.add_repo("fuse/public", owner="fuse", files={".fusedata-export.json": b"{}"})
    public = _push(str(out), "--repo", "fuse/public", "--private")
    assert public.exit_code != 0 and "already exists and is public" in public.output
    assert not hub.repos["fuse/public"].commits

    # a repository fusedata did not create: refuse, then --overwrite
    hub.add_repo("fuse/taken", owner="fuse", files={"README.md": b"# theirs",
                                                    "weights.bin": b"\x00"})
    clash = _push(str(out), "--repo", "fuse/taken")
    assert clash.exit_code != 0 and "name clash" in clash.output
    assert "README.md, weights.bin" in clash.output and "--overwrite" in clash.output
    assert not hub.repos["fuse/taken"].commits
    forced = _push(str(out), "--repo", "fuse/taken", "--overwrite")
    assert forced.exit_code == 0, forced.output
    assert hub.files("fuse/taken")["weights.bin"] == b"\x00"  # outside data/: kept

    legacy = tmp_path / "legacy"  # the pre-Hub layout (OUT/sft/) is not an export
    (legacy / "sft").mkdir(parents=True)
    (legacy / "sft" / "train-00000-of-00001.parquet").write_bytes(b"x")
    old = _push(str(legacy), "--repo", "fuse/demo")
    assert old.exit_code != 0 and "not a fusedata export" in old.output

    monkeypatch.setenv("HF_TOKEN", "hf_wrong")
    wrong = _push(str(out), "--repo", "fuse/demo")
    assert wrong.exit_code != 0 and "token was rejected (HTTP 401)" in wrong.output

    monkeypatch.delenv("HF_TOKEN")
    missing = _push(str(out), "--repo", "fuse/demo")
    assert missing.exit_code != 0 and "no Hugging Face token found" in missing.output
    # the login token file (`hf auth login`) is the other usual source
    import huggingface_hub.constants as hc

    Path(hc.HF_TOKEN_PATH).parent.mkdir(parents=True)
    Path(hc.HF_TOKEN_PATH).write_text(token)
    from_file = _push(str(out), "--repo", "fuse/from-file")
    assert from_file.exit_code == 0, from_file.output
    assert hub.files("fuse/from-file") == _local_files(out)
    for r in (bad, denied, no_write, public, clash, forced, old, wrong, missing, from_file):
        assert token not in r.output


def test_token_never_printed_logged_or_written(hub, token, tmp_path, capfd, caplog,
                                               monkeypatch):
    import huggingface_hub._upload_pipeline as up

    caplog.set_level(logging.DEBUG)
    # transformers/datasets may have turned propagation off for the huggingface_hub logger:
    # capture its records directly, at DEBUG
    for name in ("huggingface_hub", "fusedata"):
        lg = logging.getLogger(name)
        monkeypatch.setattr(lg, "level", logging.DEBUG)
        monkeypatch.setattr(lg, "handlers", [*lg.handlers, caplog.handler])
    out, _ = _export(tmp_path)
    monkeypatch.setattr(up, "COMMIT_SIZE_SCALE", [2] * len(up.COMMIT_SIZE_SCALE))
    hub.fail["commit"] = [0, 507]
    outputs = [_push(str(out), "--repo", "fuse/demo").output,
               _push(str(out), "--repo", "fuse/demo").output]
    assert hub.files("fuse/demo") == _local_files(out)
    # the token did travel (to the fake Hub, in the Authorization header) ...
    assert all(c.authenticated for c in hub.calls if "agent-harnesses" not in c.path)
    # ... and nowhere else: CLI output, fd-level stdout/stderr, log records, files
    cap = capfd.readouterr()
    assert "authorization: <TOKEN>" in caplog.text  # the client's debug log, masked
    logs = "\n".join(f"{r.getMessage()} {r.args}" for r in caplog.records)
    for text in (*outputs, cap.out, cap.err, logs, caplog.text):
        assert token not in text
    for f in tmp_path.rglob("*"):
        if f.is_file() and f.name != "token":  # the user's own login file, made by the test
            assert token.encode() not in f.read_bytes(), f
    for data in hub.files("fuse/demo").values():
        assert token.encode() not in data


def test_a_report_json_of_another_shape_stops_the_push_before_any_upload(tmp_path):
    out, _ = _export(tmp_path)
    (out / "report.json").write_text(json.dumps({"composition": [], "kept_pct": 1}))
    res = _push(str(out), "--repo", "fuse/demo")
    assert res.exit_code != 0 and "not a report.json of schema version 1" in res.output
