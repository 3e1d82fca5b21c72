"""``fusedata`` command line.

Verbs: ``build`` (run or resume a recipe), ``validate`` (check a recipe without
running it), ``inspect`` (counts and example records of a built output), ``view``
(the self-contained record viewer ``OUT/view.html``).
Stage-specific tools add their own verbs below.

The verbs that read a built OUT (``inspect``, ``export``, ``view``, ``report``,
``push``) also take it as a URL (``s3://bucket/prefix``): they work on a local copy
from :func:`fusedata.storage.local_out` and name the URL in what they print.
"""

from __future__ import annotations

from pathlib import Path

import click

from .export import FORMATS
from .layout import CARD, DROPS, LLAMAFACTORY_INFO, TABLES, set_files
from .logs import setup_logging
from .recipe import RecipeError, load_recipe
from .storage import OutFolder, is_url, local_out, shown

STAGE_NAMES = ("prompts", "sample", "score", "verify", "select", "export")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="fusedata")
def cli() -> None:
    """Build FuseChat-3.0 / WRPO style SFT and preference data from several LLMs.

    A recipe (YAML) names the prompt sources, the source and target models, the
    reward model, the verifiers and the selection rules.  `fusedata build
    recipe.yaml` runs prompts -> sample -> score -> verify -> select -> export,
    caching every stage by a content hash so re-runs and crashed runs resume.
    """


def _load(recipe: str):
    try:
        return load_recipe(recipe)
    except RecipeError as e:
        raise click.ClickException(f"invalid recipe\n{e}") from None


