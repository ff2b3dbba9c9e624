"""Moving between stores with the real CLI: ``tracehive export`` from a SQLite data dir,
``tracehive import --store postgresql://...``, ``tracehive export --store ...`` again: the same
bytes; and the other way round. Also ``tracehive migrate`` and ``keys``/``projects`` on
PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg

from tests import pg
from tests.process.server import TracehiveServer, run_cli
from tests.process.test_export_import import populate


def test_sqlite_to_postgresql_and_back_gives_the_same_export(
    server: TracehiveServer, key: str, tmp_path: Path
) -> None:
    populate(server, key)
    from_sqlite, from_postgres, back_in_sqlite = (tmp_path / n for n in ("a.jsonl", "b.jsonl", "c.jsonl"))
    run_cli("export", "--data-dir", str(server.data_dir), "-o", str(from_sqlite))
    assert from_sqlite.stat().st_size > 0
    with pg.fresh_database(migrated=False) as url:
        migrated = run_cli("migrate", "--store", url)
        assert "is at version" in migrated.stdout and "postgres@" in migrated.stdout
        imported = run_cli("import", str(from_sqlite), "--store", url)
        assert "Imported 8 events into project 'default'" in imported.stdout
        run_cli("export", "--store", url, "-o", str(from_postgres))
        assert from_postgres.read_bytes() == from_sqlite.read_bytes()

        # PostgreSQL -> a new SQLite data dir -> the same bytes again.
        run_cli("import", str(from_postgres), "--data-dir", str(tmp_path / "new-dir"))
        run_cli("export", "--data-dir", str(tmp_path / "new-dir"), "-o", str(back_in_sqlite))
        assert back_in_sqlite.read_bytes() == from_sqlite.read_bytes()


def test_keys_projects_and_migrate_on_postgresql(tmp_path: Path) -> None:
    with pg.fresh_database(migrated=False) as url:
        first = run_cli("migrate", "--store", url)
        again = run_cli("migrate", "--store", url)  # idempotent
        assert first.stdout == again.stdout
        created = run_cli("keys", "create", "--project", "shop", "--store", url, cwd=tmp_path)
        key = created.stdout.strip().splitlines()[-1]
        assert key.startswith("hh_")
        assert "shop" in run_cli("projects", "list", "--store", url).stdout
        listed = run_cli("keys", "list", "--store", url).stdout
        assert "shop" in listed and key not in listed
        with psycopg.connect(url) as conn:
            rows: list[Any] = conn.execute("SELECT key_hash FROM api_keys").fetchall()
        assert len(rows) == 1 and rows[0][0] != key
        # Nothing was written to a data dir: the store named by the URL is the only one.
        assert not (tmp_path / "tracehive-data").exists()


def test_an_unreachable_store_is_one_clear_line(tmp_path: Path) -> None:
    result = run_cli("keys", "list", "--store", "postgresql://nobody:secret@127.0.0.1:1/none", check=False)
    assert result.returncode != 0
    assert "secret" not in result.stderr and "Traceback" not in result.stderr
    assert "cannot connect" in result.stderr
    bad = run_cli("keys", "list", "--store", "mysql://x", check=False)
    assert bad.returncode != 0 and "unsupported store URL" in bad.stderr
