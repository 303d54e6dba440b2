"""The student version (``make student``) of every chapter: solutions gone, checks kept, stubs fail, solutions pass.

Design, chosen to stay cheap on a 2-core machine:

* **Static, every chapter.** The student copy is written from the stored chapter. For each exercise the
  learner cell assigns its stub (``answer = ...``) and the check's answer argument, evaluated with only that
  stub in scope, is ``...``, so ``check`` raises ``NotAttempted`` (``tests/test_exercises.py`` proves that of
  ``check`` itself). The solution passes because the stored, executed chapter shows ``✓ Exercise N.k:
  correct.`` under that check and ``make test`` re-runs every chapter with nbval. Every code cell before the
  first exercise is the chapter's own, so the student copy runs up to its first exercise whenever the
  chapter does. Every check carries a hint (``hint=`` or ``describe=``).
* **Executed, one chapter.** The student copy of chapter 17 (about 10 CPU-seconds) is run with a kernel up to
  its first check, which must answer "not attempted"; and chapter 17's checks are run in isolation on the
  stub, on typical mistakes (each must fail with a hint) and on the solution.
"""
from __future__ import annotations

import ast
import json
import math
from pathlib import Path

import pytest

from genlab.exercises import ExerciseError, NotAttempted, find_exercises, load_notebook, main

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("[0-9][0-9]_*.ipynb"))


def source(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


@pytest.fixture(scope="module")
def student_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("student")
    main([str(ROOT / "chapters"), str(out), "--nbgrader", str(out / "nbgrader")])
    return out


def _check_call(cell_source: str, title: str) -> ast.Call:
    for node in ast.walk(ast.parse(cell_source)):
        if (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "check" and node.args
                and isinstance(node.args[0], ast.Constant) and node.args[0].value == title):
            return node
    raise AssertionError(f"no check({title!r}, ...) call in its check cell")


def _receives_stub(argument: ast.expr, cell_source: str, variable: str) -> bool:
    """Whether ``check``'s answer argument is the learner's stub when the learner cell holds ``...``.

    Three forms are recognised: the learner's variable itself; a name assigned in the check cell as
    ``f(variable, ...) if callable(variable) else variable`` (implement-it exercises run the learner's
    function, and the stub ``...`` is not callable); or a name unpacked from a genlab ``*_exercise``
    helper that receives the variable (those helpers pass a non-callable answer through, as their
    own tests show).
    """
    try:
        value = eval(compile(ast.Expression(argument), "<check>", "eval"),
                     {"__builtins__": {"callable": callable}}, {variable: ...})
        if value is Ellipsis:
            return True
    except NameError:
        pass
    if not isinstance(argument, ast.Name):
        return False
    for node in ast.walk(ast.parse(cell_source)):
        if not isinstance(node, ast.Assign):
            continue
        targets = [t for target in node.targets for t in ast.walk(target) if isinstance(t, ast.Name)]
        if argument.id not in {t.id for t in targets}:
            continue
        value = node.value
        if isinstance(value, ast.IfExp):
            test_ok = (isinstance(value.test, ast.Call) and getattr(value.test.func, "id", None) == "callable"
                       and [getattr(a, "id", None) for a in value.test.args] == [variable])
            return test_ok and isinstance(value.orelse, ast.Name) and value.orelse.id == variable
        if isinstance(value, ast.Call):
            name = getattr(value.func, "id", getattr(value.func, "attr", ""))
            passes_variable = any(isinstance(a, ast.Name) and a.id == variable for a in value.args)
            return name.endswith("_exercise") and passes_variable
    return False


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_student_copy(path, student_dir):
    chapter = load_notebook(path)
    student = load_notebook(student_dir / path.name)
    exercises = find_exercises(chapter)
    assert exercises, f"{path.name}: no exercises"
    solutions = [source(chapter["cells"][ex.solution]) for ex in exercises]
    student_code = [source(c) for c in student["cells"] if c["cell_type"] == "code"]

    # Solutions are gone, outputs cleared, every check kept.
    assert not any("solution" in c.get("metadata", {}).get("tags", []) for c in student["cells"])
    for solution in solutions:
        assert solution not in student_code, f"{path.name}: a solution survived in the student copy"
    assert all(not c.get("outputs") for c in student["cells"] if c["cell_type"] == "code")
    for ex in exercises:
        assert source(chapter["cells"][ex.check]) in student_code, f"{path.name}: {ex.title}'s check was dropped"

    # Up to the first exercise, the student copy is the chapter itself (which nbval runs).
    first = exercises[0].learner
    prefix = [source(c) for c in chapter["cells"][:first] if c["cell_type"] == "code"]
    assert student_code[:len(prefix)] == prefix

    for ex in exercises:
        assert ex.variable, f"{path.name}: {ex.title}'s learner cell has no `name = ...` stub"
        check_source = source(chapter["cells"][ex.check])
        call = _check_call(check_source, ex.title)
        # The stub fails: the answer argument is the placeholder `...` when the learner cell holds the stub.
        assert _receives_stub(call.args[1], check_source, ex.variable), \
            f"{path.name}: {ex.title}'s check does not receive the stub"
        keywords = {k.arg for k in call.keywords}
        assert keywords & {"hint", "describe"}, f"{path.name}: {ex.title}'s check gives no hint"
        # The solution passes: the stored run printed the check's success line and no error.
        outputs = chapter["cells"][ex.check].get("outputs", [])
        text = "".join("".join(o.get("text", "")) for o in outputs if o.get("output_type") == "stream")
        assert f"✓ {ex.title}: correct." in text, f"{path.name}: the stored run does not show {ex.title} passing"
        assert not any(o.get("output_type") == "error" for o in outputs)


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_nbgrader_source(path, student_dir):
    nb = load_notebook(student_dir / "nbgrader" / "source" / path.stem / path.name)
    graded = [c for c in nb["cells"] if c.get("metadata", {}).get("nbgrader", {}).get("grade")]
    answers = [c for c in nb["cells"] if c.get("metadata", {}).get("nbgrader", {}).get("solution")]
    assert len(graded) == len(answers) == len(find_exercises(load_notebook(path)))
    ids = [c["metadata"]["nbgrader"]["grade_id"] for c in graded + answers]
    assert len(set(ids)) == len(ids), f"{path.name}: nbgrader grade ids must be unique: {ids}"
    for cell in answers:
        text = source(cell)
        assert text.index("### BEGIN SOLUTION") < text.index("### END SOLUTION")
        ast.parse(text)  # still valid Python


def test_student_copy_of_chapter_17_runs_to_its_first_check(student_dir):
    nbclient = pytest.importorskip("nbclient")
    import nbformat

    notebook = nbformat.read(student_dir / "17_next_steps.ipynb", as_version=4)
    first_check = next(i for i, c in enumerate(notebook.cells) if c.cell_type == "code" and "check(" in c.source
                       and "Exercise" in c.source)
    notebook.cells = notebook.cells[:first_check + 1]
    client = nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3", allow_errors=True,
                                     resources={"metadata": {"path": str(ROOT / "chapters")}})
    client.execute()
    errors = [(i, o) for i, c in enumerate(notebook.cells) if c.cell_type == "code"
              for o in c.outputs if o.output_type == "error"]
    assert len(errors) == 1 and errors[0][0] == first_check, f"cells before the first check failed: {errors}"
    assert errors[0][1]["ename"] == "NotAttempted" and "not attempted" in errors[0][1]["evalue"]


