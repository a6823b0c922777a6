"""The README's promises: the commands it shows are the ones CI runs."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_ci_runs_the_readme_test_command_verbatim():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    marker = "# --- the README's test command, verbatim"
    command = ci.split(marker, 1)[1].splitlines()[1].strip()
    assert "python3 -m venv .venv" in command and command.endswith(".venv/bin/pytest -q")
    assert f"```sh\n{command}\n```" in readme


def test_readme_run_command_uses_the_example_config():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    first = re.search(r"```sh\n(.+?)\n```", readme).group(1)
    assert "pip install" in first and "config.example.yaml serve" in first


def test_docs_name_every_key_of_the_sync_summary():
    """docs/sync.md lists what ``sync --json`` prints; a key added to the summary is named
    there too (a scheduler's script reads them)."""
    from csat_hook.sync.summary import SyncSummary

    text = (ROOT / "docs" / "sync.md").read_text(encoding="utf-8")
    listed = text.split("* `--json` prints the summary:", 1)[1].split("* Exit codes:", 1)[0]
    listed += text.split("* `--json` also carries", 1)[1].split("\n* ", 1)[0]
    missing = [key for key in SyncSummary().as_dict() if f"`{key}`" not in listed]
    assert missing == []


DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def _code_text(path: Path) -> str:
    """The code blocks and inline code spans of a Markdown file, one per line."""
    text = path.read_text(encoding="utf-8")
    blocks = re.findall(r"```[a-z]*\n(.*?)```", text, re.S)
    spans = re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", text, flags=re.S))
    return "\n".join(blocks + spans)


def test_every_command_and_option_the_docs_show_exists():
    """A ``csat-hook …`` command in a code block or span names real (sub)commands, and each
    option it writes is one that command takes: an operator copies these lines."""
    import click

    from csat_hook.cli import main

    wrong = []
    for path in DOCS:
        for match in re.finditer(r"csat-hook((?:[ \t]+|\\\n\s*)[^\n`|;&>]*)", _code_text(path)):
            command: click.Command = main
            words = match.group(1).replace("\\\n", " ").split()
            index = 0
            while index < len(words):
                word = words[index].strip("[]()")
                if word in ("-c", "--config"):
                    index += 2
                    continue
                if word.startswith("-"):
                    known = {o for p in command.params for o in (*p.opts, *p.secondary_opts)}
                    if word.split("=")[0] not in known | {"-h", "--help"}:
                        wrong.append(f"{path.name}: {match.group(0).strip()}: {word}")
                elif isinstance(command, click.Group):
                    sub = command.get_command(click.Context(command), word)
                    if sub is None:
                        break  # prose in a span ("csat-hook listening on …"), or an argument
                    command = sub
                index += 1
    assert wrong == []


def _slug(heading: str) -> str:
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_relative_link_and_anchor_in_the_docs_resolves():
    """A link to a file of the repository, or to a heading (``docs/x.md#anchor``, GitHub's
    slugs), leads somewhere: a heading renamed breaks the links to it here, not for a reader."""
    anchors: dict[Path, set[str]] = {}
    for path in DOCS:
        prose = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
        seen: dict[str, int] = {}
        for heading in re.findall(r"^#{1,6} (.+)$", prose, re.M):
            slug = _slug(heading)
            anchors.setdefault(path, set()).add(f"{slug}-{seen[slug]}" if slug in seen else slug)
            seen[slug] = seen.get(slug, 0) + 1
    broken = []
    for path in DOCS:
        prose = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
        prose = re.sub(r"`[^`\n]+`", "", prose)  # `[text](url)` shows Markdown, links nowhere
        for target in re.findall(r"\]\(([^)\s]+)\)", prose):
            if re.match(r"[a-z]+:", target):
                continue
            file, _, fragment = target.partition("#")
            resolved = (path.parent / file).resolve() if file else path
            headings = anchors.get(resolved, set())
            unknown_heading = (
                bool(fragment) and resolved.suffix == ".md" and fragment not in headings
            )
            if not resolved.exists() or unknown_heading:
                broken.append(f"{path.name}: {target}")
    assert broken == []


def test_the_example_config_names_every_key_with_its_default():
    """config.example.yaml says "the value shown is the default": every key of every section
    (but ``helpdesks``, instances by name) is in it, with the model's default."""
    import yaml
    from pydantic import BaseModel

    from csat_hook.config.loading import load_config
    from csat_hook.config.model import Config

    raw = yaml.safe_load((ROOT / "config.example.yaml").read_text(encoding="utf-8"))
    loaded = load_config(str(ROOT / "config.example.yaml"))
    wrong = []

    def compare(default: BaseModel, example: BaseModel, written: dict[str, object], at: str):
        for name, field in type(default).model_fields.items():
            key = f"{at}{name}"
            if field.exclude or key == "helpdesks":
                continue
            if name not in written:
                wrong.append(f"{key}: not in the example")
            elif isinstance(getattr(default, name), BaseModel):
                section = written[name]
                assert isinstance(section, dict), key
                compare(getattr(default, name), getattr(example, name), section, f"{key}.")
            elif getattr(default, name) != getattr(example, name):
                wrong.append(
                    f"{key}: {getattr(example, name)!r}, default {getattr(default, name)!r}"
                )

    compare(Config(), loaded, raw, "")
    assert wrong == []


def test_every_configuration_key_the_docs_name_exists():
    """``section.key`` in the README, the docs or the example's comments is a key of the
    configuration (keys below a name the operator chooses, as helpdesks, are not checked)."""
    import typing

    from pydantic import BaseModel

    from csat_hook.config.model import Config

    def unknown(parts: list[str]) -> bool:
        model: object = Config
        for part in parts:
            if not (isinstance(model, type) and issubclass(model, BaseModel)):
                return False  # a dict of names, a list: free-form below
            if part not in model.model_fields:
                return True
            model = model.model_fields[part].annotation
            for _ in range(4):  # Optional[Model], list[Model]…: the model inside
                inner = typing.get_args(model)
                models = [a for a in inner if isinstance(a, type) and issubclass(a, BaseModel)]
                if models or not inner or typing.get_origin(model) is dict:
                    model = models[0] if models else model
                    break
                model = inner[0]
        return False

    sections = set(Config.model_fields) - {"helpdesks"}
    wrong = []
    for path in [*DOCS, ROOT / "config.example.yaml"]:
        text = path.read_text(encoding="utf-8")
        for key in re.findall(r"`([a-z_]+(?:\.[a-z_0-9]+)+)`", text):
            parts = key.split(".")
            if parts[-1] in ("csv", "py") and len(parts) == 2:
                continue  # a file: alerts.csv, sync.py
            if parts[0] in sections and unknown(parts):
                wrong.append(f"{path.name}: {key}")
    assert wrong == []


def test_the_readme_names_every_answer_to_a_close():
    """Every ``reason`` a skipped close is answered with (the send policy's, a remembered
    reopen's, the helpdesks' own) is named in the README's send policy, with the statuses
    a close and a reopen are answered with: a sender's script, or an operator reading a
    vendor's delivery log, reads them. recently_surveyed, excluded_channel and
    excluded_team were named nowhere."""
    from dataclasses import replace
    from datetime import UTC
    from datetime import datetime

    from csat_hook.helpdesks.records import DialogClosed
    from csat_hook.helpdesks.records import Person
    from csat_hook.helpdesks.zendesk.options import TICKET_CLOSED
    from csat_hook.intake.config import PolicyConfig
    from csat_hook.intake.policy import skip_reason
    from csat_hook.intake.store import REOPENED_AFTER_CLOSE

    now = datetime(2026, 11, 20, tzinfo=UTC)
    policy = PolicyConfig(
        per_dialog="every_close",
        customer_cooldown_days=1,
        skip_without_agent=True,
        exclude_channels=["email"],
        exclude_teams=["billing"],
    )
    base = DialogClosed(helpdesk="h", dialog_id="d", agent=Person(id="a"), customer=Person(id="c"))
    events = [
        replace(base, agent=Person()),
        replace(base, channel="Email"),
        replace(base, team="Billing"),
        replace(base, unsurveyable="no_customer"),
    ]
    reasons = {skip_reason(policy, {}, event, now, set(), {}) for event in events}
    reasons.add(skip_reason(policy, {}, base, now, {("dialog", "h", "d")}, {}))
    reasons.add(skip_reason(policy, {}, base, now, {("customer", "h", "c")}, {}))
    reasons |= {REOPENED_AFTER_CLOSE, TICKET_CLOSED}
    assert None not in reasons

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    policy_text = readme.split("* **Send policy.**", 1)[1].split("\n## ", 1)[0]
    named = [
        word
        for word in [*sorted(reasons), "queued", "duplicate", "skipped", "reopened", "cancelled"]
        if f"`{word}`" not in policy_text
    ]
    assert named == []


def test_the_readme_names_every_module_above_320_lines():
    """The README's "ones above 320" is the whole list: a module that grows past 320
    lines is named there (with its reason, or as a candidate for a split), and one that
    shrank is taken off, so the statement stays true."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("Most modules stay under about")
    paragraph = text[start : text.index("candidates for a split.", start)]
    named = set(re.findall(r"`([a-z_/]+\.py)`", paragraph))
    named.discard("tests/test_docs.py")  # this test, named as the list's keeper
    package = ROOT / "csat_hook"
    above = {
        path.relative_to(package).as_posix()
        for path in package.rglob("*.py")
        if len(path.read_text(encoding="utf-8").splitlines()) > 320
    }
    assert sorted(above - named) == [] and sorted(named - above) == []


# Keys the README's configuration table describes in words rather than by name: the words
# must stay in the key's row.
TABLE_WORDS = {
    "server.host": "bind address",
    "server.port": "bind address",
    "server.workers": "web processes",
    "server.threads": "threads",
    "survey.links.scale_min": "score links",
    "survey.links.scale_max": "score links",
    "survey.links.descending": "score links",
    "survey.links.default_language": "score links",
    "delivery.backoff_base_seconds": "backoff base/cap",
    "delivery.backoff_cap_seconds": "backoff base/cap",
    "delivery.connect_timeout_seconds": "timeouts",
    "delivery.read_timeout_seconds": "timeouts",
    "google.sheets_base_url": "Sheets/Forms base URLs",
    "google.forms_base_url": "Sheets/Forms base URLs",
    "google.connect_timeout_seconds": "timeouts",
    "google.read_timeout_seconds": "timeouts",
    "google.max_retries": "retries",
    "google.backoff_base_seconds": "retries",
    "google.backoff_cap_seconds": "retries",
    "results.columns": "column titles",
    "results.rating_labels": "rating labels",
    "metrics.scale_min": "rating scale",
    "metrics.scale_max": "rating scale",
    "metrics.top_box": "top-box threshold",
    "metrics.min_n": "minimum n",
    "metrics.timezone": "time zone",
    "metrics.periods": "periods",
    "metrics.trend_weeks": "trend weeks",
    "metrics.trend_months": "months",
    "output.gsheets": "Google Sheets",
    "output.local": "local output",
    "sync.lock_lease_seconds": "lock lease",
    "sync.lock_wait_seconds": "wait",
}


def test_the_readme_configuration_table_names_every_key_of_its_sections():
    """Each row of the README's configuration table names every key of its section, in
    backticks or in the words TABLE_WORDS holds for it: policy.reclose_grace_seconds and
    alerts.tab were in no row."""
    from pydantic import BaseModel

    from csat_hook.config.model import Config

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("| Section | What it sets |", 1)[1].split("\n\n", 1)[0]
    rows = dict(re.findall(r"^\| `([a-z_.]+)` \| (.+) \|$", table, re.M))
    wrong = []
    for section, text in rows.items():
        if section == "helpdesks":
            continue  # instances by name
        model: object = Config
        for part in section.split("."):
            assert isinstance(model, type) and issubclass(model, BaseModel), section
            model = model.model_fields[part].annotation
        assert isinstance(model, type) and issubclass(model, BaseModel), section
        for name in model.model_fields:
            key = f"{section}.{name}"
            words = TABLE_WORDS.get(key)
            if f"`{name}`" not in text and (words is None or words not in text):
                wrong.append(key)
    sections = {n for n, f in Config.model_fields.items() if not f.exclude} - {"survey"}
    assert set(rows) >= sections, sorted(sections - set(rows))
    assert wrong == []


def test_no_command_help_shows_rst_double_backticks():
    """``csat-hook --help`` showed "(Procfile ``worker:``)": the docstring's reST markup, which
    click prints as written; a help text uses single backticks, as the README does."""
    import click

    from csat_hook.cli import main

    wrong = []

    def walk(command: click.Command, path: str) -> None:
        with click.Context(command, info_name=path) as ctx:
            if "``" in command.get_help(ctx):
                wrong.append(path)
        if isinstance(command, click.Group):
            for name in command.list_commands(click.Context(command)):
                sub = command.get_command(click.Context(command), name)
                assert sub is not None
                walk(sub, f"{path} {name}")

    walk(main, "csat-hook")
    assert wrong == []
