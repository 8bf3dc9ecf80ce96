"""The shape of the package: README's architecture table names every module and only those;
nothing below the shell (the cli/ and console/ packages) imports typer or rich, prints or exits."""

from __future__ import annotations

import re

from .conftest import REPO


def test_the_architecture_table_lists_every_module() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Architecture\n", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `([a-z_/]+\.py)` \|", section, re.M))
    package = REPO / "ragcli"
    present = {
        path.relative_to(package).as_posix()
        for path in package.rglob("*.py")
        if path.name not in ("__init__.py", "__main__.py")
    }
    assert sorted(present - listed) == [], "modules missing from README's architecture table"
    assert sorted(listed - present) == [], "README's architecture table names gone modules"


# The shell: cli/ parses and exits, console/ renders (rich, and no typer); a name ending in "/"
# covers every module in that package.
SHELL = {"cli/": {"typer", "rich"}, "console/": {"rich"}, "__main__.py": set()}
# A child process's entry point talks to its parent on stdout and stderr: the engine check.
CHILD_ENTRY_POINTS = {"_child"}


def _nodes(tree):
    """Every node, leaving out ``if __name__ == "__main__":`` blocks and child entry points."""
    import ast

    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and "__name__" in ast.unparse(node.test):
            continue
        if isinstance(node, ast.FunctionDef) and node.name in CHILD_ENTRY_POINTS:
            continue
        yield node
        stack.extend(ast.iter_child_nodes(node))


def _shell_allowance(relative: str) -> set[str] | None:
    """What a shell module may import of typer and rich; None for a module below the shell."""
    for name, allowed in SHELL.items():
        if relative == name or (name.endswith("/") and relative.startswith(name)):
            return allowed
    return None


def _violations(path, allowed: set[str]) -> list[str]:
    import ast

    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in _nodes(tree):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            modules = [node.module or ""]
        else:
            modules = []
        for module in modules:
            top = module.split(".")[0]
            if top in ("typer", "rich") and top not in allowed:
                found.append(f"imports {module} (line {node.lineno})")
        if isinstance(node, ast.Call):
            name = ast.unparse(node.func)
            if name == "print" or name == "sys.exit":
                found.append(f"calls {name} (line {node.lineno})")
    return found


def test_nothing_below_the_shell_imports_typer_or_rich_prints_or_exits() -> None:
    package = REPO / "ragcli"
    problems = {}
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package).as_posix()
        allowed = _shell_allowance(relative)
        found = _violations(path, allowed if allowed is not None else set())
        if allowed is not None:
            found = [f for f in found if not f.startswith("calls")]  # the shell may print
        if found:
            problems[relative] = found
    assert problems == {}
