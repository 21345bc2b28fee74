"""The distribution: pyproject's ranges, the lock files that pin them, and the wheel's contents."""

import tomllib
from pathlib import Path

import pytest
from django.conf import settings
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(settings.BASE_DIR)
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _pins(lock: str) -> dict[str, Version]:
    pins = {}
    for line in (ROOT / lock).read_text().splitlines():
        line = line.split("#", 1)[0].split(";", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[canonicalize_name(Requirement(name).name)] = Version(version.strip())
    return pins


def _requirements(*, dev: bool) -> list[Requirement]:
    project = PYPROJECT["project"]
    listed = list(project["dependencies"])
    if dev:
        listed += project["optional-dependencies"]["dev"]
    return [Requirement(r) for r in listed]


@pytest.mark.parametrize(
    ("lock", "dev"), [("requirements.lock", False), ("requirements-dev.lock", True)]
)
def test_the_lock_pins_every_requirement_within_its_range(lock: str, dev: bool) -> None:
    pins = _pins(lock)
    for requirement in _requirements(dev=dev):
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{lock} does not pin {name}: run `make lock`"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"{lock} pins {name}=={pins[name]}, outside {requirement.specifier}: run `make lock`"
        )


def test_the_runtime_lock_agrees_with_the_dev_lock() -> None:
    runtime, dev = _pins("requirements.lock"), _pins("requirements-dev.lock")
    differing = {n: (v, dev.get(n)) for n, v in runtime.items() if dev.get(n) != v}
    assert not differing, f"the two locks disagree (run `make lock`): {differing}"


def test_every_app_and_its_files_are_packaged() -> None:
    setuptools = PYPROJECT["tool"]["setuptools"]
    included = {pattern.rstrip("*") for pattern in setuptools["packages"]["find"]["include"]}
    apps = {path.parent.name for path in ROOT.glob("*/apps.py")}
    assert apps <= included, f"apps left out of the wheel: {apps - included}"
    data = setuptools["package-data"]["licensing_portal"]
    assert "templates/**/*" in data and "static/**/*" in data
    # Templates and static files live in the shell package, so the wheel carries them.
    assert not (ROOT / "templates").exists() and not (ROOT / "static").exists()
    assert (ROOT / "licensing_portal" / "templates" / "base.html").exists()
