"""The staff app sits above bookings: staff imports bookings, never the reverse (issue 15).

A patients' page that imported a staff form once made bookings depend on reception's screens; this
walks every module of bookings (and the project's own settings and URLs do not count) and fails
on any import of `staff`, at the top of a module or inside a function.
"""

import ast
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parents[2]


def staff_imports_in(source: str) -> list[str]:
    """The `staff` modules that SOURCE imports, wherever the import statement stands."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if alias.name.split(".")[0] == "staff"]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "staff":
            found.append(node.module)
    return found


def test_no_module_of_bookings_imports_the_staff_app():
    modules = sorted((BASE_DIR / "bookings").rglob("*.py"))
    assert len(modules) > 10, "the walk found bookings' modules"
    offenders = {
        str(path.relative_to(BASE_DIR)): imports
        for path in modules
        if (imports := staff_imports_in(path.read_text(encoding="utf-8")))
    }
    assert offenders == {}


@pytest.mark.parametrize(
    "source",
    [
        "from staff.forms import CallbackRequestForm",
        "def contact(request):\n    from staff import views\n",
        "import staff.views",
    ],
)
def test_the_walk_sees_an_import_of_staff_wherever_it_stands(source):
    assert staff_imports_in(source)


def test_the_walk_leaves_bookings_own_names_alone():
    assert staff_imports_in("from bookings.models import RECEPTION_GROUP\nimport staffing_agency_sdk") == []
