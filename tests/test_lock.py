"""requirements.lock (what `make install` installs) agrees with pyproject.toml: every dependency of the
project and its `dev` extra is pinned at a version inside its range, with the packages of the extras it
asks for, and the lock names no direct dependency that pyproject.toml dropped."""

from __future__ import annotations

import importlib.metadata
import re
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.project import PROJECT_ROOT

LOCK = PROJECT_ROOT / "requirements.lock"
FIX = "requirements.lock does not match pyproject.toml: run `make lock` and commit requirements.lock"


def declared() -> list[Requirement]:
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(text) for text in project["dependencies"] + project["optional-dependencies"]["dev"]]


def locked() -> tuple[dict[str, str], set[str]]:
    """({package: pinned version}, the packages the lock lists as the project's own dependencies)."""
    pins, direct, current = {}, set(), None
    for line in LOCK.read_text().splitlines():
        pin = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)", line)
        if pin:
            current = canonicalize_name(pin[1])
            pins[current] = pin[2]
        elif current and "talking-face (pyproject.toml)" in line:
            direct.add(current)
    return pins, direct


def extra_requirements(name: str, extras: set[str]) -> set[str]:
    """The packages a distribution's `extras` add, from its installed metadata (installed from the lock)."""
    needed = set()
    for text in importlib.metadata.requires(name) or []:
        requirement = Requirement(text)
        marker = requirement.marker
        if marker and any(marker.evaluate({"extra": extra}) for extra in extras) and not marker.evaluate({"extra": ""}):
            needed.add(canonicalize_name(requirement.name))
    return needed


def test_the_lock_pins_every_declared_dependency_inside_its_range():
    pins, direct = locked()
    problems = []
    for requirement in declared():
        name = canonicalize_name(requirement.name)
        if name not in pins:
            problems.append(f"{requirement} is not in the lock")
        elif not requirement.specifier.contains(pins[name], prereleases=True):
            problems.append(f"{requirement}: the lock pins {pins[name]}")
        elif name not in direct:
            problems.append(f"{requirement}: in the lock only as another package's dependency")
        missing = sorted(extra_requirements(requirement.name, requirement.extras) - set(pins)) if name in pins else []
        if missing:
            problems.append(f"{requirement}: its extras need {', '.join(missing)}, not in the lock")
    dropped = sorted(direct - {canonicalize_name(requirement.name) for requirement in declared()})
    if dropped:
        problems.append(f"the lock still lists {', '.join(dropped)} as a dependency of the project")
    assert not problems, f"{FIX}:\n  " + "\n  ".join(problems)


def test_torch_is_pinned_without_a_build_tag():
    # Each platform's index supplies its own build (CPU wheel here, CUDA on a cluster) of the same version.
    assert locked()[0]["torch"] == "2.13.0"
