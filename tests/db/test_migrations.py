"""Schema migrations: a fresh database, one made before migrations existed (with data in it),
concurrent upgrades, and the models matching what the migrations build."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
import warnings
from datetime import datetime

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from click.testing import CliRunner

from csat_hook.app import create_app
from csat_hook.cli import main
from csat_hook.db import migrate
from csat_hook.db.engine import make_engine
from csat_hook.db.schema import metadata
from csat_hook.errors import SchemaError

# The schema the first release created with metadata.create_all (before migrations),
# frozen here as it was shipped.
LEGACY = sa.MetaData()
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
sa.Table(
    "surveys",
    LEGACY,
    sa.Column("id", ID, primary_key=True),
    sa.Column("helpdesk", sa.String(64), nullable=False),
    sa.Column("dialog_id", sa.String(191), nullable=False),
    sa.Column("occurrence", sa.String(191), nullable=False, server_default=""),
    sa.Column("agent_id", sa.String(191)),
    sa.Column("agent_name", sa.String(255)),
    sa.Column("agent_email", sa.String(255)),
    sa.Column("customer_id", sa.String(191)),
    sa.Column("customer_email", sa.String(255)),
    sa.Column("customer_name", sa.String(255)),
    sa.Column("team", sa.String(255)),
    sa.Column("channel", sa.String(191)),
    sa.Column("language", sa.String(16)),
    sa.Column("token", sa.String(1024)),
    sa.Column("link", sa.Text()),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("skip_reason", sa.String(64)),
    sa.Column("closed_at", sa.DateTime()),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.Column("sent_at", sa.DateTime()),
    sa.UniqueConstraint("helpdesk", "dialog_id", "occurrence"),
    sa.UniqueConstraint("token"),
)
sa.Table(
    "outbox",
    LEGACY,
    sa.Column("id", ID, primary_key=True),
    sa.Column("survey_id", sa.ForeignKey("surveys.id", ondelete="CASCADE"), nullable=False),
    sa.Column("helpdesk", sa.String(64), nullable=False),
    sa.Column("dialog_id", sa.String(191), nullable=False),
    sa.Column("context", sa.JSON(), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
    sa.Column("lease_until", sa.DateTime()),
    sa.Column("claimed_by", sa.String(128)),
    sa.Column("last_error", sa.String(500)),
    sa.Column("last_http_status", sa.Integer()),
    sa.Column("external_id", sa.String(191)),
    sa.Column("body", sa.Text()),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.Column("updated_at", sa.DateTime(), nullable=False),
    sa.Column("sent_at", sa.DateTime()),
    sa.UniqueConstraint("survey_id"),
)


def test_a_fresh_database_is_built_to_match_the_models(engine):
    before, after = migrate.upgrade(engine)
    assert (before, after) == (None, migrate.head_revision())
    with warnings.catch_warnings():
        if engine.dialect.name == "sqlite":
            # SQLAlchemy cannot reflect SQLite's expression indexes, so alembic leaves them out
            # of the comparison (saying so twice): they are compared by their SQL below.
            warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression")
            warnings.filterwarnings("ignore", "autogenerate skipping metadata-specified expr")
        with engine.connect() as conn:
            differences = compare_metadata(MigrationContext.configure(conn), metadata)
    assert differences == []
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            built = dict(
                conn.execute(
                    sa.text(
                        "SELECT name, sql FROM sqlite_master"
                        " WHERE type = 'index' AND sql LIKE '%(%(%'"
                    )
                ).all()
            )
        expected = {
            str(ix.name): str(sa.schema.CreateIndex(ix).compile(dialect=engine.dialect))
            for table in metadata.tables.values()
            for ix in table.indexes
            if any(not isinstance(e, sa.Column) for e in ix.expressions)
        }
        assert expected  # the models have expression indexes: each is built as written
        assert {name: " ".join(sql.split()) for name, sql in built.items()} == {
            name: " ".join(sql.split()) for name, sql in expected.items()
        }


def test_upgrading_twice_changes_nothing(engine):
    migrate.upgrade(engine)
    assert migrate.upgrade(engine) == (migrate.head_revision(), migrate.head_revision())


def test_a_database_from_before_migrations_keeps_its_data_and_works(
    engine, make_config, make_services, fake_helpdesk, database_url
):
    LEGACY.create_all(engine)
    created = datetime(2026, 11, 1, 9, 30)
    with engine.begin() as conn:
        survey_id = conn.execute(
            LEGACY.tables["surveys"]
            .insert()
            .values(
                helpdesk="generic",
                dialog_id="OLD-1",
                occurrence="",
                agent_id="7",
                agent_name="Anna",
                token="tok-old-1",
                status="queued",
                created_at=created,
            )
            .returning(LEGACY.tables["surveys"].c.id)
        ).scalar_one()
        conn.execute(
            LEGACY.tables["outbox"]
            .insert()
            .values(
                survey_id=survey_id,
                helpdesk="generic",
                dialog_id="OLD-1",
                context={},
                status="pending",
                attempts=0,
                next_attempt_at=created,
                created_at=created,
                updated_at=created,
            )
        )

    assert migrate.upgrade(engine) == ("0001", migrate.head_revision())

    services = make_services(make_config())  # the same database: upgrades on start as well
    with services.engine.connect() as conn:
        row = conn.execute(sa.text("SELECT dialog_id, agent_name, status FROM surveys")).one()
    assert tuple(row) == ("OLD-1", "Anna", "queued")
    # The reply queued before the upgrade is still delivered, and new closes work.
    assert services.delivery_worker().run_once() == 1
    assert [r["path"] for r in fake_helpdesk.api_requests()] == ["/api/dialogs/OLD-1/messages"]
    client = create_app(services=services).test_client()
    response = client.post(
        "/webhooks/generic",
        json={"event": "dialog.closed", "dialog": {"id": "NEW-1"}},
        headers={"X-Webhook-Token": "generic-token-123"},
    )
    assert response.json["status"] == "queued"


def test_concurrent_upgrades_do_not_race(database_url):
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def run() -> None:
        engine = make_engine(database_url)
        try:
            barrier.wait()
            migrate.upgrade(engine)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_a_sqlite_upgrade_waits_for_another_process_upgrade_however_long(tmp_path):
    # Processes starting together after a release: the first migrates (an index over every
    # survey, a backfill) holding SQLite's writer lock; the second waited the busy timeout
    # (30 s, here the URL's 1 s) and failed with "database is busy", where PostgreSQL's
    # upgrade waits for the other's as long as it takes (migrate._schema_lock).
    url = f"sqlite:///{tmp_path / 'csat.sqlite3'}?timeout=1"
    first, second = make_engine(url), make_engine(url)
    migrate.upgrade(first, "0027")
    holding = threading.Event()

    def long_upgrade() -> None:
        with first.begin() as conn:
            conn.execute(sa.text("UPDATE alembic_version SET version_num = version_num"))
            holding.set()
            time.sleep(2.5)

    other = threading.Thread(target=long_upgrade)
    other.start()
    try:
        assert holding.wait(5)
        assert migrate.upgrade(second) == ("0027", migrate.HEAD_REVISION)
    finally:
        other.join()
        first.dispose()
        second.dispose()


def test_downgrade_and_upgrade_again(engine):
    migrate.upgrade(engine)
    assert migrate.downgrade(engine, "0001") == "0001"
    assert "answers" not in sa.inspect(engine).get_table_names()
    assert migrate.upgrade(engine)[1] == migrate.head_revision()


def test_db_commands(database_url, tmp_path):
    env = {"CSAT_HOOK_CONFIG": None, "DATABASE_URL": database_url}
    assert "current: none" in CliRunner().invoke(main, ["db", "current"], env=env).output
    result = CliRunner().invoke(main, ["db", "upgrade"], env=env)
    assert result.exit_code == 0 and f"empty → {migrate.head_revision()}" in result.output
    current = CliRunner().invoke(main, ["db", "current"], env=env).output
    assert f"current: {migrate.head_revision()}" in current and "run `csat-hook" not in current


def test_db_current_on_a_sqlite_file_not_there_makes_nothing(tmp_path):
    # A read-only status command made the folders, the database file and its writers' lock
    # file (as whoever ran it), and said "current: none".
    path = tmp_path / "not" / "yet" / "csat.sqlite3"
    env = {"CSAT_HOOK_CONFIG": None, "DATABASE_URL": f"sqlite:///{path}"}
    result = CliRunner().invoke(main, ["db", "current"], env=env)
    assert result.exit_code == 0, result.output
    assert f"current: none (no database at {path} yet" in result.output
    assert f"latest: {migrate.head_revision()}" in result.output
    assert not (tmp_path / "not").exists()


def test_the_head_revision_constant_is_the_newest_migration():
    # A new migration without HEAD_REVISION moved would leave every start believing the
    # schema is current: this fails first.
    assert migrate.head_revision() == migrate.HEAD_REVISION


def test_a_start_on_a_current_database_does_not_load_alembic(database_url):
    engine = make_engine(database_url)
    migrate.create_schema(engine)
    engine.dispose()
    # A fresh process, as a web worker, a delivery worker or a sync starts: the schema is
    # checked and Alembic (≈ 11 MB) stays unloaded.
    script = (
        "import sys\n"
        "from csat_hook.db.engine import make_engine\n"
        "from csat_hook.db.migrate import create_schema\n"
        "import csat_hook.app, csat_hook.sync.runner, csat_hook.outbox.worker\n"
        "create_schema(make_engine(sys.argv[1]))\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'alembic'))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, database_url], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"


def test_a_start_on_a_current_sqlite_database_waits_for_no_writer(tmp_path):
    # The check that the schema is current read alembic_version in a transaction that took
    # the writer lock (BEGIN IMMEDIATE, after every other process's write): each web worker's
    # boot, delivery worker's and command's start waited for a sync's long write, and failed
    # with "database is busy" after the busy timeout. It is a read: it waits for nobody.
    url = f"sqlite:///{tmp_path / 'csat.sqlite3'}?timeout=2"
    writer, starting = make_engine(url), make_engine(url)
    migrate.create_schema(writer)
    try:
        with writer.begin() as conn:  # another process's long write, holding the lock
            conn.execute(sa.text("UPDATE alembic_version SET version_num = version_num"))
            started = time.monotonic()
            migrate.create_schema(starting)
            took = time.monotonic() - started
    finally:
        writer.dispose()
        starting.dispose()

    assert took < 1.0, took


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
@pytest.mark.parametrize("state", ["empty", "current"])
def test_a_start_whose_first_connection_the_server_drops_checks_the_schema_again(
    database_url, state
):
    """A failover, a restart or ``pg_terminate_backend`` ending the connection a process has
    just made: its start's first statement failed (AdminShutdown) and a ``worker``, a web
    process's boot (which halts gunicorn's master) or ``serve`` ended in a traceback, when
    the database answered a fresh connection at once. The one retry on a fresh connection."""
    if state == "current":
        made = make_engine(database_url)
        migrate.create_schema(made)
        made.dispose()
    starting, admin = make_engine(database_url), make_engine(database_url)
    dropped: list[bool] = []

    @sa.event.listens_for(starting, "connect")
    def drop_the_first(dbapi_conn, _record):
        if not dropped:
            with admin.begin() as conn:
                pid = dbapi_conn.info.backend_pid
                dropped.append(
                    conn.execute(
                        sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}
                    ).scalar_one()
                )

    try:
        migrate.create_schema(starting)
        with starting.connect() as conn:
            version = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    finally:
        starting.dispose()
        admin.dispose()
    assert dropped == [True]
    assert version == migrate.HEAD_REVISION


def test_create_schema_still_upgrades_an_older_database_and_refuses_an_unknown_one(engine):
    migrate.upgrade(engine)
    migrate.downgrade(engine, "0009")
    migrate.create_schema(engine)
    assert migrate.current_revision(engine) == migrate.HEAD_REVISION
    assert "sync_source_reads" in sa.inspect(engine).get_table_names()
    with engine.begin() as conn:  # a database a newer release has upgraded
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(SchemaError, match="'9999', which this release does not know"):
        migrate.create_schema(engine)


def _revision(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return [row[0] for row in conn.execute(sa.text("SELECT version_num FROM alembic_version"))]


@pytest.mark.parametrize(
    "command", [["db", "upgrade"], ["worker", "--once"], ["sync"], ["outbox", "retry", "1"]]
)
def test_a_database_a_newer_release_upgraded_stops_every_command_with_a_message(
    engine, database_url, command
):
    # The app rolled back after a newer release's `db upgrade`: every start names both
    # revisions and exits 1, changing nothing (it was Alembic's traceback).
    migrate.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0099'"))
    env = {"CSAT_HOOK_CONFIG": None, "DATABASE_URL": database_url}
    result = CliRunner().invoke(main, command, env=env)
    assert result.exit_code == 1, result.output
    assert result.exc_info is not None and result.exc_info[0] is SystemExit
    assert (
        f"revision '0099', which this release does not know (its newest is "
        f"{migrate.HEAD_REVISION})" in result.output
    )
    assert _revision(engine) == ["0099"]
    current = CliRunner().invoke(main, ["db", "current"], env=env).output
    assert "newer than this release" in current and "run `csat-hook db upgrade`" not in current


def test_db_upgrade_refuses_an_unknown_or_earlier_target_revision(engine, database_url):
    # An earlier revision is the database's state, not the usage: exit 1, as a newer one.
    env = {"CSAT_HOOK_CONFIG": None, "DATABASE_URL": database_url}
    unknown = CliRunner().invoke(main, ["db", "upgrade", "--revision", "nonsense"], env=env)
    # A revision this release does not have is bad usage (exit 2), said with the valid ones.
    assert unknown.exit_code == 2 and unknown.exc_info[0] is SystemExit
    assert "Invalid value for '--revision': no schema revision 'nonsense'" in unknown.output
    assert f"head, 0001 … {migrate.HEAD_REVISION}" in unknown.output
    assert "alembic_version" not in sa.inspect(engine).get_table_names()  # nothing created
    migrate.upgrade(engine)
    back = CliRunner().invoke(main, ["db", "upgrade", "--revision", "0005"], env=env)
    assert back.exit_code == 1 and back.exc_info[0] is SystemExit
    assert f"at revision {migrate.HEAD_REVISION}, past 0005" in back.output
    assert _revision(engine) == [migrate.HEAD_REVISION]


@pytest.fixture
def without_rights(engine, database_url):
    """The database at 0005, and a URL to it for a user who may not change its schema: SQLite
    opened read-only, a PostgreSQL role without rights on the test's schema."""
    migrate.upgrade(engine, "0005")
    url = sa.make_url(database_url)
    if url.get_backend_name() == "sqlite":
        yield f"sqlite:///file:{url.database}?mode=ro&uri=true"
        return
    role = f"csat_ro_{uuid.uuid4().hex[:12]}"
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE ROLE "{role}" LOGIN'))
    try:
        yield url.set(username=role, password=None).render_as_string(hide_password=False)
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP ROLE "{role}"'))


