"""Every ``__all__`` matches the public names, everything public is documented, and every theory
function (a formula) cites its source in a ``References`` section."""

import importlib
import inspect
import pkgutil

import pytest

import sgdnoise

MODULES = sorted(
    m.name for m in pkgutil.walk_packages(sgdnoise.__path__, "sgdnoise.")
    if not m.name.endswith("__main__")
)


@pytest.mark.parametrize("name", MODULES)
def test_all_lists_exactly_the_public_names(name):
    mod = importlib.import_module(name)
    assert hasattr(mod, "__all__"), f"{name} has no __all__"
    public = {
        n for n, obj in vars(mod).items()
        if not n.startswith("_")
        and (inspect.isfunction(obj) or inspect.isclass(obj))
        and getattr(obj, "__module__", "").startswith(name)
    }
    assert public <= set(mod.__all__), f"{name}: public but not in __all__: {public - set(mod.__all__)}"
    for n in mod.__all__:
        assert hasattr(mod, n), f"{name}.__all__ names missing {n}"


@pytest.mark.parametrize("name", MODULES)
def test_public_callables_have_docstrings(name):
    mod = importlib.import_module(name)
    for n in getattr(mod, "__all__", []):
        obj = getattr(mod, n)
        if inspect.isfunction(obj) or inspect.isclass(obj):
            assert inspect.getdoc(obj), f"{name}.{n} has no docstring"


def test_theory_functions_cite_their_source():
    from sgdnoise import theory

    missing = [
        n for n in theory.__all__
        if inspect.isfunction(getattr(theory, n))
        and "References" not in (inspect.getdoc(getattr(theory, n)) or "")
    ]
    assert not missing, f"theory functions without a References section: {missing}"
