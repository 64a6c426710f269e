"""Import layering of `unmasklib`, checked statically: the use path never reaches training code,
and the model definitions reach nothing but other models, the face model and the root package.

The modules under test are parsed with `ast`, never imported, so the check is fast, needs no
torch, and sees imports that only run later (inside functions) as well as those at the top.
A module "reaches" every `unmasklib` module that importing it could execute:

- every `import` / `from ... import` anywhere in its file, lazy ones inside functions included
  (they run the moment the function is called, so they are as much a dependency as any other);
- relative imports, resolved against the importing module's package;
- `from pkg import name` as `pkg.name` when that is a submodule, else as `pkg`;
- the `__init__.py` of every parent package, which Python runs before the module itself
  (importing `unmasklib.data.loading` runs `unmasklib/data/__init__.py` and
  `unmasklib/__init__.py` first, with whatever those import in turn).

A failure names the shortest chain of imports from the module checked to each offender.
"""

from __future__ import annotations

import ast
import functools
from collections import deque
from collections.abc import Iterable
from pathlib import Path

import pytest

# The folder that holds the `unmasklib` package folder (the repository root).
SRC = Path(__file__).resolve().parents[1]

# A chain of imports, first the module checked, last the module it reaches.
Chain = tuple[str, ...]

# ----------------------------------------------------------------------------------------------
# The import graph. Every function takes `src`, the folder holding the top-level package, so the
# same code runs on the real package and on the fake one that proves it works.
# ----------------------------------------------------------------------------------------------


def module_file(src: Path, module: str) -> Path | None:
    """The file `module` (a dotted name) is loaded from under `src`, or None if there is none."""
    base = src.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def is_package(src: Path, module: str) -> bool:
    """Whether `module` is a package (a folder with an `__init__.py`), not a plain `.py` file."""
    path = module_file(src, module)
    return path is not None and path.name == "__init__.py"


def parent_of(module: str) -> str | None:
    """The package whose `__init__.py` Python runs before `module`, or None for a top level."""
    return module.rpartition(".")[0] or None


def relative_base(src: Path, module: str, level: int) -> str | None:
    """The package a relative import with `level` dots in `module` starts from, or None when
    it would climb above the top-level package (an import Python itself would refuse)."""
    # A package's own `__init__.py` resolves `.` against itself; a plain module, its parent.
    parts = module.split(".") if is_package(src, module) else module.split(".")[:-1]
    climb = level - 1
    if climb >= len(parts):
        return None
    return ".".join(parts[: len(parts) - climb])


def from_import_targets(src: Path, module: str, node: ast.ImportFrom) -> set[str]:
    """The modules a `from ... import ...` statement in `module` loads."""
    if node.level:
        base = relative_base(src, module, node.level)
        if base is None:
            return set()
        base = f"{base}.{node.module}" if node.module else base
    else:
        base = node.module or ""
    targets = set()
    for alias in node.names:
        # `from pkg import name` loads `pkg.name` when that is a submodule; otherwise `name` is
        # an attribute of `pkg` (and `*` is all of them), so only `pkg` itself is loaded.
        submodule = f"{base}.{alias.name}"
        targets.add(submodule if module_file(src, submodule) else base)
    return targets


@functools.cache
def imported_modules(src: Path, module: str) -> frozenset[str]:
    """Every module named by an import statement anywhere in `module`'s file, resolved to
    absolute dotted names (modules of any package, not only the one under check)."""
    path = module_file(src, module)
    if path is None:
        return frozenset()
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    # A module-level `__getattr__` (PEP 562) runs only when a caller asks the module for a
    # name it lacks (`unmasklib.Unmasker`), never when the module or a submodule is imported:
    # its imports are not what loading the module reaches.
    tree.body = [node for node in tree.body
                 if not (isinstance(node, ast.FunctionDef) and node.name == "__getattr__")]
    targets: set[str] = set()
    # `ast.walk` visits every node, so imports inside functions, classes, `if` and `try` blocks
    # count exactly like those at the top of the file.
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            targets.update(from_import_targets(src, module, node))
    return frozenset(targets)


