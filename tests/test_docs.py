"""The README's architecture table names every module of the package, and only those."""

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
