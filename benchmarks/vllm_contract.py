"""Check fusedata's vLLM backend and the test fake against a vLLM wheel's source (not a CI test).

vLLM cannot be installed where fusedata's tests run, so the backend only ever
meets ``tests/fake_vllm``.  This script reads vLLM's own source - parsed with
``ast``, never imported, so no GPU or CUDA torch is needed - and fails if

* the backend uses a name vLLM lacks: an ``LLM`` keyword that is neither an
  ``LLM.__init__`` parameter nor an ``EngineArgs`` field, a ``SamplingParams``
  field, a ``RequestOutput`` / ``CompletionOutput`` attribute, a method or
  attribute on the ``llm.llm_engine.engine_core`` chain, an imported function;
* the fake's signatures differ from vLLM's: a parameter vLLM lacks, a
  different kind (positional / keyword-only), order or literal default; or the
  fake has a ``shutdown`` where vLLM has none;
* a limit the recipe schema copies from vLLM has changed (temperature range,
  ``_MAX_TEMP``, the greedy ``n == 1`` rule, the ``>= max_model_len`` rejection).

Usage::

    python benchmarks/vllm_contract.py                 # pip download vllm==0.33.0 to a temp dir
    python benchmarks/vllm_contract.py --version 0.32.0
    python benchmarks/vllm_contract.py --wheel /tmp/vllm-wheel/vllm-0.33.0-...whl

Prints every name it checked; exit status 1 and a list of failures otherwise.
"""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FAKE = ROOT / "tests" / "fake_vllm" / "vllm"
BACKEND = ROOT / "fusedata" / "backends" / "vllm.py"
NOT_LITERAL = object()


# --------------------------------------------------------------------------- reading source
class Source:
    """``vllm/...`` files by path, parsed on demand (from a wheel or a directory)."""

    def __init__(self, read) -> None:
        self._read = read
        self._trees: dict[str, ast.Module] = {}

    def tree(self, path: str) -> ast.Module:
        if path not in self._trees:
            self._trees[path] = ast.parse(self._read(path), filename=path)
        return self._trees[path]

    def has(self, path: str) -> bool:
        try:
            self._read(path)
        except (KeyError, FileNotFoundError):
            return False
        return True


def wheel_source(wheel: Path) -> Source:
    z = zipfile.ZipFile(wheel)
    return Source(lambda p: z.read(p).decode())


def dir_source(root: Path) -> Source:
    return Source(lambda p: (root / p).read_text())


def download(version: str, dest: Path) -> Path:
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                    f"vllm=={version}", "-d", str(dest)], check=True)
    wheels = sorted(dest.glob(f"vllm-{version}-*.whl"))
    if not wheels:
        raise SystemExit(f"pip download gave no vllm {version} wheel in {dest}")
    return wheels[0]


def find_class(tree: ast.Module, name: str) -> ast.ClassDef:
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            return node
    raise KeyError(f"class {name}")


def find_def(body: list[ast.stmt], name: str) -> ast.FunctionDef:
    """The last definition of ``name`` (after any ``@overload`` stubs)."""
    found = [n for n in body if isinstance(n, ast.FunctionDef) and n.name == name]
    real = [f for f in found if not any(
        (isinstance(d, ast.Name) and d.id == "overload")
        or (isinstance(d, ast.Attribute) and d.attr == "overload") for d in f.decorator_list)]
    if not (real or found):
        raise KeyError(f"def {name}")
    return (real or found)[-1]


def literal(node: ast.expr | None) -> Any:
    if node is None:
        return NOT_LITERAL
    try:
        return ast.literal_eval(node)
    except ValueError:
        return NOT_LITERAL


def params(fn: ast.FunctionDef) -> list[tuple[str, str, Any]]:
    """(name, kind, default) of each parameter but self; kind pos | kw | *args | **kw."""
    a = fn.args
    pos = a.posonlyargs + a.args
    defaults = [None] * (len(pos) - len(a.defaults)) + list(a.defaults)
    out = [(p.arg, "pos", literal(d) if d is not None else None)
           for p, d in zip(pos, defaults, strict=True)]
    out += [(p.arg, "kw", literal(d) if d is not None else None)
            for p, d in zip(a.kwonlyargs, a.kw_defaults, strict=True)]
    if a.vararg:
        out.append((a.vararg.arg, "*args", None))
    if a.kwarg:
        out.append((a.kwarg.arg, "**kw", None))
    return [p for p in out if p[0] != "self"]


