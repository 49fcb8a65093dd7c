"""The local flavours are one module each, registered by name: a new store's flavour cannot be
written and then forgotten by `--flavour`. Nothing here starts a stand-in."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

import kappa_local.flavours as flavours
import pytest
from kappa.spec import PipelineSpec, Windowing
from kappa_local.flavours import FLAVOURS, Flavour, Settings


def flavours_by_module() -> dict[str, list[type[Flavour]]]:
    """Module name -> the Flavour subclasses that module defines, for every module of the
    package."""
    found: dict[str, list[type[Flavour]]] = {}
    for info in pkgutil.iter_modules(flavours.__path__):
        module = importlib.import_module(f"{flavours.__name__}.{info.name}")
        found[info.name] = [
            cls
            for _, cls in inspect.getmembers(module, inspect.isclass)
            if issubclass(cls, Flavour) and cls is not Flavour and cls.__module__ == module.__name__
        ]
    return found


def test_every_flavour_has_a_module_of_its_name_and_is_registered():
    modules = flavours_by_module()
    assert modules.pop("base") == []
    for module, defined in modules.items():
        assert [cls.name for cls in defined] == [module]
        assert FLAVOURS[module] is defined[0]
    assert sorted(FLAVOURS) == sorted(modules)


@pytest.mark.parametrize("name", sorted(FLAVOURS))
def test_each_flavour_builds_a_valid_spec_without_starting_anything(name: str, tmp_path: Path):
    flavour = FLAVOURS[name](Settings(workdir=tmp_path, windowing=Windowing()))
    spec = flavour.spec()
    assert PipelineSpec.from_json(spec.to_json()) == spec
    assert spec.pipeline_version == "v1"
