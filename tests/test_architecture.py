"""Import boundaries (STYLE §7, §10): apps talk only through each other's public
modules; torch stays inside the ML modules so web start-up stays light."""

from __future__ import annotations

import ast
from pathlib import Path

from django.conf import settings

ROOT = Path(settings.BASE_DIR)

# app package → modules other apps may import
PUBLIC = {
    "adplatform.eventlog": {"services", "selectors", "events", "projections"},
    "adplatform.access": {"services", "selectors", "scopes", "authentication"},
    "adplatform.api": {"errors", "schema"},
    "behaviour": {"services", "selectors", "events"},
    "catalog": {"services", "selectors", "events"},
    "campaigns": {"services", "selectors", "events"},
    "profiles": {"services", "selectors", "events"},
    "ranking": {"services", "selectors", "events", "metrics"},  # metrics: pure numpy, shared by every evaluator
    "delivery": {"services", "selectors", "events"},
    "tracking": {"services", "selectors", "events"},
    "marketplace": {"services", "selectors", "events"},
}
TORCH_ALLOWED = ("ranking/", "profiles/")


def _apps() -> dict[str, Path]:
    return {name: ROOT / name.replace(".", "/") for name in PUBLIC}


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            names.extend(f"{node.module}.{a.name}" for a in node.names)
    return names


def _owner(module: str, apps: dict[str, Path]) -> str | None:
    best = None
    for app in apps:
        if (module == app or module.startswith(app + ".")) and (best is None or len(app) > len(best)):
            best = app
    return best


def test_apps_import_only_public_modules_of_other_apps() -> None:
    apps = _apps()
    violations = []
    for app, folder in apps.items():
        for path in folder.rglob("*.py"):
            if "migrations" in path.parts:
                continue
            for module in _imports(path):
                owner = _owner(module, apps)
                if owner is None or owner == app or app.startswith(owner + ".") or owner.startswith(app + "."):
                    continue
                rest = module[len(owner) + 1 :].split(".")
                if not rest or rest == [""]:
                    continue
                if rest[0] not in PUBLIC[owner] and not (len(rest) == 1 and rest[0][:1].isupper()):
                    violations.append(f"{path.relative_to(ROOT)}: imports {module}")
    assert violations == []


def test_torch_is_imported_only_in_ml_modules() -> None:
    offenders = []
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith((".venv/", "var/", "tests/", "bench/")) or rel.startswith(TORCH_ALLOWED):
            continue
        if any(m == "torch" or m.startswith("torch.") for m in _imports(path)):
            offenders.append(rel)
    assert offenders == []