# --- chapter 17's checks, run in isolation -----------------------------------------------------------------
@pytest.fixture(scope="module")
def chapter17():
    """Run chapter 17's own code (not its exercises) once; return its namespace and its check cells."""
    import matplotlib

    matplotlib.use("Agg")
    nb = load_notebook(ROOT / "chapters" / "17_next_steps.ipynb")
    exercises = find_exercises(nb)
    skip = {i for ex in exercises for i in (ex.learner, ex.solution, ex.check)}
    namespace: dict = {}
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code" and i not in skip:
            exec(compile(source(cell), f"17_next_steps cell {i}", "exec"), namespace)
    return namespace, {ex.title: ex for ex in exercises}, nb


def _run_check(chapter17, title: str, answer) -> None:
    namespace, exercises, nb = chapter17
    ex = exercises[title]
    scope = dict(namespace)
    scope[ex.variable] = answer
    exec(compile(source(nb["cells"][ex.check]), title, "exec"), scope)


def _solution(chapter17, title: str):
    namespace, exercises, nb = chapter17
    scope = dict(namespace)
    exec(compile(source(nb["cells"][exercises[title].solution]), title, "exec"), scope)
    return scope[exercises[title].variable]


def test_chapter17_exercise_1(chapter17):
    import torch

    with pytest.raises(NotAttempted):
        _run_check(chapter17, "Exercise 17.1", ...)
    mistakes = {
        "squared distances": lambda s, t: torch.cdist(torch.as_tensor(s).double(), torch.as_tensor(t).double()).min(1)
        .values ** 2,
        "wrong axis": lambda s, t: torch.cdist(torch.as_tensor(s).double(), torch.as_tensor(t).double()).min(0).values,
    }
    for label, mistake in mistakes.items():
        with pytest.raises(ExerciseError, match="hint") as info:
            _run_check(chapter17, "Exercise 17.1", mistake)
        assert not isinstance(info.value, NotAttempted), label
    _run_check(chapter17, "Exercise 17.1", _solution(chapter17, "Exercise 17.1"))


