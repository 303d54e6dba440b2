"""Every public callable of genlab is walked by some table-driven bad-input test.

Each ``tests/test_bad_input_<family>.py`` declares ``COVERED``: the public callables its table calls
with invalid input (``"module.name"``, ``"module.Class"`` (its constructor; ``"module.Class.__init__"`` means
the same) or ``"module.Class.method"``, the module relative to ``genlab``; re-exported names are fine).
Names are resolved to the objects they denote, so a function re-exported by a package and a method
inherited from a private base class count once. This test checks that every public callable is covered or
listed in :data:`EXEMPT_METHODS` / :data:`EXEMPT` with the reason it takes no input worth validating.
"""
from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path
from typing import Any

import pytest

import genlab

HERE = Path(__file__).resolve().parent

#: Method names that take no user input worth validating, or whose input is validated by the
#: public method that calls them (``forward`` is reached through ``loss`` / ``log_prob`` / ``sample``).
EXEMPT_METHODS = {
    "forward": "called through the model's validated loss / log_prob / sample",
    "extra_repr": "no input",
    "reset_parameters": "no input",
    "receptive_field": "no input",
    "n_parameters": "no input",
    "fitted": "no input (a property)",
    "device": "no input (a property)",
    "get_params": "scikit-learn's, no input to validate beyond deep=bool",
    "set_params": "scikit-learn's; the parameters are validated at fit",
    "state_dict": "no input",
    "to_dict": "no input",
    "on_fit_start": "callback hook, called by the Trainer",
    "on_epoch_start": "callback hook, called by the Trainer",
    "on_batch_end": "callback hook, called by the Trainer",
    "on_epoch_end": "callback hook, called by the Trainer",
    "on_fit_end": "callback hook, called by the Trainer",
}
#: Whole modules without user-facing input.
EXEMPT_MODULES = {
    "profiles": "one table of sizes; settings() is walked in the infra table",
}
#: Public names that take no user input worth validating, each with the reason.
EXEMPT: dict[str, str] = {
    "base.GenerativeModule": "abstract base of the deep models; its constructor takes no input",
    "flow.Bijector": "abstract base of the flow layers; its constructor takes no input",
    "flow.Bijector.inverse": "abstract interface (raises NotImplementedError); every subclass's inverse is walked",
    "flow.Squeeze": "space-to-depth layer; its constructor takes no input (Squeeze.inverse is walked)",
    "train.Callback": "abstract base of the trainer hooks; its constructor takes no input",
    "diagnostics.GradNormMonitor": "a Trainer callback whose constructor takes no input (its hooks are exempt)",
    "validation.as_output": "converts a result computed by genlab back to the caller's array type; no user input",
    "metrics.features.cache_dir": "no arguments (reads $GENLAB_CACHE)",
    "results.ledger.digits_recipes": "no arguments (a table of recipes for the current profile)",
    "metrics.sample.C2STResult": "result record (NamedTuple) built by genlab",
    "metrics.sample.DensityCoverage": "result record (NamedTuple) built by genlab",
    "metrics.sample.KID": "result record (NamedTuple) built by genlab",
    "metrics.sample.Memorization": "result record (NamedTuple) built by genlab",
    "metrics.bias.GroupShare": "result record (NamedTuple) built by genlab",
    "metrics.sample.PrecisionRecall": "result record (NamedTuple) built by genlab",
    "metrics.sample.Score": "result record (NamedTuple) built by genlab",
    "metrics.privacy.MembershipInference": "result record (NamedTuple) built by genlab",
    "tabular.Utility": "result record (NamedTuple) built by genlab",
    "tabular.Fidelity": "result record (NamedTuple) built by genlab",
    "results.references.Reference": "record (NamedTuple) of a published number, written in genlab's own tables",
    "results.course_map.Family": "record (dataclass) of the course map's fixed table",
    "results.leaderboard.ModelEntry": "record (dataclass) of the leaderboard's fixed model table",
    "results.leaderboard.main": "argparse reports bad arguments and exits with status 2 (test_bad_input_shared)",
    "results.ledger.main": "argparse reports bad arguments and exits with status 2 (test_bad_input_shared)",
}


