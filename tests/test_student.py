"The student edition (dlnotes.student, dlnotes-student): it changes only marked lines, every exercise fails in it until written, pasting the solutions back gives the course, and bad markers stop it before it writes anything."
import json, re, shutil, subprocess, sys
from pathlib import Path

import pytest

from dlnotes.student import (BEGIN, END, PLACEHOLDER, MarkerError, check_notebook, course_notebooks, find_exercises,
                             paste_solutions, student_notebook, write_edition)

ROOT = Path(__file__).resolve().parents[1]
NBS = course_notebooks(ROOT / "nbs")
WITH_EXERCISES = [p for p in NBS if find_exercises(json.loads(p.read_text()), p.stem)]


def _text(cell): return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def test_the_course_has_exercises_in_every_chapter_notebook():
    counts = {p.stem: len(find_exercises(json.loads(p.read_text()), p.stem)) for p in NBS}
    chapters = [n for n in counts if re.match(r"^[1-9]\d", n)]
    assert sum(counts.values()) >= len(chapters)  # on average at least one per chapter notebook
    assert [n for n in ("11_basics", "12_deep", "17_batchnorm", "21_metrics", "31_convolution") if counts[n] < 2] == []
    recipes = {"11_basics": ["sigmoid"], "12_deep": ["initialize_parameters_deep", "linear_forward", "_backward"],  # the notes' recipes
               "14_optimization": ["_adam_step"], "17_batchnorm": ["batchnorm_forward", "batchnorm_backward"],
               "21_metrics": ["precision_recall_f1"], "31_convolution": ["conv_single_step", "conv_forward_loops", "pool_backward_loops"]}
    for nb, names in recipes.items():
        have = {e.name for e in find_exercises(json.loads((ROOT / "nbs" / f"{nb}.ipynb").read_text()), nb)}
        assert set(names) <= have, f"{nb}: {sorted(set(names) - have)} are not exercises"
    for p in NBS:
        if re.match(r"^\d\d", p.stem):  # every numbered notebook, the infrastructure's too
            md = [_text(c) for c in json.loads(p.read_text())["cells"] if c["cell_type"] == "markdown"]
            assert any(m.startswith("## Exercises") for m in md), f"{p.name} has no ## Exercises section"


@pytest.mark.parametrize("path", NBS, ids=lambda p: p.stem)
def test_the_edition_changes_only_marked_lines(path):
    nb = json.loads(path.read_text())
    student, exs = student_notebook(nb, path.stem)
    assert len(student["cells"]) == len(nb["cells"])
    names = [e.name.split(".")[0] for e in exs]
    for i, (a, b) in enumerate(zip(nb["cells"], student["cells"])):
        ta, tb = _text(a), _text(b)
        mine = [e for e in exs if e.cell == i]
        if not mine: assert ta == tb, f"cell {i} changed without a marker"
        else:
            keep = [l for k, l in enumerate(ta.split("\n")) if not any(e.begin <= k <= e.end for e in mine)]
            assert [l for l in tb.split("\n") if l.strip() != PLACEHOLDER and "raise NotImplementedError('exercise " not in l] == keep
            assert BEGIN not in tb and END not in tb and tb.count(PLACEHOLDER) == len(mine)
        if a["cell_type"] == "code" and b["outputs"] != a["outputs"]:  # cleared: the exercise's cell, or a cell naming one
            assert b["outputs"] == [] and (mine or any(re.search(rf"\b{re.escape(n)}\b", ta) for n in names)), f"cell {i}"


def test_no_notebook_imports_its_own_exercises_from_the_package():
    "The reader's functions, defined in the notebook, are what its cells test: none is imported over them from dlnotes."
    for p in WITH_EXERCISES:
        nb = json.loads(p.read_text())
        mod = next(l.split()[-1] for c in nb["cells"] for l in _text(c).splitlines() if l.startswith("#| default_exp"))
        names = {e.name.split(".")[0] for e in find_exercises(nb, p.stem)}
        for i, c in enumerate(nb["cells"]):
            for m in re.finditer(rf"from dlnotes\.{re.escape(mod)} import ([^\n]+)", _text(c)):
                assert not names & set(re.findall(r"\w+", m.group(1))), f"{p.name} cell {i} imports an exercise from dlnotes.{mod}"


@pytest.mark.parametrize("path", WITH_EXERCISES, ids=lambda p: p.stem)
def test_every_exercise_fails_in_the_student_edition(path):
    "Run the student notebook top to bottom (errors allowed): each exercise's NotImplementedError is raised by a later cell."
    assert check_notebook(path) == []


def test_pasting_the_solutions_back_gives_the_course(tmp_path):
    for p in NBS:
        nb = json.loads(p.read_text())
        assert paste_solutions(student_notebook(nb, p.stem)[0], nb) == nb, p.name
    # and the pasted-back notebook passes under nbval like the course (one small notebook with exercises, end to end)
    p = min(WITH_EXERCISES, key=lambda p: p.stat().st_size)
    nb = json.loads(p.read_text())
    restored = tmp_path / p.name
    restored.write_text(json.dumps(paste_solutions(student_notebook(nb, p.stem)[0], nb), indent=1, ensure_ascii=False) + "\n")
    shutil.copy(ROOT / "nbval_sanitize.cfg", tmp_path)
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval", "--nbval-sanitize-with",
                        str(tmp_path / "nbval_sanitize.cfg"), str(restored)], capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert r.returncode == 0 and " passed" in r.stdout, r.stdout[-2000:]


def test_the_command_writes_the_edition(tmp_path):
    out = tmp_path / "student"
    r = subprocess.run([sys.executable, "-m", "dlnotes.student", str(out), "--nbs", str(ROOT / "nbs")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in NBS) and f"to {out}" in r.stdout
    written = json.loads((out / WITH_EXERCISES[0].name).read_text())
    assert any(PLACEHOLDER in _text(c) for c in written["cells"])
    r = subprocess.run([sys.executable, "-m", "dlnotes.student", str(out)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "exists and is not empty" in r.stderr


BREAKS = {"unbalanced": "\ndef oops():\n    ### BEGIN SOLUTION\n    return 1",
          "end first": "\ndef oops():\n    return 1\n    ### END SOLUTION",
          "nested": "\ndef oops():\n    ### BEGIN SOLUTION\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION"}


@pytest.mark.parametrize("kind", [*BREAKS, "markdown"])
def test_bad_markers_stop_it_and_nothing_is_written(kind, tmp_path):
    src = tmp_path / "nbs"; src.mkdir()
    for p in NBS: shutil.copy(p, src)
    nb = json.loads((src / "12_deep.ipynb").read_text())
    cell = {"cell_type": "markdown", "source": "Here:\n### END SOLUTION", "metadata": {}} if kind == "markdown" else \
        {"cell_type": "code", "source": BREAKS[kind], "metadata": {}, "outputs": [], "execution_count": None}
    nb["cells"].insert(5, cell)
    (src / "12_deep.ipynb").write_text(json.dumps(nb))
    out = tmp_path / "edition"
    with pytest.raises(MarkerError, match=r"12_deep, cell 5"): write_edition(out, src)
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["nbs"]
    r = subprocess.run([sys.executable, "-m", "dlnotes.student", str(out), "--nbs", str(src)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "12_deep, cell 5" in r.stderr and not out.exists()
