import pytest

from funmagic_kit.migrations import load_migrations


def test_kit_migrations_load_in_number_order() -> None:
    migrations = load_migrations("kit", "funmagic_kit.sql")

    assert [m.version for m in migrations] == sorted(m.version for m in migrations)
    assert migrations[0].name == "outbox_and_inbox"
    assert "CREATE TABLE outbox" in migrations[0].sql


def test_two_migrations_with_one_number_are_refused(tmp_path, monkeypatch_syspath) -> None:
    package = tmp_path / "dup_migrations"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "001_a.sql").write_text("SELECT 1;")
    (package / "001_b.sql").write_text("SELECT 2;")

    with pytest.raises(ValueError, match="same number"):
        load_migrations("dup", "dup_migrations")


def test_the_checksum_changes_when_the_sql_changes() -> None:
    migration = load_migrations("kit", "funmagic_kit.sql")[0]
    edited = type(migration)(migration.component, migration.version, migration.name, migration.sql + "\n--")

    assert edited.checksum != migration.checksum
