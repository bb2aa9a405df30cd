"""The install is reproducible: constraints.txt pins every declared dependency within its range."""

from __future__ import annotations

import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from instruct_global_tests.conftest import REPO_ROOT


def _pins() -> dict[str, str]:
    pins = {}
    for line in (REPO_ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not an exact pin (name==version)"
            pins[canonicalize_name(name)] = version
    return pins


# the extras scripts/refresh_constraints.sh resolves together
PINNED_EXTRAS = ("dev", "deploy", "ctranslate2", "bench")


def test_constraints_pin_every_declared_dependency_within_its_range() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = project["optional-dependencies"]
    script = (REPO_ROOT / "scripts" / "refresh_constraints.sh").read_text(encoding="utf-8")
    assert f"-e '.[{','.join(PINNED_EXTRAS)}]'" in script
    declared = [*project["dependencies"], *(r for name in PINNED_EXTRAS for r in extras[name])]
    pins = _pins()
    problems = []
    for text in declared:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        if name not in pins:
            problems.append(f"{requirement.name} is declared in pyproject.toml but not pinned")
        elif not requirement.specifier.contains(pins[name], prereleases=True):
            problems.append(f"{requirement.name}=={pins[name]} is outside {requirement.specifier}")
    assert not problems, "run `make constraints`: " + "; ".join(problems)


def test_torch_is_a_range_and_pinned_without_a_local_build_label() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    (torch,) = [Requirement(r) for r in project["dependencies"] if Requirement(r).name == "torch"]
    assert not any(s.operator == "==" for s in torch.specifier), "a hard pin would replace a user's CUDA build"
    assert _pins()["torch"] == "2.13.0"


def test_the_architecture_page_draws_every_asset() -> None:
    from instruct_global.definitions import defs

    page = (REPO_ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    diagram = page.split("```mermaid", 1)[1].split("```", 1)[0]
    assets = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    missing = sorted(a for a in assets if a not in diagram)
    assert not missing, f"docs/ARCHITECTURE.md's diagram lacks {missing}"
