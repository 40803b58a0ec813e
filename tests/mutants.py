"""`make mutants`: mutation testing of the money and status code with mutmut (tests/MUTATION.md).

    .venv/bin/python tests/mutants.py                      # every module in [tool.mutmut] only_mutate
    .venv/bin/python tests/mutants.py accounts.billing.ledger generations.downloads   # some of them
    .venv/bin/python tests/mutants.py --report             # the table of the last run, nothing run
    .venv/bin/python tests/mutants.py --survivors accounts.billing.ledger   # only the last survivors again

Runs as on a fresh machine: SQLite and the embedded Redis, whatever DATABASE_URL and REDIS_URL say
(mutmut's workers would otherwise share one PostgreSQL test database). Each worker process gets a
database file of its own copied from a template migrated once here (tests/mutation_plugin.py), and a
Redis database of its own. mutmut runs, for each mutant, only the tests that call the mutated
function (it maps them in a first, clean run of the tests named in pyproject.toml); results are kept
in mutants/ and a second run re-tests only what changed. MUTANTS_JOBS sets the number of workers
(default: the number of CPUs).
"""

import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from collections import Counter
from pathlib import Path

from mutmut.stats import status_by_exit_code

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
TEMPLATE = ROOT / "var" / "mutants" / "template.sqlite3"


def configured_modules() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]
    return [path.removesuffix(".py").replace("/", ".") for path in config["only_mutate"]]


def fresh_mutants_dir_if_the_modules_changed(known: list[str]) -> None:
    """mutmut mutates a file only when its copy in mutants/ is older than the source, so a module
    newly added to only_mutate (its plain copy already there) would silently never be mutated."""
    record = ROOT / "mutants" / "seedance-only-mutate.json"
    if record.exists() and json.loads(record.read_text()) == sorted(known):
        return
    if (ROOT / "mutants").exists():
        print("[tool.mutmut] only_mutate changed: mutants/ is made again from scratch")
        shutil.rmtree(ROOT / "mutants")
    record.parent.mkdir()
    record.write_text(json.dumps(sorted(known)))


def migrated_template() -> None:
    """The test database every worker copies: migrated once, again only when a migration changes."""
    migrations = [p.stat().st_mtime for p in ROOT.glob("*/**/migrations/*.py")]
    if TEMPLATE.exists() and TEMPLATE.stat().st_mtime > max(migrations):
        return
    TEMPLATE.parent.mkdir(parents=True, exist_ok=True)
    TEMPLATE.unlink(missing_ok=True)
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{TEMPLATE}", "DJANGO_SECRET_KEY": "mutants-template"}
    migrate = [BIN / "python", "manage.py", "migrate", "--verbosity", "0"]
    subprocess.run(migrate, cwd=ROOT, env=env, check=True)


def survivors(modules: list[str]) -> list[str]:
    """The mutants of `modules` that the last run let through, or has not checked: after a test is
    added, only these need testing again (mutmut re-tests every mutant it is given by name, but
    skips those it has a verdict for when given a pattern)."""
    names = []
    for module in modules:
        meta = ROOT / "mutants" / (module.replace(".", "/") + ".py.meta")
        if meta.exists():
            codes = json.loads(meta.read_text())["exit_code_by_key"]
            # Not checked too: a function whose source changed since (its verdicts reset).
            let_through = ("survived", "no tests", "suspicious", "not checked")
            names += [name for name, code in codes.items() if status_by_exit_code[code] in let_through]
    return names


def report(modules: list[str]) -> list[dict[str, object]]:
    rows = []
    for module in modules:
        meta = ROOT / "mutants" / (module.replace(".", "/") + ".py.meta")
        if not meta.exists():
            continue
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        counts = Counter(status_by_exit_code[code] for code in codes.values())
        checked = sum(n for s, n in counts.items() if s not in ("not checked", "skipped"))
        survived = counts["survived"] + counts["no tests"] + counts["suspicious"]
        rows.append(
            {
                "module": module,
                "mutants": len(codes),
                **{key: counts[key] for key in ("killed", "survived", "no tests", "timeout", "suspicious")},
                "not checked": counts["not checked"],
                "survival": f"{100 * survived / checked:.1f} %" if checked else "-",
            }
        )
    return rows


def print_table(rows: list[dict[str, object]]) -> None:
    if not rows:
        print("No results yet: run `make mutants` first.")
        return
    columns = list(rows[0])
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in columns}
    print(" | ".join(c.ljust(widths[c]) for c in columns))
    print("-|-".join("-" * widths[c] for c in columns))
    for row in rows:
        print(" | ".join(str(row[c]).ljust(widths[c]) for c in columns))
    print("\nsurvival = (survived + no tests + suspicious) / checked; a timeout counts as killed.")
    print("Survivors: `.venv/bin/mutmut results`; one of them: `.venv/bin/mutmut show NAME`.")


def main(argv: list[str]) -> int:
    known = configured_modules()
    sys.path.insert(0, str(ROOT))
    from tests.mutation_plugin import MODULE_TESTS

    if set(known) != set(MODULE_TESTS):
        print("MODULE_TESTS (tests/mutation_plugin.py) must name the modules of [tool.mutmut] only_mutate")
        return 2
    only_report = "--report" in argv
    modules = [a for a in argv if not a.startswith("-")] or known
    unknown = sorted(set(modules) - set(known))
    if unknown:
        print(f"Not in [tool.mutmut] only_mutate: {', '.join(unknown)}. Known: {', '.join(known)}")
        return 2
    if not only_report:
        for name in ("DATABASE_URL", "REDIS_URL"):
            os.environ.pop(name, None)
        fresh_mutants_dir_if_the_modules_changed(known)
        migrated_template()
        os.environ["SEEDANCE_MUTANTS_DB_TEMPLATE"] = str(TEMPLATE)
        os.environ["SEEDANCE_MUTANTS_MODULES"] = ",".join(modules)
        jobs = os.environ.get("MUTANTS_JOBS") or str(os.cpu_count() or 2)
        patterns = [] if modules == known else [f"{m}.*" for m in modules]
        if "--survivors" in argv:
            patterns = survivors(modules)
            if not patterns:
                print("No survivors to test again.")
                print_table(report(modules))
                return 0
        started = time.monotonic()
        done = subprocess.run([BIN / "mutmut", "run", "--max-children", jobs, *patterns], cwd=ROOT)
        print(f"\nmutmut ran {time.monotonic() - started:.0f} s (exit {done.returncode})\n")
        if done.returncode:
            return done.returncode
    print_table(report(modules))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
