"""graphql-core is the ``sandbox`` extra: the daemon runs without it, the demo says what to install.

Each check runs in a child interpreter where importing ``graphql`` fails as it would
where the extra is not installed.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

WITHOUT_GRAPHQL = textwrap.dedent("""
    import importlib.abc, sys

    class NoGraphQL(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] == "graphql":
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, NoGraphQL())
""")


def _run(code: str, *args: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.upper().startswith("SYNCD_")}
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_GRAPHQL + textwrap.dedent(code), *args],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_daemon_and_every_connector_import_without_graphql_core():
    done = _run("""
        import importlib, importlib.metadata, pkgutil

        for ep in importlib.metadata.entry_points(group="syncd.connectors"):
            ep.load()
        for package in ("syncd", "connectors", "mappings"):
            root = importlib.import_module(package)
            for info in pkgutil.walk_packages(root.__path__, package + "."):
                if (info.name.startswith("syncd.sandbox") or info.name in ("syncd.demo", "syncd.__main__")
                        or info.name.endswith((".fake", ".seed"))):
                    continue
                importlib.import_module(info.name)
        import syncd.app, syncd.cli, syncd.daemon
        print("ok")
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_demo_and_sandbox_without_the_extra_say_in_one_line_what_to_install():
    for command in ("demo", "sandbox"):
        done = _run(
            """
            import sys
            from syncd.cli import main
            main(sys.argv[1:])
        """,
            command,
        )
        assert done.returncode == 1, done.stderr
        assert done.stderr.splitlines() == [
            "syncd: the sandbox needs the 'sandbox' extra (graphql-core): pip install 'syncd[sandbox]'"
        ]
        assert done.stdout == ""
