"""The package's layout, as the README and CONTRIBUTING state it: one sub-package per chapter, a notebook per module,
a test file per module, imports that only point down, modules of lecture size, and helpful errors for moved modules."""
import ast, importlib, json, re, subprocess, sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = {"0": None, "1": "nn", "2": "strategy", "3": "vision", "4": "seq", "9": "appendix"}  # first digit -> sub-package
NB = re.compile(r"^(\d)(\d)([a-z]?)_(\w+)\.ipynb$")
MAX_MODULE_LINES, MAX_EXPORT_CELL_LINES = 400, 45


def notebooks():
    "{notebook name: (module path relative to dlnotes/, sort key)} for every numbered notebook."
    out = {}
    for p in sorted((ROOT / "nbs").glob("*.ipynb")):
        m = NB.match(p.name)
        if not m: continue
        cells = json.loads(p.read_text())["cells"]
        exp = [l.split()[-1] for c in cells if c["cell_type"] == "code" for l in "".join(c["source"]).splitlines()
               if l.startswith("#| default_exp")]
        out[p.name] = (exp[0] if exp else None, p.name)
    return out


def module_of(path):
    "The dotted module name of a file under dlnotes/ (dlnotes/nn/layers.py -> nn.layers)."
    return ".".join(path.relative_to(ROOT / "dlnotes").with_suffix("").parts)


def test_every_notebook_exports_its_chapter_and_topic():
    for name, (exp, _) in notebooks().items():
        chapter, topic = CHAPTERS[NB.match(name).group(1)], NB.match(name).group(4)
        assert exp is not None, f"{name} has no #| default_exp"
        want = {f"{chapter}.{topic}"} if chapter else {topic, f"_{topic}"}
        assert exp in want, f"{name} exports {exp!r}; the rule nbs/NN_topic.ipynb -> dlnotes/<chapter>/<topic>.py wants {sorted(want)}"


def test_every_module_comes_from_one_notebook_and_has_a_test_file():
    exported = {exp: name for name, (exp, _) in notebooks().items()}
    for path in sorted((ROOT / "dlnotes").rglob("*.py")):
        if path.name in ("__init__.py", "_modidx.py"): continue
        mod = module_of(path)
        assert mod in exported, f"dlnotes/{path.relative_to(ROOT / 'dlnotes')} comes from no notebook (a stale module?)"
        assert f"File to edit: {'../' * (len(path.relative_to(ROOT / 'dlnotes').parts))}nbs/{exported[mod]}" in path.read_text()
        *pkg, topic = mod.split(".")
        test = ROOT / "tests" / Path(*pkg) / f"test_{topic.lstrip('_')}.py"
        assert test.exists(), f"dlnotes/{mod.replace('.', '/')}.py has no test file {test.relative_to(ROOT)}"


def _dlnotes_imports(path):
    "The dlnotes modules that `path` imports (relative imports resolved)."
    tree, mod = ast.parse(path.read_text()), module_of(path)
    pkg = mod.split(".")[:-1]
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level: base = pkg[:len(pkg) - node.level + 1] + (node.module.split(".") if node.module else [])
            elif node.module and node.module.startswith("dlnotes."): base = node.module.split(".")[1:]
            else: continue
            out.add(".".join(base))
        elif isinstance(node, ast.Import):
            out |= {a.name[len("dlnotes."):] for a in node.names if a.name.startswith("dlnotes.")}
    return out


def test_imports_only_point_down():
    order = {exp: key for exp, key in notebooks().values()}
    for path in sorted((ROOT / "dlnotes").rglob("*.py")):
        if path.name in ("__init__.py", "_modidx.py"): continue
        mod = module_of(path)
        for dep in _dlnotes_imports(path):
            assert dep in order, f"{mod} imports dlnotes.{dep}, which no notebook exports"
            assert order[dep] < order[mod], f"{mod} ({order[mod]}) imports dlnotes.{dep} from a later notebook ({order[dep]})"