def test_chapter17_exercise_2(chapter17):
    import torch

    namespace = chapter17[0]
    n, psi = namespace["cfg"].n_truncation, namespace["psi"]
    z = torch.randn(n, 8, generator=torch.Generator().manual_seed(1))
    with pytest.raises(NotAttempted):
        _run_check(chapter17, "Exercise 17.2", ...)
    for mistake in (z.clamp(-psi, psi), z * psi, z[:, :4]):  # clamped, scaled, wrong shape
        with pytest.raises(ExerciseError, match="hint"):
            _run_check(chapter17, "Exercise 17.2", mistake)
    _run_check(chapter17, "Exercise 17.2", _solution(chapter17, "Exercise 17.2"))
    assert math.isclose(float(_solution(chapter17, "Exercise 17.2").std()), namespace["expected_std"], rel_tol=0.01)


def test_chapter17_exercise_3(chapter17):
    with pytest.raises(NotAttempted):
        _run_check(chapter17, "Exercise 17.3", ...)
    for mistake in ({"DDPM", "score SDE"}, {"DDPM", "score SDE", "conditional VAE", "StyleGAN2"}, ["DDPM"]):
        with pytest.raises(ExerciseError, match="hint"):
            _run_check(chapter17, "Exercise 17.3", mistake)
    _run_check(chapter17, "Exercise 17.3", _solution(chapter17, "Exercise 17.3"))


def test_instructor_guide_covers_every_chapter():
    """The guide's generated tables (filled in at every book build) list every chapter and its exercise ids."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("instructor_guide", ROOT / "tools" / "instructor_guide.py")
    guide = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(guide)
    sections = guide.generate()
    for stem in guide.toc_chapters():
        for name in ("dependencies", "assignments", "timing"):
            assert f"(../chapters/{stem}.ipynb)" in sections[name], f"{stem} missing from the {name} table"
        for exercise in find_exercises(load_notebook(ROOT / "chapters" / f"{stem}.ipynb")):
            assert f"`{exercise.title}`" in sections["assignments"]
    text = (ROOT / "book" / "instructors.md").read_text(encoding="utf-8")
    assert guide.render(text, sections).count("GENERATED") == text.count("GENERATED") == 6


def test_lab_keeps_a_learners_copy_and_offers_a_changed_chapter_beside_it(tmp_path):
    """`make lab` never overwrites a learner's notebook; when the chapter changed, the new version appears beside it."""
    from genlab.exercises import copy_is_current, refresh_student_copies

    chapters, student = tmp_path / "chapters", tmp_path / "student"
    chapters.mkdir()
    chapter = chapters / CHAPTERS[0].name
    chapter.write_text(CHAPTERS[0].read_text(encoding="utf-8"), encoding="utf-8")
    lines = refresh_student_copies(chapters, student)
    copy = student / chapter.name
    assert "new copy" in lines[0] and copy_is_current(chapter, copy)

    work = json.loads(copy.read_text(encoding="utf-8"))
    work["cells"].append({"cell_type": "markdown", "id": "learner", "metadata": {}, "source": ["my notes"]})
    copy.write_text(json.dumps(work), encoding="utf-8")
    assert "up to date" in refresh_student_copies(chapters, student)[0]   # the learner's edits do not count

    changed = json.loads(chapter.read_text(encoding="utf-8"))
    changed["cells"][0]["source"].append("\nA corrected sentence.")
    chapter.write_text(json.dumps(changed), encoding="utf-8")
    lines = refresh_student_copies(chapters, student)
    assert "has changed" in lines[0] and str(student / "updated" / chapter.name) in lines[0]
    assert json.loads(copy.read_text(encoding="utf-8"))["cells"][-1]["source"] == ["my notes"], "work was overwritten"
    assert copy_is_current(chapter, student / "updated" / chapter.name)
    assert not copy_is_current(chapter, copy)
