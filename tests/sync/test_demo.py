"""``csat-hook dev demo``: named agents whose sent / answered / response-rate figures agree."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import sqlalchemy as sa
import yaml
from click.testing import CliRunner

from csat_hook.cli import main
from csat_hook.db.engine import make_engine
from csat_hook.db.schema import answers
from csat_hook.db.schema import surveys
from csat_hook.devtools.demo import AGENTS

ROOT = Path(__file__).resolve().parents[2]


def demo_config(tmp_path: Path, database_url: str) -> Path:
    config = yaml.safe_load((ROOT / "examples" / "demo.yaml").read_text(encoding="utf-8"))
    config["database"]["url"] = database_url
    config["results"]["csv"]["path"] = str(tmp_path / "form-responses.csv")
    config["output"]["local"]["dir"] = str(tmp_path / "report")
    config["helpdesks"]["dryrun"]["output"] = str(tmp_path / "dry.jsonl")
    path = tmp_path / "demo.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path


def test_the_demo_gives_a_realistic_report_whose_figures_agree(tmp_path, database_url):
    config = demo_config(tmp_path, database_url)
    result = CliRunner().invoke(main, ["-c", str(config), "dev", "demo"], env={})
    assert result.exit_code == 0, result.output
    assert "sync ok" in result.stdout

    with (tmp_path / "report" / "summary.csv").open(encoding="utf-8-sig") as handle:
        board = {row["Agent"]: row for row in csv.DictReader(handle)}
    names = {agent.name for agent in AGENTS}
    assert names <= set(board)  # named agents, not "8" and "11"
    assert board["Farid Haddad"]["Rank"] == "not enough answers"
    assert {"▲", "▼"} <= {row["Sig."] for row in board.values()}
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            sent = Counter(
                name
                for name, status in conn.execute(sa.select(surveys.c.agent_name, surveys.c.status))
                if status == "sent"
            )
            stored = conn.execute(sa.select(sa.func.count()).select_from(answers)).scalar_one()
    finally:
        engine.dispose()
    all_time = {
        row["Name"]: row
        for row in csv.DictReader(
            (tmp_path / "report" / "periods.csv").read_text(encoding="utf-8-sig").splitlines()
        )
        if row["Period"] == "All time" and row["Level"] == "Agent"
    }
    for name in names:
        row = all_time[name]
        assert int(row["Surveys sent"]) == sent[name]
        rate = 100 * int(row["Answers"]) / sent[name]  # every answer is to a sent survey
        assert float(row["Response rate (%)"]) == round(rate, 1)
    assert sum(int(r["Answers"]) for r in all_time.values()) == stored

    again = CliRunner().invoke(main, ["-c", str(config), "dev", "demo"], env={})
    assert again.exit_code == 2 and "already holds the demo" in again.output
    # The sync it tells of is this configuration's: a bare `csat-hook sync` read the defaults.
    assert f"run `csat-hook -c {config} sync`" in again.output, again.output
    synced = CliRunner().invoke(main, ["-c", str(config), "sync", "--json"], env={})
    summary = json.loads(synced.stdout)
    assert (summary["new"], summary["updated"]) == (0, 0)


def test_the_demo_never_seeds_a_database_in_use(tmp_path, database_url):
    # $DATABASE_URL wins over examples/demo.yaml's database.url (a platform's shell sets it),
    # and a production config passed by mistake names the real database: the demo added
    # its 2,235 made-up surveys and 800 answers to the service's own figures.
    from tests.cli.test_cli import queue_one

    queue_one(tmp_path, dialog_id="REAL-1", database_url=database_url)
    config = demo_config(tmp_path, "sqlite:///unused.sqlite3")
    result = CliRunner().invoke(
        main, ["-c", str(config), "dev", "demo"], env={"DATABASE_URL": database_url}
    )

    assert result.exit_code == 2, result.output
    assert "database.url already holds surveys the demo did not make" in result.output
    assert "$DATABASE_URL is set" in result.output
    assert not (tmp_path / "form-responses.csv").exists()
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            kept = conn.execute(sa.select(surveys.c.dialog_id)).scalars().all()
    finally:
        engine.dispose()
    assert kept == ["REAL-1"]


def test_a_demo_helpdesk_that_is_not_configured_is_named(tmp_path):
    # "helpdesks: the demo needs a configured helpdesk (e.g. dryrun)" while dryrun was
    # configured: the option given was not named.
    config = demo_config(tmp_path, f"sqlite:///{tmp_path / 'demo.sqlite3'}")
    result = CliRunner().invoke(
        main, ["-c", str(config), "dev", "demo", "--helpdesk", "nope"], env={"DATABASE_URL": None}
    )
    assert result.exit_code == 2, result.output
    assert "--helpdesk: no helpdesk named 'nope'; configured: dryrun" in result.output
    assert not (tmp_path / "demo.sqlite3").exists()