def dependencies(src: Path, module: str) -> set[str]:
    """The modules of `module`'s own top-level package that loading `module` executes directly:
    those it imports, and its parent package (whose `__init__.py` runs first)."""
    top = module.split(".")[0]
    own = {m for m in imported_modules(src, module) if m.split(".")[0] == top}
    parent = parent_of(module)
    return own | {parent} if parent else own


def reach(src: Path, start: str) -> dict[str, Chain]:
    """Every module of `start`'s top-level package that loading `start` can execute, each with
    the shortest chain of imports that gets there (breadth-first, so chains are minimal)."""
    chains: dict[str, Chain] = {start: (start,)}
    queue = deque([start])
    while queue:
        module = queue.popleft()
        for dependency in sorted(dependencies(src, module)):
            if dependency not in chains:
                chains[dependency] = (*chains[module], dependency)
                queue.append(dependency)
    del chains[start]  # Only what `start` reaches, not `start` itself.
    return chains


def modules_under(src: Path, package: str) -> list[str]:
    """`package` and every module in it, at any depth, as dotted names."""
    folder = src.joinpath(*package.split("."))
    modules = []
    for path in sorted(folder.rglob("*.py")):
        parts = path.relative_to(src).with_suffix("").parts
        modules.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return modules


# ----------------------------------------------------------------------------------------------
# The rules.
# ----------------------------------------------------------------------------------------------


def within(module: str, package: str) -> bool:
    """Whether `module` is `package` itself or anything under it."""
    return module == package or module.startswith(package + ".")


def is_phase(module: str) -> bool:
    """Whether any part of `module`'s name is a `phase*` module (the pre-refactor layout)."""
    return any(part.startswith("phase") for part in module.split("."))


def show(chains: Iterable[Chain]) -> str:
    """Chains of imports, one per line, as `a -> b -> c`."""
    return "\n".join("  " + " -> ".join(chain) for chain in sorted(chains))


# The modules a user of trained models runs: none of them may pull in training code.
USE_PATH = [
    "unmasklib.pipeline",
    "unmasklib.widgets",
    "unmasklib.guidance",
    "unmasklib.painting",
    "unmasklib.fitting",
    "unmasklib.trained",
    "unmasklib.devices",
    "unmasklib.checkpoint",
    "unmasklib.alignment",
]

# What the model definitions must never reach: they are built and loaded without any of it.
NOT_FOR_MODELS = [
    "unmasklib.training",
    "unmasklib.data",
    "unmasklib.verification",
    "unmasklib.evaluation",
    "unmasklib.losses",
]

MODELS = modules_under(SRC, "unmasklib.models")


def is_allowed_for_models(module: str) -> bool:
    """Whether a model definition may reach `module`: other models, the face model, and the
    root package (which Python runs before any of them anyway)."""
    return (module == "unmasklib" or within(module, "unmasklib.models")
            or within(module, "unmasklib.face3d"))


@pytest.mark.parametrize("module", USE_PATH)
def test_use_path_reaches_no_training_code(module: str):
    # A renamed or deleted module would otherwise pass for reaching nothing.
    assert module_file(SRC, module) is not None, f"{module} no longer exists"
    bad = [chain for reached, chain in reach(SRC, module).items()
           if within(reached, "unmasklib.training") or is_phase(reached)]
    assert not bad, f"{module} reaches training code:\n{show(bad)}"


def test_models_are_found():
    # Guards the two model tests below against an empty parametrization, which would pass.
    assert "unmasklib.models" in MODELS and len(MODELS) > 1, MODELS


@pytest.mark.parametrize("module", MODELS)
def test_models_reach_no_training_data_or_evaluation(module: str):
    bad = [chain for reached, chain in reach(SRC, module).items()
           if any(within(reached, package) for package in NOT_FOR_MODELS) or is_phase(reached)]
    assert not bad, (f"{module} reaches what models must not use (training, data, verification, "
                     f"evaluation, losses, phase*):\n{show(bad)}")


@pytest.mark.parametrize("module", MODELS)
def test_models_reach_only_models_face3d_and_the_root(module: str):
    bad = [chain for reached, chain in reach(SRC, module).items()
           if not is_allowed_for_models(reached)]
    assert not bad, (f"{module} reaches modules outside unmasklib.models, unmasklib.face3d and "
                     f"the root package:\n{show(bad)}")


