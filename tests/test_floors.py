"""Floors import only downward (ARCHITECTURE.md): a test that reads every import, lazy ones too.

A module may import from its own package and from packages on lower floors, never from a
package on its own floor or above. `sim/` installs as `robot_policy.sim`.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FLOORS = (
    ("features", "settings", "figures", "recent", "threads", "robots", "pretrained", "config"),
    ("data", "sim", "safety"),
    ("perception", "policies", "teleop", "viz"),
    ("runtime",),
    ("eval", "collect"),
    ("nodes",),
    ("graph",),
    ("bench",),
    ("cli",),
    ("__main__",),
)
FLOOR = {package: level for level, packages in enumerate(FLOORS) for package in packages}


def modules() -> dict[str, Path]:
    found = {}
    for base, prefix in (
        (ROOT / "robot_policy", "robot_policy"),
        (ROOT / "sim", "robot_policy.sim"),
    ):
        for path in base.rglob("*.py"):
            parts = list(path.relative_to(base).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([prefix, *parts])] = path
    return found


def imported(module: str, path: Path) -> set[str]:
    is_package = path.name == "__init__.py"
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                names.add(".".join(base + ([node.module] if node.module else [])))
            elif node.module:
                names.add(node.module)
    return {n for n in names if n.startswith("robot_policy.")}


def package(module: str) -> str:
    return module.split(".")[1]


def test_every_package_has_a_floor():
    unplaced = {package(m) for m in modules() if "." in m} - set(FLOOR)
    assert not unplaced, f"give these packages a floor in ARCHITECTURE.md and here: {unplaced}"


def test_imports_only_go_down():
    upward = []
    for module, path in modules().items():
        if "." not in module:
            continue
        own = package(module)
        for target in imported(module, path):
            other = package(target)
            if other != own and FLOOR[other] >= FLOOR[own]:
                upward.append(f"{module} imports {target} (floor {FLOOR[other]} >= {FLOOR[own]})")
    assert not upward, "\n".join(sorted(upward))