def test_no_chapter_package_re_exports():
    for init in sorted((ROOT / "dlnotes").rglob("__init__.py")):
        if init.parent == ROOT / "dlnotes": continue
        tree = ast.parse(init.read_text())
        assert not [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))], f"{init.relative_to(ROOT)} imports something"


def _code_lines(text):
    "The lines of `text` without the exercise markers (### BEGIN/END SOLUTION), which are comments for the student edition."
    return [l for l in text.splitlines() if l.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION")]


def test_modules_and_export_cells_are_lecture_sized():
    for path in sorted((ROOT / "dlnotes").rglob("*.py")):
        if path.name == "_modidx.py": continue
        n = len(_code_lines(path.read_text()))
        assert n <= MAX_MODULE_LINES, f"{path.relative_to(ROOT)} has {n} lines (at most about {MAX_MODULE_LINES}): split it by what it holds"
    for p in sorted((ROOT / "nbs").glob("*.ipynb")):
        for c in json.loads(p.read_text())["cells"]:
            s = "".join(c["source"])
            if c["cell_type"] == "code" and s.startswith("#| export"):
                n = len(_code_lines(s))
                assert n <= MAX_EXPORT_CELL_LINES, f"{p.name}: an export cell of {n} lines ({s.splitlines()[1][:60]!r}...)"


def test_only_the_backend_imports_cupy_and_no_cache_is_read_by_its_length():
    for path in sorted((ROOT / "dlnotes").rglob("*.py")):
        text = path.read_text()
        if path.name != "backend.py": assert not re.search(r"^\s*(import cupy|from cupy)", text, re.M), path
        assert not re.search(r"len\((\w+_)?cache\)", text), f"{path.relative_to(ROOT)} recognises a cache by its length"


MOVED = {"dlnotes.basics": "dlnotes.nn.basics", "dlnotes.deep": "dlnotes.nn.deep", "dlnotes.layers": "dlnotes.nn.layers",
         "dlnotes.optimizers": "dlnotes.nn.optimizers", "dlnotes.initialization": "dlnotes.nn.initializers",
         "dlnotes.regularization": "dlnotes.nn.regularization", "dlnotes.batchnorm": "dlnotes.nn.batchnorm",
         "dlnotes.hyperparameters": "dlnotes.nn.hyperparameters", "dlnotes.metrics": "dlnotes.strategy.metrics",
         "dlnotes.diagnosis": "dlnotes.strategy.diagnosis", "dlnotes.transfer": "dlnotes.strategy.transfer",
         "dlnotes.conv": "dlnotes.vision.convolution", "dlnotes.cnn": "dlnotes.vision.cnn"}


@pytest.mark.parametrize("old, new", MOVED.items())
def test_old_flat_paths_name_the_new_ones(old, new):
    code = f"import {old}"
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert p.returncode != 0 and "ImportError" in p.stderr and new in p.stderr, p.stderr[-500:]
    importlib.import_module(new)  # and the new path works
    with pytest.raises(ImportError, match=f"{old} moved: import it from .*{re.escape(new)}"):
        importlib.import_module(old)


def test_the_course_map_lists_every_notebook_with_its_module_and_tests():
    "nbs/index.ipynb has a row for every numbered notebook, naming the module it exports and the test file that checks it."
    text = "".join("".join(c["source"]) for c in json.loads((ROOT / "nbs" / "index.ipynb").read_text())["cells"])
    for name, (exp, _) in notebooks().items():
        rows = [l for l in text.splitlines() if f"]({name})" in l and l.startswith("|")]
        assert rows, f"nbs/index.ipynb has no row for {name}"
        *pkg, topic = exp.split(".")
        module, test = "/".join(["dlnotes", *pkg, topic]) + ".py", "/".join(["tests", *pkg, f"test_{topic.lstrip('_')}.py"])
        assert f"`{module}`" in rows[0] and f"`{test}`" in rows[0], f"the row of {name} must name {module} and {test}: {rows[0]}"