def fields(cls: ast.ClassDef) -> list[tuple[str, ast.expr | None]]:
    return [(n.target.id, n.value) for n in cls.body
            if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)]


def self_attrs(fn: ast.FunctionDef) -> set[str]:
    return {t.attr for n in ast.walk(fn) if isinstance(n, (ast.Assign, ast.AnnAssign))
            for t in (n.targets if isinstance(n, ast.Assign) else [n.target])
            if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name)
            and t.value.id == "self"}


def methods(cls: ast.ClassDef) -> set[str]:
    return {n.name for n in cls.body if isinstance(n, ast.FunctionDef)}


def defines(tree: ast.Module, name: str) -> bool:
    for n in tree.body:
        if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name == name:
            return True
        if isinstance(n, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name
                                             for t in n.targets):
            return True
        if isinstance(n, ast.ImportFrom) and any((a.asname or a.name) == name for a in n.names):
            return True
    return False


# --------------------------------------------------------------------------- the checks
class Contract:
    def __init__(self, real: Source, fake: Source) -> None:
        self.real, self.fake = real, fake
        self.failures: list[str] = []
        self.checked: list[str] = []

    def ok(self, cond: bool, name: str, why: str) -> None:
        self.checked.append(name)
        print(f"{'ok  ' if cond else 'FAIL'} {name}" + ("" if cond else f": {why}"))
        if not cond:
            self.failures.append(f"{name}: {why}")

    # --- resolving EngineArgs defaults such as ``ModelConfig.max_model_len``
    def config_default(self, node: ast.expr | None) -> Any:
        v = literal(node)
        if v is not NOT_LITERAL or node is None:
            return v
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            for f in ("model", "cache", "parallel", "scheduler", "load"):
                path = f"vllm/config/{f}.py"
                if not self.real.has(path):
                    continue
                try:
                    cls = find_class(self.real.tree(path), node.value.id)
                except KeyError:
                    continue
                for name, val in fields(cls):
                    if name == node.attr:
                        if isinstance(val, ast.Call) and getattr(val.func, "id", "") == "Field":
                            for k in val.keywords:
                                if k.arg == "default":
                                    return literal(k.value)
                        return literal(val)
        return NOT_LITERAL

    def same_signature(self, name: str, fake: list, real: list, *, prefix: bool) -> None:
        """Every fake parameter exists in vLLM with the same kind and literal default;
        with ``prefix`` the fake's positional parameters are vLLM's first ones, in order."""
        rmap = {p[0]: p for p in real}
        real_var_kw = any(k == "**kw" for _, k, _ in real)
        for pname, kind, default in fake:
            if kind in ("*args", "**kw"):
                self.ok(any(k == kind for _, k, _ in real), f"{name}({kind})",
                        f"vLLM's {name} takes no {kind}")
                continue
            r = rmap.get(pname)
            if r is None:
                self.ok(False, f"{name}({pname})", f"vLLM's {name} has no parameter {pname!r}"
                        + (" (it takes **kwargs, but the fake names it)" if real_var_kw else ""))
                continue
            same_default = (default is NOT_LITERAL or r[2] is NOT_LITERAL or default == r[2])
            self.ok(r[1] == kind and same_default, f"{name}({pname})",
                    f"fake {kind} default {default!r}, vLLM {r[1]} default {r[2]!r}")
        if prefix:
            fpos = [p[0] for p in fake if p[1] == "pos"]
            rpos = [p[0] for p in real if p[1] == "pos"]
            self.ok(fpos == rpos[:len(fpos)], f"{name} positional order",
                    f"fake {fpos}, vLLM {rpos[:len(fpos) + 2]}")

    def run(self) -> None:
        R, F = self.real, self.fake
        llm_r = find_class(R.tree("vllm/entrypoints/llm.py"), "LLM")
        llm_f = find_class(F.tree("vllm/entrypoints/llm.py"), "LLM")
        ea_r = find_class(R.tree("vllm/engine/arg_utils.py"), "EngineArgs")
        ea_fields = {n: v for n, v in fields(ea_r)}
        init_r = params(find_def(llm_r.body, "__init__"))
        sp_r = find_class(R.tree("vllm/sampling_params.py"), "SamplingParams")
        sp_fields = {n: literal(v) for n, v in fields(sp_r)}
        co_r = fields(find_class(R.tree("vllm/outputs.py"), "CompletionOutput"))
        ro_init = find_def(find_class(R.tree("vllm/outputs.py"), "RequestOutput").body,
                           "__init__")
        eng_r = find_class(R.tree("vllm/v1/engine/llm_engine.py"), "LLMEngine")
        cc = R.tree("vllm/v1/engine/core_client.py")
        init_attrs = self_attrs(find_def(llm_r.body, "__init__"))

        # --- the package exports the backend uses (vllm.LLM, vllm.SamplingParams)
        init_src = ast.unparse(R.tree("vllm/__init__.py"))
        for name in ("LLM", "SamplingParams", "__version__"):
            self.ok(f"'{name}'" in init_src or f'"{name}"' in init_src or
                    defines(R.tree("vllm/__init__.py"), name), f"vllm.{name}", "not exported")

        # --- backend: LLM keywords
        sys.path.insert(0, str(ROOT))
        from fusedata.backends.vllm import VLLMSampler
        from fusedata.recipe import ModelSpec

        spec = ModelSpec.model_validate({
            "name": "m", "backend": "vllm", "path": "p",
            "sampling": {"temperature": 0.7, "top_k": 20},
            "vllm": {"max_model_len": 4096}})
        s = VLLMSampler(spec)
        init_names = {p[0] for p in init_r}
        for k in sorted(s.engine_kwargs()):
            self.ok(k in init_names or k in ea_fields, f"backend LLM(..., {k}=)",
                    "neither an LLM.__init__ parameter nor an EngineArgs field")
        for k in sorted(s.sampling_kwargs(2, 1)):
            self.ok(k in sp_fields, f"backend SamplingParams({k}=)", "no such field")

        # --- backend: attributes it reads, found in its source
        btree = ast.parse(BACKEND.read_text())
        convert = find_def(find_class(btree, "VLLMSampler").body, "_convert")
        ro_attrs = self_attrs(ro_init)
        co_names = {n for n, _ in co_r}
        for n in ast.walk(convert):
            if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name):
                if n.value.id == "out":
                    self.ok(n.attr in ro_attrs, f"backend RequestOutput.{n.attr}", "no such attr")
                elif n.value.id == "c":
                    self.ok(n.attr in co_names, f"backend CompletionOutput.{n.attr}",
                            "no such field")
        llm_methods = methods(llm_r)
        for n in ast.walk(btree):
            if (isinstance(n, ast.Attribute) and isinstance(n.value, ast.Attribute)
                    and n.value.attr == "llm" and isinstance(n.value.value, ast.Name)
                    and n.value.value.id == "self"):
                self.ok(n.attr in llm_methods or n.attr in init_attrs,
                        f"backend LLM.{n.attr}", "no such method or attribute")
        self.ok("engine_core" in self_attrs(find_def(eng_r.body, "__init__")),
                "LLMEngine.engine_core", "LLMEngine.__init__ does not set it")
        self.ok("model_config" in self_attrs(find_def(eng_r.body, "__init__"))
                or any(n == "model_config" for n, _ in fields(eng_r)),
                "LLMEngine.model_config", "missing")
        mc = find_class(R.tree("vllm/config/model.py"), "ModelConfig")
        self.ok("max_model_len" in {n for n, _ in fields(mc)}, "ModelConfig.max_model_len",
                "missing")
        sync = find_class(cc, "SyncMPClient")
        self.ok("MPClient" in [ast.unparse(b) for b in sync.bases], "SyncMPClient(MPClient)",
                "SyncMPClient no longer derives from MPClient")
        shut = {}
        # InprocClient with VLLM_ENABLE_V1_MULTIPROCESSING=0, else SyncMPClient (via MPClient)
        for cname in ("EngineCoreClient", "InprocClient", "MPClient"):
            c = find_class(cc, cname)
            self.ok("shutdown" in methods(c), f"{cname}.shutdown", "missing")
            if "shutdown" in methods(c):
                shut[cname] = params(find_def(c.body, "shutdown"))
        # LLM (and its mixins) and LLMEngine have no shutdown: the old code's branch never ran
        bases = [b.id for b in llm_r.bases if isinstance(b, ast.Name)]
        mixin_files = {"OfflineInferenceMixin": "vllm/entrypoints/common/offline.py",
                       "PoolingOfflineMixin": "vllm/entrypoints/pooling/offline.py",
                       "BeamSearchOfflineMixin": "vllm/entrypoints/generate/beam_search/offline.py",
                       "RLOfflineMixin": "vllm/entrypoints/rl/offline.py"}
        llm_all = set(llm_methods)
        for b in bases:
            if b in mixin_files and R.has(mixin_files[b]):
                llm_all |= methods(find_class(R.tree(mixin_files[b]), b))
        self.ok("shutdown" not in llm_all, "LLM has no shutdown (incl. mixins "
                f"{', '.join(bases)})", "vLLM's LLM has a shutdown now")
        self.ok("shutdown" not in methods(eng_r), "LLMEngine has no shutdown",
                "vLLM's LLMEngine has a shutdown now")
        # imports of the backend: each module exists and defines the name
        for n in ast.walk(btree):
            if isinstance(n, ast.ImportFrom) and (n.module or "").startswith("vllm"):
                path = "vllm/" + n.module.removeprefix("vllm").strip(".").replace(".", "/")
                path = path.rstrip("/") + ".py"
                for a in n.names:
                    ok = R.has(path) and defines(R.tree(path), a.name)
                    self.ok(ok, f"backend import {n.module}.{a.name}", f"not in {path}")

        # --- limits the recipe schema copies
        sp_src = R.tree("vllm/sampling_params.py")
        consts = {t.id: literal(n.value) for n in sp_src.body if isinstance(n, ast.Assign)
                  for t in n.targets if isinstance(t, ast.Name)}
        self.ok(consts.get("_MAX_TEMP") == 0.01, "sampling_params._MAX_TEMP == 0.01",
                f"is {consts.get('_MAX_TEMP')}")
        src = ast.unparse(sp_r)
        self.ok("self.temperature > 2.0" in src, "SamplingParams: temperature > 2.0 rejected",
                "check changed")
        self.ok("0 < self.temperature < _MAX_TEMP" in src,
                "SamplingParams: 0 < temperature < _MAX_TEMP raised", "check changed")
        greedy = ast.unparse(find_def(sp_r.body, "_verify_greedy_sampling"))
        self.ok("self.n > 1" in greedy and "n must be 1 when using greedy sampling" in greedy,
                "SamplingParams._verify_greedy_sampling: n must be 1", "check changed")
        ip = ast.unparse(R.tree("vllm/v1/engine/input_processor.py"))
        self.ok("prompt_len > max_prompt_len" in ip and "prompt_len == max_prompt_len" in ip,
                "InputProcessor: prompt_len >= max_model_len rejected", "check changed")

        # --- fake vs real signatures
        for meth in ("__init__", "generate", "chat", "get_tokenizer"):
            self.same_signature(f"LLM.{meth}", params(find_def(llm_f.body, meth)),
                                params(find_def(llm_r.body, meth)), prefix=True)
        self.ok("shutdown" not in methods(llm_f), "fake LLM has no shutdown", "it has one")
        eng_f = find_class(F.tree("vllm/entrypoints/llm.py"), "_LLMEngine")
        self.ok("shutdown" not in methods(eng_f), "fake LLMEngine has no shutdown", "it has one")
        inproc_f = find_class(F.tree("vllm/v1/engine/core_client.py"), "InprocClient")
        self.same_signature("InprocClient.shutdown", params(find_def(inproc_f.body, "shutdown")),
                            shut.get("InprocClient", []), prefix=True)
        ea_f = find_class(F.tree("vllm/engine/arg_utils.py"), "EngineArgs")
        for name, val in fields(ea_f):
            if name not in ea_fields:
                self.ok(False, f"EngineArgs.{name}", "not a vLLM EngineArgs field")
                continue
            rd, fd = self.config_default(ea_fields[name]), literal(val)
            self.ok(rd is NOT_LITERAL or rd == fd, f"EngineArgs.{name}",
                    f"default {fd!r}, vLLM {rd!r}")
        sp_f = params(find_def(find_class(F.tree("vllm/sampling_params.py"),
                                          "SamplingParams").body, "__init__"))
        for name, _kind, default in sp_f:
            self.ok(name in sp_fields and (sp_fields[name] is NOT_LITERAL
                                           or sp_fields[name] == default),
                    f"SamplingParams.{name}", f"fake default {default!r}, "
                    f"vLLM {sp_fields.get(name, 'missing')!r}")
        fake_consts = {t.id: literal(n.value) for n in F.tree("vllm/sampling_params.py").body
                       if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}
        for c in ("_SAMPLING_EPS", "_MAX_TEMP"):
            self.ok(fake_consts.get(c) == consts.get(c), f"sampling_params.{c}",
                    f"fake {fake_consts.get(c)}, vLLM {consts.get(c)}")
        co_f = fields(find_class(F.tree("vllm/outputs.py"), "CompletionOutput"))
        self.ok([n for n, _ in co_f] == [n for n, _ in co_r][:len(co_f)],
                "CompletionOutput field order", f"fake {[n for n, _ in co_f]}, "
                f"vLLM {[n for n, _ in co_r][:len(co_f) + 1]}")
        for (fn, fv), (_rn, rv) in zip(co_f, co_r, strict=False):
            self.ok(literal(fv) == literal(rv) or literal(rv) is NOT_LITERAL,
                    f"CompletionOutput.{fn}", f"default {literal(fv)!r} vs {literal(rv)!r}")
        ro_f = find_def(find_class(F.tree("vllm/outputs.py"), "RequestOutput").body, "__init__")
        self.same_signature("RequestOutput.__init__", params(ro_f), params(ro_init), prefix=True)
        for path, fname in (("vllm/distributed/parallel_state.py", "cleanup_dist_env_and_memory"),
                            ("vllm/renderers/hf.py", "safe_apply_chat_template"),
                            ("vllm/renderers/hf.py", "resolve_chat_template"),
                            ("vllm/renderers/hf.py", "_try_get_processor_chat_template"),
                            ("vllm/renderers/hf.py", "_detect_developer_role_support"),
                            ("vllm/renderers/hf.py", "_convert_developer_to_system")):
            self.same_signature(fname, params(find_def(F.tree(path).body, fname)),
                                params(find_def(R.tree(path).body, fname)), prefix=True)
        dist = R.tree("vllm/distributed/__init__.py")
        self.ok(defines(dist, "cleanup_dist_env_and_memory") or any(
            isinstance(n, ast.ImportFrom) and n.module == "parallel_state"
            and any(a.name == "*" for a in n.names) for n in dist.body),
            "vllm.distributed.cleanup_dist_env_and_memory", "not exported")
        ex_r, ex_f = R.tree("vllm/exceptions.py"), F.tree("vllm/exceptions.py")
        for cname in ("VLLMError", "VLLMClientError", "VLLMValidationError"):
            rc, fc = find_class(ex_r, cname), find_class(ex_f, cname)
            self.ok([ast.unparse(b) for b in rc.bases] == [ast.unparse(b) for b in fc.bases],
                    f"exceptions.{cname} bases", f"fake {[ast.unparse(b) for b in fc.bases]}, "
                    f"vLLM {[ast.unparse(b) for b in rc.bases]}")
        self.same_signature("VLLMValidationError.__init__",
                            params(find_def(find_class(ex_f, "VLLMValidationError").body,
                                            "__init__")),
                            params(find_def(find_class(ex_r, "VLLMValidationError").body,
                                            "__init__")), prefix=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--version", default="0.33.0")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--wheel", type=Path, help="a downloaded vllm wheel")
    g.add_argument("--src", type=Path, help="a directory holding vllm/ (unpacked wheel)")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if a.src:
            real, where = dir_source(a.src), str(a.src)
        else:
            wheel = a.wheel or download(a.version, Path(tmp))
            real, where = wheel_source(wheel), wheel.name
        print(f"vLLM source: {where}\nfake: {FAKE.relative_to(ROOT)}\n"
              f"backend: {BACKEND.relative_to(ROOT)}\n")
        c = Contract(real, dir_source(FAKE.parent))
        c.run()
    print(f"\n{len(c.checked)} names checked, {len(c.failures)} failed")
    for f in c.failures:
        print(f"  FAIL {f}")
    return 1 if c.failures else 0


if __name__ == "__main__":
    sys.exit(main())
