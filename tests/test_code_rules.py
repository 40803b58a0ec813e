"""Rules of the codebase that a reviewer would otherwise have to remember (STYLE.md)."""

import ast

from tests.factories import ROOT

APPS = ("accounts", "generations", "seedance_site")


def python_files():
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" not in path.parts:
                yield path


def test_every_save_of_an_existing_row_names_its_update_fields():
    # A save() without update_fields writes back every column as it was read, undoing whatever
    # a claim or the ledger committed meanwhile. New rows are made with objects.create().
    offenders = []
    for path in python_files():
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "save"
                and not node.args  # storage.save(name, content) is not a model save
                and "update_fields" not in {keyword.arg for keyword in node.keywords}
            ):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


def test_only_the_ledger_writes_a_credit_account():
    # Every other module reads balances through accounts.billing.selectors.
    writers = []
    for path in python_files():
        text = path.read_text()
        if "CreditAccount.objects" in text and path.name not in ("ledger.py", "selectors.py", "audit.py"):
            writers.append(str(path.relative_to(ROOT)))
    assert writers == []


def test_test_modules_take_their_helpers_from_the_factories_not_from_each_other():
    # One home for helpers (tests/factories.py; fixtures in conftest.py): a helper copied into a
    # test module, or borrowed from one, drifts from the rest and makes modules depend on each other.
    offenders = []
    for path in sorted((ROOT / "tests").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                parts = name.split(".")
                if parts[0] == "tests" and any(p == "conftest" or p.startswith("test_") for p in parts[1:2]):
                    offenders.append(f"{path.name}:{node.lineno} imports {name}")
    assert offenders == []