# ----------------------------------------------------------------------------------------------
# The checker itself, on fake packages small enough to know exactly what they reach.
# ----------------------------------------------------------------------------------------------


def write_package(root: Path, files: dict[str, str]) -> Path:
    """Write `files` (path relative to `root` -> source) and return `root`, to use as `src`."""
    for name, source in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source, encoding="utf-8")
    return root


def test_reach_follows_lazy_relative_imports_and_package_inits(tmp_path: Path):
    src = write_package(tmp_path, {
        "fakepkg/__init__.py": "",
        "fakepkg/a.py": "def later():\n    from .b import x\n    return x\n",
        "fakepkg/b.py": "import fakepkg.training.loop\n\nx = 1\n",
        "fakepkg/training/__init__.py": "",
        "fakepkg/training/loop.py": "",
    })
    reached = reach(src, "fakepkg.a")
    assert reached["fakepkg.training.loop"] == ("fakepkg.a", "fakepkg.b", "fakepkg.training.loop")
    # Loading `training.loop` runs `training/__init__.py` first, so that is reached too.
    assert reached["fakepkg.training"] == (
        "fakepkg.a", "fakepkg.b", "fakepkg.training.loop", "fakepkg.training")
    assert set(reached) == {"fakepkg", "fakepkg.b", "fakepkg.training", "fakepkg.training.loop"}


# Each case isolates one resolution rule: files of `fakepkg`, and the chain from `fakepkg.a` to
# `fakepkg.training.loop` that the rule alone makes.
RESOLUTION_CASES = {
    "from package import submodule": (
        {"a.py": "from fakepkg.training import loop\n"},
        ("fakepkg.a", "fakepkg.training.loop"),
    ),
    "from package import name resolves to the package": (
        {"a.py": "from .training import run\n",
         "training/__init__.py": "from .loop import run\n"},
        ("fakepkg.a", "fakepkg.training", "fakepkg.training.loop"),
    ),
    "two-dot relative import from a subpackage": (
        {"a.py": "from .data import loading\n",
         "data/__init__.py": "", "data/loading.py": "from ..training.loop import run\n"},
        ("fakepkg.a", "fakepkg.data.loading", "fakepkg.training.loop"),
    ),
    "parent package __init__ of an imported module": (
        {"a.py": "from .data.loading import collate\n",
         "data/__init__.py": "import fakepkg.training.loop\n", "data/loading.py": ""},
        ("fakepkg.a", "fakepkg.data.loading", "fakepkg.data", "fakepkg.training.loop"),
    ),
    "lazy import in a function of the root __init__": (
        {"__init__.py": "def helper():\n    from .training.loop import run\n",
         "a.py": ""},
        ("fakepkg.a", "fakepkg", "fakepkg.training.loop"),
    ),
}


@pytest.mark.parametrize("files, chain", RESOLUTION_CASES.values(), ids=RESOLUTION_CASES.keys())
def test_reach_resolves_each_kind_of_import(tmp_path: Path, files: dict[str, str], chain: Chain):
    skeleton = {"__init__.py": "", "training/__init__.py": "", "training/loop.py": "run = 1\n"}
    src = write_package(tmp_path, {f"fakepkg/{k}": v for k, v in {**skeleton, **files}.items()})
    assert reach(src, "fakepkg.a")["fakepkg.training.loop"] == chain


def test_reach_ignores_other_packages_and_unused_siblings(tmp_path: Path):
    src = write_package(tmp_path, {
        "fakepkg/__init__.py": "",
        "fakepkg/a.py": "import os\nimport torch.nn\nfrom .b import x\n",
        "fakepkg/b.py": "x = 1\n",
        "fakepkg/training/__init__.py": "",
        "fakepkg/training/loop.py": "",
    })
    assert set(reach(src, "fakepkg.a")) == {"fakepkg", "fakepkg.b"}


def test_a_module_getattr_hook_is_not_reached_by_importing(tmp_path: Path):
    files = {"__init__.py": "def __getattr__(name):\n    from .training.loop import run\n",
             "a.py": "", "training/__init__.py": "", "training/loop.py": "run = 1\n"}
    src = write_package(tmp_path, {f"fakepkg/{k}": v for k, v in files.items()})
    assert "fakepkg.training.loop" not in reach(src, "fakepkg.a")
