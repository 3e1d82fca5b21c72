"""Wire the stages into a build: prompts -> sample -> score -> verify -> select -> export.

This is the one place that knows the order of stages; the stages themselves
only see the records handed to them.  Per model, sample/score/verify are
separate cache entries, so adding or changing one model leaves the others'
work in place.  All relative paths in a recipe are relative to the recipe file.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from .engine import Dataset, Engine, StageResult, atomic_write_text, stable_hash
from .recipe import Recipe
from .storage import RemotePath, location

log = logging.getLogger("fusedata")

STAGES = ("prompts", "sample", "score", "verify", "select", "export")


@dataclass
class BuildResult:
    out_dir: Path | RemotePath
    files: dict[str, list[Path | RemotePath]] = field(default_factory=dict)
    stages: list[tuple[str, StageResult]] = field(default_factory=list)
    seconds: float = 0.0


def resolve(recipe: Recipe, base: Path) -> Recipe:
    """Make model and data paths absolute (relative to the recipe's folder)."""
    r = recipe.model_copy(deep=True)
    for m in r.models:
        if m.path and (base / m.path).exists():
            m.path = str((base / m.path).resolve())
    if r.reward_model and (base / r.reward_model.path).exists():
        r.reward_model.path = str((base / r.reward_model.path).resolve())
    return r


def shard_size(recipe: Recipe, stage: str) -> int | None:
    """The recipe's shard size for a map stage; None leaves the stage's own default.

    ``executor.shard_size`` is one number for every map stage or a mapping per
    stage (``{sample: 64, score: 256, verify: 512}``).
    """
    size = recipe.executor.shard_size
    if isinstance(size, dict):
        return size.get(stage)  # type: ignore[call-overload]
    return size


def prepare_demo(recipe: Recipe, base: Path) -> None:
    if not recipe.demo:
        return
    from .tiny import ensure_demo_models

    folder = base / recipe.demo.get("models_dir", "demo-models")
    print(f"[demo] models are RANDOM-WEIGHT STAND-INS built locally in {folder} "
          "(no download): the responses are gibberish; the pipeline is real.")
    ensure_demo_models(folder, seed=int(recipe.demo.get("seed", 0)))


def build(recipe: Recipe, recipe_path: Path, out: Path | RemotePath | str | None = None,
          stages: tuple[str, ...] | None = None, progress: bool = True) -> BuildResult:
    """Run (or resume) the whole build; returns where the outputs are.

    ``out`` (or the recipe's ``output_dir``) may be an fsspec URL: the stage cache then
    defaults to ``OUT/.work`` on the store, and the output files are made in a local
    copy of OUT (:func:`fusedata.storage.local_out`: the previous build's outputs, less
    ``.work/``, so export sees and removes stale shards and skips unchanged files) and
    what changed is put back file by file."""
    t0 = time.perf_counter()
    base = recipe_path.resolve().parent
    prepare_demo(recipe, base)
    recipe = resolve(recipe, base)
    out_dir = recipe.out_path(base) if out is None else location(out)
    if isinstance(out_dir, Path):
        out_dir = out_dir.resolve()
    work = ((out_dir / ".work") if (out is not None and not recipe.work_dir)
            else recipe.work_path(base))
    from .executors import get_executor

    cfg = recipe.executor
    executor = get_executor(cfg.type, cfg.address, cfg.resources)
    engine = Engine(work=work, progress=progress, executor=executor)
    try:
        if not isinstance(out_dir, RemotePath):
            return _run(recipe, base, out_dir, engine, stages, t0)
        from .storage import local_out

        with local_out(out_dir, write_back=True, missing_ok=True) as staging:
            res = _run(recipe, base, staging, engine, stages, t0, shown=str(out_dir))
        res.out_dir = out_dir
        res.files = {k: [out_dir / p.relative_to(staging).as_posix() for p in fs]
                     for k, fs in res.files.items()}
        return res
    finally:
        executor.close()


def _run(recipe: Recipe, base: Path, out_dir: Path, engine: Engine,
         stages: tuple[str, ...] | None, t0: float, shown: str | None = None
         ) -> BuildResult:
    """The stages; ``out_dir`` is local (for a URL OUT: the local copy ``shown`` names)."""
    # `stages` names what the user wants; the build goes as far as the last one named
    # (earlier stages come from the cache, or run if they never ran).
    last = max(STAGES.index(s) for s in (stages or STAGES))
    res = BuildResult(out_dir=out_dir)

    def want(stage: str) -> bool:
        return STAGES.index(stage) <= last

    from .prompts import load_prompts, merge_prompts

    per_source = load_prompts(engine, recipe.prompts, base)
    prompts = merge_prompts(engine, per_source)
    per_model: dict[str, Dataset] = {}
    if want("sample"):
        from .sample import RoutePrompts, SampleStage
        from .score import ScoreStage
        from .verify import VerifyStage

        for m in recipe.models:
            routed = engine.reduce(RoutePrompts(m), {"prompts": prompts}, label=m.name)["prompts"]
            ds = engine.map(SampleStage(m, shard_size=shard_size(recipe, "sample")), routed,
                            label=m.name).dataset
            if want("score"):
                if recipe.reward_model is None:
                    raise ValueError("recipe has no reward_model: the score stage needs one")
                ds = engine.map(ScoreStage(recipe.reward_model, prompts,
                                           shard_size=shard_size(recipe, "score"),
                                           cache_dir=engine.work / "score_cache"),
                                ds, m.name).dataset
            if want("verify"):
                ds = engine.map(VerifyStage(recipe.verifiers, prompts,
                                            shard_size=shard_size(recipe, "verify")),
                                ds, m.name).dataset
            per_model[m.name] = ds
    if want("select"):
        from .select import SelectStage

        sel = engine.reduce(SelectStage(recipe.selection),
                            {"prompts": prompts,
                             **{f"responses:{k}": v for k, v in per_model.items()}})
        if want("export"):
            from .export import export

            res.files = export(sel, prompts, out_dir)
            atomic_write_text(json.dumps(recipe.model_dump(mode="json"), indent=1),
                              out_dir / "recipe.json")
            _report_and_card(out_dir, recipe, shown)
            _view(out_dir, recipe, sel, prompts, per_model)
    res.stages = engine.results
    res.seconds = time.perf_counter() - t0
    return res


def _filters_text(src) -> str:
    parts = []
    for f in src.filters:
        d = f.model_dump(exclude={"type"}, exclude_defaults=True)
        parts.append(f.type + (f"({', '.join(f'{k}={v}' for k, v in d.items())})" if d else ""))
    return ", ".join(parts)


def _report_and_card(out_dir: Path, recipe: Recipe, shown: str | None = None) -> None:
    """Write the report, then the card that embeds its table; skipped when nothing changed.

    Keyed by the export marker and the recipe, so a cached re-run does not pay for
    matplotlib and the histograms.
    """
    from .layout import MARKER

    key = stable_hash({"export": (out_dir / MARKER).read_text(),
                       "recipe": recipe.model_dump(mode="json"), "version": 1})
    marker = out_dir / ".fusedata-report.json"
    if (marker.exists() and json.loads(marker.read_text()).get("key") == key
            and (out_dir / "report.json").exists() and (out_dir / "README.md").exists()):
        return
    from .card import write_card
    from .report import write_report

    write_report(out_dir, shown=shown)
    write_card(out_dir, recipe=recipe)  # the card embeds the report's composition table
    atomic_write_text(json.dumps({"key": key}), marker)


def _view(out_dir: Path, recipe: Recipe, selection: dict[str, Dataset], prompts: Dataset,
          responses: dict[str, Dataset]) -> None:
    """Write ``OUT/view.html`` after the report (it embeds the report's table and plots);
    skipped when nothing changed, keyed like the report so a cached re-run does no work.

    The exported files say only why a prompt was dropped, and carry no verdicts; the
    build still holds the prompts and the scored, verified responses, so it records
    both for the viewer first.
    """
    from .engine import atomic_write_parquet
    from .layout import MARKER, REPORT_JSON, VIEW_DROPS, VIEW_HTML, VIEW_VERDICTS
    from .view import VERSION, drop_details, record_verdicts, write_view

    key = stable_hash({"export": (out_dir / MARKER).read_text(),
                       "report": (out_dir / REPORT_JSON).read_text(),
                       "inputs": [{k: v.key for k, v in selection.items()}, prompts.key,
                                  {k: v.key for k, v in responses.items()}],
                       "recipe": recipe.model_dump(mode="json"), "version": VERSION})
    marker = out_dir / ".fusedata-view.json"
    if (marker.exists() and json.loads(marker.read_text()).get("key") == key
            and all((out_dir / f).exists() for f in (VIEW_HTML, VIEW_DROPS, VIEW_VERDICTS))):
        return
    scans = [d.scan() for d in responses.values()]
    atomic_write_parquet(drop_details(selection["drops"].scan(), prompts.scan(), scans),
                         out_dir / VIEW_DROPS)
    atomic_write_parquet(record_verdicts({k: v.scan() for k, v in selection.items()
                                          if k != "drops"}, scans),
                         out_dir / VIEW_VERDICTS)
    write_view(out_dir)
    atomic_write_text(json.dumps({"key": key}), marker)


def plan(recipe: Recipe, recipe_path: Path) -> str:
    """A human-readable plan for ``--dry-run``: stages, models, and how much work.

    Local sources are loaded (and filtered) to count their prompts exactly; Hub
    sources are never contacted: their ``limit`` (the target count) is the
    estimate, and a Hub source without ``limit`` makes the totals lower bounds.
    Responses of ``import`` models are counted as imports, not generations (they
    are still scored and verified).
    """
    base = recipe_path.resolve().parent
    lines = [f"recipe {recipe.name!r}: stages {' -> '.join(STAGES)}",
             f"output: {recipe.out_path(base)}   cache: {recipe.work_path(base)}", "",
             "prompt sources:"]
    counts: dict[str, tuple[str, int | None]] = {}
    for s in recipe.prompts:
        n: int | None = s.limit
        local = (base / s.path).exists() and s.format != "hf"
        if local:
            from .prompts import PromptsStage

            df = PromptsStage(s, base).reduce({})["prompts"]
            n = df.height
            how = "exact (local file loaded)"
        elif n is not None:
            how = "target (Hub, not contacted)"
        else:
            how = "unknown (Hub, no limit)"
        counts[s.name] = (s.category, n)
        flt = _filters_text(s)
        lines.append(f"  {s.name:24s} {s.category:12s} {n if n is not None else '?':>8} prompts "
                     f"[{how}]  <- {s.path} (loader {s.loader})")
        if flt:
            lines.append(f"  {'':24s} filters: {flt}")
    by_cat: dict[str, int] = {}
    for cat, n in counts.values():
        by_cat[cat] = by_cat.get(cat, 0) + (n or 0)
    lines.append("  per category: " + ", ".join(f"{c} {n:,}" for c, n in by_cat.items()))
    gens = imports = code_runs = math_checks = 0
    unknown = False
    lines += ["", "models:"]
    for m in recipe.models:
        per = []
        total = 0
        for name, (cat, n) in counts.items():
            if m.sources is not None and name not in m.sources:
                continue
            k = m.samples_for(cat)
            if k == 0:
                continue
            if n is None:
                unknown = True
                per.append(f"{name} x{k} (? prompts)")
                continue
            total += n * k
            code_runs += n * k if cat == "code" else 0
            math_checks += n * k if cat == "math" else 0
            per.append(f"{name} {n:,} x{k}")
        sp = m.sampling
        if m.backend == "import":
            imports += total
            lines.append(f"  {m.name} [{m.role}, import: the sources' existing responses]: "
                         f"{total:,} imported responses ({', '.join(per) or 'none'})")
            continue
        gens += total
        lines.append(f"  {m.name} [{m.role}, {m.backend}] {m.path}: temp {sp.temperature} "
                     f"top_p {sp.top_p} rep {sp.repetition_penalty} max_tokens {sp.max_tokens}")
        samples = ", ".join(f"{c} {k}" for c, k in m.samples.items())
        lines.append(f"      samples per prompt: {samples}; {total:,} generations "
                     f"({', '.join(per) or 'none'})")
    rm = recipe.reward_model
    more = " (+ sources of unknown size)" if unknown else ""
    lines += ["", f"reward model: {rm.path if rm else 'none'}"
              + (f" (output {rm.output}, trust_remote_code {rm.trust_remote_code})" if rm else ""),
              f"estimated generations: {gens:,}{more}",
              f"imported responses: {imports:,}",
              f"estimated reward-model scorings: {gens + imports:,}{more}",
              f"estimated math checks: {math_checks:,}{more}",
              f"estimated sandbox runs: {code_runs:,}{more}"]
    return "\n".join(lines)