@cli.command()
@click.argument("recipe", type=click.Path(dir_okay=False))
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Output folder (default: the recipe's output_dir, relative to the recipe).")
@click.option("--dry-run", is_flag=True,
              help="Print the planned stages, models, sample counts and estimated number of "
                   "generations and sandbox runs; run nothing.")
@click.option("--stages", default=None, metavar="S1,S2",
              help="Run the pipeline only as far as the last stage named "
                   f"({', '.join(STAGE_NAMES)}); earlier stages are reused from the cache.")
@click.option("--executor", type=click.Choice(["local", "ray"]), default=None,
              help="Where shards run (overrides the recipe's executor.type).")
@click.option("--address", default=None,
              help="Ray cluster address for --executor ray (e.g. 10.0.0.1:6379; default: "
                   "RAY_ADDRESS or a local Ray instance).")
@click.option("--no-progress", is_flag=True, help="No progress bars (logs only).")
@click.option("-v", "--verbose", is_flag=True)
def build(recipe: str, out: str | None, dry_run: bool, stages: str | None, executor: str | None,
          address: str | None, no_progress: bool, verbose: bool) -> None:
    """Run (or resume) the build described by RECIPE.

    Finished shards of every stage are kept under the work folder
    (OUTPUT/.work by default); running the same command again skips them, and
    a killed run resumes where it stopped with identical results.
    """
    setup_logging(verbose)
    r = _load(recipe)
    if executor or address:
        r.executor.type = executor or r.executor.type
        r.executor.address = address or r.executor.address
    if dry_run:
        from .build import plan

        click.echo(plan(r, Path(recipe)))
        return
    stage_list = None
    if stages:
        stage_list = tuple(s.strip() for s in stages.split(",") if s.strip())
        bad = [s for s in stage_list if s not in STAGE_NAMES]
        if bad:
            raise click.BadParameter(f"unknown stage {bad[0]!r}; choose from "
                                     f"{', '.join(STAGE_NAMES)}", param_hint="--stages")
    from .build import build as run_build

    res = run_build(r, Path(recipe), out=out, stages=stage_list,
                    progress=not no_progress)
    click.echo(f"\nbuild finished in {res.seconds:.1f}s")
    for name, files in res.files.items():
        from .engine import file_rows

        n = sum(file_rows(f) for f in files)
        click.echo(f"  {name.upper():4s} {n:6d} records  {files[0].parent}/")
    if res.files:
        click.echo(f"output: {res.out_dir}")


@cli.command()
@click.argument("recipe", type=click.Path(dir_okay=False))
def validate(recipe: str) -> None:
    """Check RECIPE without running anything.

    Unknown keys, wrong types and out-of-range values are reported with the
    YAML line and path, e.g. `recipe.yaml:14: models[2].sampling.top_p: must be <= 1`.
    """
    r = _load(recipe)
    click.echo(f"{recipe}: OK ({len(r.prompts)} prompt sources, {len(r.models)} models, "
               f"reward model: {r.reward_model.path if r.reward_model else 'none'})")


@cli.command()
@click.argument("out", type=OutFolder())
@click.option("-n", "--examples", default=2, show_default=True, help="Records shown per set.")
def inspect(out: str, examples: int) -> None:
    """Counts and a few pretty-printed records of a built output folder OUT.

    OUT may be a URL (s3://bucket/prefix): its files, less the stage cache .work/,
    are fetched to a temp folder, read, and deleted; nothing is written back.
    """
    import polars as pl
    from rich.console import Console
    from rich.pretty import Pretty

    con = Console()
    found = False
    with local_out(out, write_back=False) as root:
        for name in TABLES:
            files = set_files(root, name)
            if not files:
                continue
            found = True
            df = pl.read_parquet(files)
            con.rule(f"{name.upper()}: {df.height} records, {len(files)} file(s)")
            if "source_model" in df.columns and df.height:
                counts = df.group_by("category", "source_model").len().sort("category",
                                                                            "source_model")
                con.print(counts)
            for row in df.head(examples).to_dicts():
                con.print(Pretty(row, max_string=300))
        drops = root / DROPS
        if drops.exists():
            d = pl.read_parquet(drops)
            con.rule(f"dropped prompts: {d.height}")
            if d.height:
                con.print(d.group_by("split", "reason").len().sort("split", "reason"))
    if not found:
        raise click.ClickException(f"{out}: no sft/dpo/wrpo parquet files found")


@cli.command("export")
@click.argument("out", type=OutFolder())
@click.option("--format", "formats", type=click.Choice(FORMATS), multiple=True,
              default=("hf",), show_default=True,
              help="hf: the Hub dataset layout and card (always); llamafactory: also "
                   "dataset_info.json (+ DPO in LLaMA-Factory's pairwise shape).")
def export_cmd(out: str, formats: tuple[str, ...]) -> None:
    """Refresh a built OUT folder for publishing, without rebuilding.

    Re-renders the dataset card OUT/README.md from OUT/report.json (written first
    when missing) and, with --format llamafactory, writes OUT/dataset_info.json.
    OUT may be a URL (s3://bucket/prefix): its files, less the stage cache .work/,
    are fetched to a temp folder and the changed ones uploaded back (none on error).
    """
    from .card import write_card
    from .export import write_llamafactory
    from .report import read_report, write_report

    with local_out(out, write_back=True) as root:
        if not any(set_files(root, t) for t in TABLES):
            raise click.ClickException(f"{out}: no sft/dpo/wrpo parquet files (data/NAME/)")
        try:
            rep = read_report(root)
        except ValueError as e:
            raise click.ClickException(_named(str(e), out, root)) from None
        if rep is None:
            rep = write_report(root, shown=out if is_url(out) else None)
        if "llamafactory" in formats:
            write_llamafactory(root)
        write_card(root, report=rep)  # last: it mentions dataset_info.json when present
        msg = (f"{out}: card {shown(out, root, root / CARD)}"
               + (f", LLaMA-Factory {shown(out, root, root / LLAMAFACTORY_INFO)}"
                  if "llamafactory" in formats else ""))
    click.echo(msg)


def _named(msg: str, out: str, root: Path) -> str:
    """An error message about the temp copy of a remote OUT, naming the URL instead."""
    return msg.replace(str(root), out) if is_url(out) else msg


@cli.command("view")
@click.argument("out", type=OutFolder())
@click.option("--open", "open_", is_flag=True,
              help="Open the page in the default browser (needs a local OUT: the temp "
                   "copy of a URL's OUT is deleted when the command ends).")
@click.option("--sample", default=None, type=click.IntRange(min=1), metavar="N",
              help="Records embedded per set, stratified by category and source model "
                   "[default: 2000].")
@click.option("--seed", default=0, show_default=True, help="Seed of the embedded sample.")
def view_cmd(out: str, open_: bool, sample: int | None, seed: int) -> None:
    """Write OUT/view.html: one self-contained page to read the records of a built OUT.

    Pairs (DPO), WRPO triplets, SFT records, drops and the report's table and plots,
    with filters, search, sorting and a seeded random sample; no server, no network.
    OUT may be a URL (s3://bucket/prefix): its files, less the stage cache .work/,
    are fetched to a temp folder and the changed ones uploaded back (none on error).
    """
    from .report import read_report, write_report
    from .view import DEFAULT_SAMPLE, write_view

    if open_ and is_url(out):
        # refused before any work: the page would be opened from a temp copy that is
        # deleted when the command ends
        raise click.UsageError(f"--open needs a local OUT; {out} is a URL: run without "
                               f"--open, then download {out}/view.html and open that")
    with local_out(out, write_back=True) as root:
        if not any(set_files(root, t) for t in TABLES):
            raise click.ClickException(f"{out}: no sft/dpo/wrpo parquet files (data/NAME/)")
        try:
            if read_report(root) is None:
                write_report(root, shown=out if is_url(out) else None)
        except ValueError as e:
            raise click.ClickException(_named(str(e), out, root)) from None
        path = write_view(root, sample=sample or DEFAULT_SAMPLE, seed=seed)
        msg = (f"wrote {shown(out, root, path)} ({path.stat().st_size / 1e6:.1f} MB); "
               "open it in a browser")
    click.echo(msg)
    if open_:
        import webbrowser

        if not webbrowser.open(path.resolve().as_uri()):
            click.echo("no browser found to open it; open the file by hand", err=True)


# Verbs of the stage-specific tools live beside their code.
from .mathcheck.cli import verify_math  # noqa: E402
from .publish import push  # noqa: E402
from .report import report  # noqa: E402
from .train.cli import train  # noqa: E402

for _cmd in (push, report, train, verify_math):
    cli.add_command(_cmd)


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
