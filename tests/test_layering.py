"""The house: every import between the project's packages points down (docs/layout.md).

Read from the source (ast), so an import inside a function counts like one at the top:

    licensing_portal                          the shell: settings, urls, celery, wsgi, demo data
    lifecycle                                 daily jobs, dashboards, history
    activation_api                            the device API
    orders          tokens                    order intake; servers, capacity, the exchange
    smartaccounts                             organizations, users, licenses, API-key auth
    notifications                             the e-mail outbox (apps register their renderers)
    kernel                                    the HTTP contract: no models, imports no app

A package may import only what its row in ALLOWED names; nothing imports the shell.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

ALLOWED: dict[str, set[str]] = {
    "kernel": set(),
    "appsuite_agent": set(),  # the stand-alone client: no Django, no project package
    "notifications": {"kernel"},
    "smartaccounts": {"kernel", "notifications"},
    "orders": {"kernel", "notifications", "smartaccounts"},
    "tokens": {"kernel", "smartaccounts"},
    "activation_api": {"kernel", "smartaccounts", "tokens"},
    "lifecycle": {"kernel", "notifications", "smartaccounts", "orders", "tokens"},
    "licensing_portal": {
        "kernel",
        "notifications",
        "smartaccounts",
        "orders",
        "tokens",
        "activation_api",
        "lifecycle",
    },
}
PACKAGES = set(ALLOWED)


def imported_packages(path: Path, package: str) -> list[tuple[int, str]]:
    """(line, top-level project package) for every import in the file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            # A relative import stays inside the file's own package.
            names = [package] if node.level else [node.module or ""]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            if top in PACKAGES and top != package:
                found.append((node.lineno, top))
    return found


def arrows() -> dict[str, list[str]]:
    """Each package's imports of other project packages, as "file:line -> package"."""
    result: dict[str, list[str]] = {package: [] for package in PACKAGES}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for line, target in imported_packages(path, package):
                result[package].append(f"{path.relative_to(ROOT)}:{line} -> {target}")
    return result


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_imports_point_down(package):
    wrong = [
        arrow for arrow in arrows()[package] if arrow.rsplit(" -> ", 1)[1] not in ALLOWED[package]
    ]
    assert not wrong, f"{package} may import only {sorted(ALLOWED[package])}:\n" + "\n".join(wrong)


def test_the_house_has_no_circle_and_nothing_imports_the_shell():
    assert all("licensing_portal" not in allowed for allowed in ALLOWED.values())
    done: set[str] = set()

    def visit(package: str, path: tuple[str, ...]) -> None:
        assert package not in path, f"circle: {' -> '.join((*path, package))}"
        if package in done:
            return
        for below in ALLOWED[package]:
            visit(below, (*path, package))
        done.add(package)

    for package in sorted(PACKAGES):
        visit(package, ())


def test_the_device_exchange_and_accounts_stand_where_design_md_draws_them():
    """activation_api -> tokens -> smartaccounts, orders -> smartaccounts; smartaccounts
    imports none of them."""
    assert "tokens" in ALLOWED["activation_api"]
    assert "smartaccounts" in ALLOWED["tokens"] and "smartaccounts" in ALLOWED["orders"]
    for app in ("orders", "tokens", "activation_api", "lifecycle"):
        assert app not in ALLOWED["smartaccounts"]
    assert not {"activation_api", "orders", "lifecycle"} & ALLOWED["tokens"]


def test_the_kernel_has_no_models():
    assert not (ROOT / "kernel" / "models.py").exists()
    assert not (ROOT / "kernel" / "migrations").exists()
    for path in (ROOT / "kernel").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                bases = [ast.unparse(base) for base in node.bases]
                assert not any(base.endswith("Model") for base in bases), (
                    f"{path.relative_to(ROOT)}: {node.name} is a model"
                )
