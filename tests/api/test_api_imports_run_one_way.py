"""The api app sits above bookings, as staff does: api imports bookings, never the reverse."""

import ast
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[2]


def api_imports_in(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if alias.name.split(".")[0] == "api"]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "api":
            found.append(node.module)
    return found


def test_no_module_of_bookings_or_staff_imports_the_api_app():
    modules = sorted([*(BASE_DIR / "bookings").rglob("*.py"), *(BASE_DIR / "staff").rglob("*.py")])
    assert len(modules) > 10
    offenders = {
        str(path.relative_to(BASE_DIR)): imports
        for path in modules
        if (imports := api_imports_in(path.read_text(encoding="utf-8")))
    }
    assert offenders == {}


def test_the_walk_would_see_an_import_inside_a_function():
    assert api_imports_in("def f():\n    from api.models import ApiKey\n") == ["api.models"]