@pytest.mark.parametrize("command", [["db", "upgrade"], ["worker", "--once"]])
def test_a_user_who_may_not_change_the_schema_gets_a_message(engine, without_rights, command):
    # The release step run with the app's restricted user, or a read-only replica: it was a
    # traceback quoting the CREATE TABLE statement.
    env = {"CSAT_HOOK_CONFIG": None, "DATABASE_URL": without_rights}
    result = CliRunner().invoke(main, command, env=env)
    assert result.exit_code == 1 and result.exc_info[0] is SystemExit, result.output
    assert "the database refused the schema change (" in result.output
    assert "as a user that may create and alter tables" in result.output
    assert "CREATE" not in result.output  # no statement
    assert _revision(engine) == ["0005"]


@pytest.mark.parametrize("table", ["surveys", "outbox", "answers"])
def test_another_applications_table_of_our_name_is_refused_untouched(engine, database_url, table):
    # A shared database whose other application has a `surveys` (or `outbox`) table: it was
    # taken for csat-hook's first schema and stamped, and the next migration ended in a
    # traceback ("no such table: outbox"); an `outbox` alone failed create_table the same way.
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, title TEXT)"))
        conn.execute(sa.text(f"INSERT INTO {table} (id, title) VALUES (1, 'Q3 survey')"))  # noqa: S608
    result = CliRunner().invoke(
        main, ["db", "upgrade"], env={"CSAT_HOOK_CONFIG": None, "DATABASE_URL": database_url}
    )

    assert result.exit_code == 1, result.output
    assert f"a table named '{table}' that csat-hook did not make" in result.output
    with engine.connect() as conn:
        title = conn.execute(sa.text(f"SELECT title FROM {table}")).scalar()  # noqa: S608
        assert title == "Q3 survey"
        assert not sa.inspect(conn).has_table("alembic_version")