def _bad_input_modules():
    for path in sorted(HERE.glob("test_bad_input_*.py")):
        if path.stem != "test_bad_input_coverage":
            yield importlib.import_module(path.stem)


def _resolve(name: str) -> Any:
    """The object a ``COVERED`` name denotes (``Class.__init__`` denotes the class), or None."""
    parts = name.split(".")
    if parts[-1] == "__init__":
        parts = parts[:-1]
    for split in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module("genlab." + ".".join(parts[:split]))
        except ImportError:
            continue
        try:
            for attr in parts[split:]:
                obj = inspect.getattr_static(obj, attr) if inspect.isclass(obj) else getattr(obj, attr)
        except AttributeError:
            return None
        if isinstance(obj, (staticmethod, classmethod)):
            obj = obj.__func__
        if isinstance(obj, property):
            obj = obj.fget
        return obj
    return None


def covered() -> dict[str, Any]:
    """Every ``COVERED`` name with the object it resolves to (None when it names nothing)."""
    names: dict[str, Any] = {}
    for module in _bad_input_modules():
        for name in getattr(module, "COVERED", ()):
            names[name] = _resolve(name)
    return names


def _genlab_modules():
    for info in pkgutil.walk_packages(genlab.__path__, prefix="genlab."):
        if not info.name.endswith("__main__"):
            yield importlib.import_module(info.name)


def _own_methods(cls: type) -> dict[str, Any]:
    """Public methods ``cls`` defines itself (inherited ones are counted on the class that defines them)."""
    methods: dict[str, Any] = {}
    for klass in (cls,):
        for name, member in vars(klass).items():
            if name.startswith("_") or name in EXEMPT_METHODS:
                continue
            if isinstance(member, (staticmethod, classmethod)):
                member = member.__func__
            if inspect.isfunction(member) and len(inspect.signature(member).parameters) > 1:
                methods[name] = member
    return methods


def public_callables() -> dict[str, Any]:
    """``module.name`` -> object for genlab's public functions, classes and their public methods."""
    found: dict[str, Any] = {}
    for module in _genlab_modules():
        short = module.__name__.removeprefix("genlab.")
        if short.split(".")[0] in EXEMPT_MODULES:
            continue
        exported = getattr(module, "__all__", None)
        for name, obj in vars(module).items():
            if name.startswith("_") or (exported is not None and name not in exported):
                continue
            if not (inspect.isfunction(obj) or inspect.isclass(obj)):
                continue
            if getattr(obj, "__module__", None) != module.__name__:
                continue  # re-exported: counted where it is defined
            if inspect.isclass(obj) and issubclass(obj, BaseException):
                continue
            found[f"{short}.{name}"] = obj
            if inspect.isclass(obj):
                for method_name, method in _own_methods(obj).items():
                    found[f"{short}.{name}.{method_name}"] = method
    return found


def test_every_public_callable_is_walked_with_bad_input():
    walked = {id(obj) for obj in covered().values() if obj is not None}
    missing = sorted(name for name, obj in public_callables().items()
                     if id(obj) not in walked and name not in EXEMPT)
    assert not missing, (f"{len(missing)} public callables are not in any bad-input table "
                         f"(tests/test_bad_input_*.py COVERED): " + ", ".join(missing))


def test_covered_names_exist():
    # A COVERED entry that names nothing is a typo or a renamed API: the table no longer tests it.
    stale = sorted(name for name, obj in covered().items() if obj is None)
    assert not stale, f"COVERED names that are not genlab callables: {', '.join(stale)}"


@pytest.mark.parametrize("name", sorted({**EXEMPT_METHODS, **EXEMPT}))
def test_exemptions_have_reasons(name):
    assert {**EXEMPT_METHODS, **EXEMPT}[name].strip()
