"""``fusedata push``: publish an exported ``OUT/`` folder as a Hugging Face dataset repo.

What it does, in order, so every failure has a clear message before any upload:

1. checks ``OUT/`` is an export in the Hub layout (``README.md`` + ``data/*/``) and
   re-renders the card (it picks up a ``report.json`` written since the build);
2. finds the token the usual way (``HF_TOKEN``, then the token file written by
   ``hf auth login``); the token is passed to huggingface_hub and never printed,
   logged or written anywhere by fusedata;
3. ``whoami`` (a rejected token is reported as such), ``create_repo(exist_ok=True)``
   and, for ``--revision``, ``create_branch(exist_ok=True)``;
4. refuses to write into an existing repo that fusedata did not create (a *name
   clash*: it holds files but no ``.fusedata-export.json``) unless ``--overwrite``;
5. uploads with ``HfApi.upload_folder``: in huggingface_hub >= 1.x with ``hf_xet``
   this is the streamed, multi-commit, resumable upload (the successor of
   ``upload_large_folder``): re-running the same command after an interruption skips
   files already committed (the Hub reports their oids) and re-sends only the rest.
   Remote ``data/`` files that the new export no longer has are deleted in the same
   commit, so a smaller re-export never leaves stale shards behind.

Only the published files travel: the card (with the recipe), ``data/``,
``drops.parquet``, the report and the LLaMA-Factory files; never the stage cache
(``OUT/.work``) nor ``recipe.json`` (absolute local paths).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import click

from .layout import (
    CARD,
    DATA_DIR,
    DROPS,
    LLAMAFACTORY_DIR,
    LLAMAFACTORY_INFO,
    MARKER,
    PLOT_DIR,
    REPORT_JSON,
    REPORT_MD,
    exported_sets,
)
from .storage import OutFolder, is_url, local_out

log = logging.getLogger("fusedata")

#: what a push uploads (fnmatch patterns relative to OUT; ``*`` crosses folders).  Not
#: ``recipe.json``: it holds absolute local paths; the card embeds the recipe with them
#: shortened to ``<local>/NAME``.
PUBLISHED = [CARD, f"{DATA_DIR}/*", DROPS, REPORT_JSON, REPORT_MD, f"{PLOT_DIR}/*",
             LLAMAFACTORY_INFO, f"{LLAMAFACTORY_DIR}/*", MARKER]
#: text files checked for local paths before they are published
_TEXT = (".md", ".json", ".txt", ".yaml", ".yml")
#: remote files a push may replace or delete (stale shards of an earlier export)
MANAGED = [f"{DATA_DIR}/*", f"{LLAMAFACTORY_DIR}/*"]


class PushError(click.ClickException):
    """A push failed for a reason the user can fix; the message says which."""


@dataclass
class PushResult:
    repo_id: str
    revision: str
    url: str
    commit: str | None
    files: int
    changed: bool = True
    withheld: list[str] = field(default_factory=list)


def _published_files(out: Path) -> list[str]:
    from huggingface_hub.utils import filter_repo_objects

    rels = [MARKER] if (out / MARKER).is_file() else []
    for root, dirs, names in os.walk(out):
        # hidden folders (the stage cache .work/) and temp files never travel
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        base = Path(root).relative_to(out)
        rels += [(base / n).as_posix() for n in sorted(names) if not n.startswith(".")]
    return sorted(filter_repo_objects(rels, allow_patterns=PUBLISHED))


def withhold_local_paths(out: Path, files: list[str]) -> tuple[list[str], list[str]]:
    """Split ``files`` into (publishable, withheld): a text file that names the folder
    OUT lives in (e.g. a report recording ``"out": "/home/alice/runs/x"``) stays home,
    so a push never reveals local paths or user names."""
    parent = str(out.resolve().parent)
    keep, withheld = [], []
    for rel in files:
        if rel.endswith(_TEXT) and parent not in ("/", "") and \
                parent in (out / rel).read_text(encoding="utf-8", errors="replace"):
            withheld.append(rel)
        else:
            keep.append(rel)
    return keep, withheld


def check_out_dir(out: Path) -> list[str]:
    """The files a push would upload; errors when ``out`` is not a Hub-layout export."""
    if not out.is_dir():
        raise PushError(f"{out}: no such folder")
    if not exported_sets(out):
        raise PushError(f"{out}: no data/sft, data/dpo or data/wrpo parquet files: not a "
                        "fusedata export")
    return _published_files(out)


def resolve_token(token: str | None = None) -> str:
    """The HF token from the argument, ``HF_TOKEN`` or the login token file."""
    if token:
        return token
    from huggingface_hub import get_token

    found = get_token()
    if not found:
        raise PushError("no Hugging Face token found: set HF_TOKEN, or run `hf auth login` "
                        "(a token with write access to the target namespace)")
    return found


def _http_status(err: BaseException) -> int | None:
    resp = getattr(err, "response", None)
    return getattr(resp, "status_code", None)


def _explain(err: Exception, repo_id: str, action: str) -> PushError:
    """Turn a huggingface_hub error into a message that says what to do."""
    from huggingface_hub.errors import (
        HfHubHTTPError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    if isinstance(err, OfflineModeIsEnabled):
        return PushError("HF_HUB_OFFLINE is set: unset it to push")
    status = _http_status(err)
    server = ""
    if isinstance(err, HfHubHTTPError) and err.server_message:
        server = f" (server: {err.server_message.strip()})"
    if isinstance(err, RevisionNotFoundError):
        return PushError(f"{action} {repo_id}: revision not found{server}")
    if status in (401, 403) or isinstance(err, RepositoryNotFoundError):
        return PushError(f"{action} {repo_id}: permission denied (HTTP {status}): the token "
                         f"has no write access to this repository or its namespace{server}")
    if status == 409:
        return PushError(f"{action} {repo_id}: name clash (HTTP 409){server}; choose another "
                         "--repo")
    hint = (" Re-running the same command resumes the upload (committed files are skipped)."
            if action == "uploading to" else "")
    return PushError(f"{action} {repo_id} failed: {type(err).__name__}: {err}.{hint}")


def push_folder(out: Path | str, repo_id: str, *, private: bool = False,
                revision: str | None = None, token: str | None = None,
                endpoint: str | None = None, overwrite: bool = False,
                commit_message: str | None = None) -> PushResult:
    """Create (if needed) the dataset repo ``repo_id`` and upload ``out`` to it; resumable.

    ``out`` may be an fsspec URL (an ``s3://`` OUT of a cluster build): its files,
    less the stage cache ``.work/`` (never published), are fetched into a temp folder
    (:func:`fusedata.storage.local_out`) that is pushed as a local OUT would be."""
    if is_url(str(out)):
        # a temp copy named as the URL's last part (the card and the commit message use
        # OUT's name); nothing is written back: the card is re-rendered in the copy
        with local_out(str(out), write_back=False) as local:
            return push_folder(local, repo_id, private=private, revision=revision,
                               token=token, endpoint=endpoint, overwrite=overwrite,
                               commit_message=commit_message)
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    from .card import write_card

    out = Path(out)
    if repo_id.count("/") != 1:
        raise PushError(f"--repo {repo_id!r}: expected ORG/NAME (e.g. my-org/fusechat-data)")
    try:
        validate_repo_id(repo_id)
    except HFValidationError as e:
        raise PushError(f"--repo {repo_id!r}: not a valid repository id: {e}") from None
    check_out_dir(out)
    if (out / MARKER).exists():
        try:
            write_card(out)
        except ValueError as e:  # a report.json fusedata did not write
            raise PushError(str(e)) from None
    files, withheld = withhold_local_paths(out, _published_files(out))
    if CARD in withheld:
        raise PushError(f"{out}/README.md names the local folder {out.resolve().parent}: "
                        "edit it (or re-run `fusedata export OUT`) before publishing")
    for rel in withheld:
        log.warning("not uploading %s: it contains a local path (%s)", rel, out.resolve().parent)
    tok = resolve_token(token)
    api = HfApi(endpoint=endpoint or os.environ.get("HF_ENDPOINT") or None, token=tok)
    branch = revision or "main"

    try:
        user = api.whoami(token=tok)
    except Exception as e:
        if _http_status(e) == 401:
            raise PushError("the Hugging Face token was rejected (HTTP 401): log in again with "
                            "`hf auth login` or set a valid HF_TOKEN") from None
        raise _explain(e, repo_id, "checking the token for") from None
    log.info("pushing %s to dataset %s@%s as %s (%d files)", out, repo_id, branch,
             user.get("name", "?"), len(files))
    try:
        url = api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    except Exception as e:
        raise _explain(e, repo_id, "creating") from None
    try:
        if branch != "main":
            api.create_branch(repo_id, repo_type="dataset", branch=branch, exist_ok=True)
        remote = api.list_repo_files(repo_id, repo_type="dataset", revision=branch)
        repo_info = api.repo_info(repo_id, repo_type="dataset", revision=branch)
    except Exception as e:
        raise _explain(e, repo_id, "reading") from None
    head = repo_info.sha
    if private and repo_info.private is False:
        raise PushError(f"dataset {repo_id} already exists and is public: --private does not "
                        "change an existing repo's visibility; make it private on the Hub "
                        "first, or choose another --repo")
    foreign = [f for f in remote if f != ".gitattributes"]
    if foreign and MARKER not in remote and not overwrite:
        shown = ", ".join(sorted(foreign)[:5]) + (" ..." if len(foreign) > 5 else "")
        raise PushError(f"name clash: dataset {repo_id}@{branch} already exists and holds files "
                        f"fusedata did not write ({shown}); choose another --repo, or pass "
                        "--overwrite to upload into it anyway")
    try:
        info = api.upload_folder(
            repo_id=repo_id, repo_type="dataset", folder_path=out, revision=branch,
            allow_patterns=files, delete_patterns=MANAGED,
            commit_message=commit_message or f"Upload {out.resolve().name} with fusedata")
    except PushError:
        raise
    except Exception as e:
        raise _explain(e, repo_id, "uploading to") from None
    oid = getattr(info, "oid", None)
    return PushResult(repo_id=repo_id, revision=branch, url=str(url), commit=oid,
                      files=len(files), changed=oid != head, withheld=withheld)


@click.command("push")
@click.argument("out", type=OutFolder())
@click.option("--repo", "repo_id", required=True, metavar="ORG/NAME",
              help="Dataset repository to create (if needed) and upload to.")
@click.option("--private", is_flag=True, help="Create the repository as private.")
@click.option("--revision", default=None, metavar="BRANCH",
              help="Branch to upload to (created from main if missing). Default: main.")
@click.option("--overwrite", is_flag=True,
              help="Upload into an existing repository that fusedata did not create.")
@click.option("-m", "--message", default=None, help="Commit message.")
def push(out: str, repo_id: str, private: bool, revision: str | None, overwrite: bool,
                 message: str | None) -> None:
    """Publish the exported folder OUT as the Hugging Face dataset ORG/NAME.

    The token comes from HF_TOKEN or `hf auth login` and is never printed.
    HF_ENDPOINT selects another Hub endpoint.  An interrupted upload resumes when the
    same command is run again: files already committed are skipped.
    """
    res = push_folder(out, repo_id, private=private, revision=revision, overwrite=overwrite,
               commit_message=message)
    what = f"commit {res.commit}" if res.changed else f"commit {res.commit}, unchanged"
    click.echo(f"pushed {res.files} files to {res.url} (revision {res.revision}, {what})")
    if res.withheld:
        click.echo(f"not uploaded (they contain local paths): {', '.join(res.withheld)}")
    click.echo(f'load with: datasets.load_dataset("{res.repo_id}", "sft")')
