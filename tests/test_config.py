"""Configuration: defaults run, the example loads, every error names its key."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from csat_hook.cli import main
from csat_hook.config import config_warnings
from csat_hook.config import load_config
from csat_hook.config import masked_dump
from csat_hook.errors import ConfigError
from csat_hook.helpdesks.generic.templates import rendered_parts
from csat_hook.sync.config.output import REPORT_FILES
from csat_hook.sync.outputs.local import REPORT_CSVS
from csat_hook.sync.outputs.local import REPORT_XLSX
from csat_hook.sync.report.alerts import ALERTS_CSV
from csat_hook.sync.report.answers import UNVERIFIED_CSV

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config.example.yaml"


def test_built_in_defaults_need_nothing():
    config = load_config(None, env={})
    assert config.database.url.startswith("sqlite:///")
    assert list(config.helpdesks) == ["dryrun"]
    assert config.policy.per_dialog == "once"


def test_the_example_config_loads_with_no_environment():
    config = load_config(ROOT / "config.example.yaml", env={})
    assert {"dryrun", "generic", "chatwoot"} <= set(config.helpdesks)


def test_environment_references_are_resolved(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(
        "token: {secret: '${SECRET}'}\n"
        "helpdesks:\n  generic:\n    type: generic\n"
        "    auth: {mode: token, token: '${TOKEN:-fallback-token}'}\n"
        "    reply: {url: 'https://x.example/{dialog_id}?price=$$5'}\n"
    )
    config = load_config(path, env={"SECRET": "s" * 20})
    assert config.token.secret.get_secret_value() == "s" * 20
    generic = config.helpdesks["generic"]
    assert generic.auth.token.get_secret_value() == "fallback-token"
    assert generic.reply.url == "https://x.example/{dialog_id}?price=$5"


def test_a_missing_environment_variable_names_the_key(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("token: {secret: '${NOPE}'}\n")
    with pytest.raises(ConfigError, match=r"token\.secret: environment variable NOPE is not set"):
        load_config(path, env={})


def test_an_empty_environment_variable_is_not_called_unset(tmp_path):
    # `echo $SECRET` shows it is there: "is not set" sent the operator looking elsewhere.
    path = tmp_path / "c.yaml"
    path.write_text("token: {secret: '${SECRET}'}\n")
    with pytest.raises(ConfigError, match=r"token\.secret: environment variable SECRET is empty"):
        load_config(path, env={"SECRET": ""})


def test_database_url_from_the_environment_wins_and_is_normalised():
    config = load_config(None, env={"DATABASE_URL": "postgres://u:p@db.example/prod"})
    assert config.database.url == "postgresql+psycopg://u:p@db.example/prod"


@pytest.mark.parametrize("value", ["", " ", "\n"])
def test_an_empty_database_url_variable_is_refused_naming_it(tmp_path, value):
    # `DATABASE_URL=` in an env file, or `${DB_URL}` of an unset variable in a compose file:
    # taken as unset, the service ran on a SQLite file of the container's ephemeral disk
    # without a word, and lost what it stored at the next deploy.
    path = tmp_path / "c.yaml"
    path.write_text(
        "database: {url: 'sqlite:///%s'}\ntoken: {secret: '${S}'}\n" % (tmp_path / "c.sqlite3")
    )
    with pytest.raises(ConfigError) as raised:
        load_config(path, env={"DATABASE_URL": value})
    said = raised.value.message
    assert "DATABASE_URL: the environment variable is set but empty" in said, said
    assert "token.secret: environment variable S is not set" in said  # said with the rest


@pytest.mark.parametrize("where", ["environment", "file"])
def test_a_database_url_is_read_without_the_line_break_around_it(tmp_path, where):
    # A Kubernetes secret or a secret file ends with a newline: SQLite made a file named
    # "csat.sqlite3\n" beside the real one, PostgreSQL looked for a database "csat\n".
    url = f"sqlite:///{tmp_path / 'csat.sqlite3'}"
    env = {"DATABASE_URL": f" {url}\n"} if where == "environment" else {"DB": f"{url}\r\n"}
    path = tmp_path / "c.yaml"
    path.write_text("database: {url: '${DB:-sqlite:///unused.sqlite3}'}\n")
    assert load_config(path, env=env).database.url == url


def test_database_url_from_the_environment_needs_none_of_the_file_url_variables(tmp_path):
    # $DATABASE_URL wins, yet the file's `url: postgresql://app:${DB_PASSWORD}@db/csat` was
    # still expanded, and every command refused to start for a variable whose value would
    # have been thrown away.
    path = tmp_path / "c.yaml"
    path.write_text("database: {url: 'postgresql://app:${DB_PASSWORD}@db/csat'}\n")
    url = f"sqlite:///{tmp_path / 'csat.sqlite3'}"
    assert load_config(path, env={"DATABASE_URL": url}).database.url == url
    with pytest.raises(ConfigError, match=r"database\.url: environment variable DB_PASSWORD"):
        load_config(path, env={})


def test_a_bad_database_url_variable_is_named_as_the_variable():
    # "database.url: must be a ... URL" sent the operator to a file that held a good one.
    with pytest.raises(ConfigError) as raised:
        load_config(None, env={"DATABASE_URL": "mysql://u:S3CRET@db.example/x"})
    said = raised.value.message
    assert "database.url: must be a sqlite:/// or postgresql://" in said
    assert "(the URL given by $DATABASE_URL, which wins over the file)" in said
    assert "S3CRET" not in said


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("server: {port: 70000}", r"server\.port: Input should be less than or equal to 65535"),
        ("server: {prot: 1}", r"server\.prot: unknown key"),
        ("token: {secret: short}", r"token\.secret: must be at least 16 characters"),
        # Never sendable in an Authorization header (a pasted line break, a tab, a NUL):
        # the operator API was on, and every request to it a 401.
        (
            'server: {api_token: "operator-token-0123\\tabc"}',
            r"server\.api_token: .*control character",
        ),
        (
            'server: {api_token: "operator-token-0123\\nabc"}',
            r"server\.api_token: .*control character",
        ),
        ("policy: {per_dialog: sometimes}", r"policy\.per_dialog: Input should be 'once'"),
        ("survey: {reply: {templates: {en: 'no link here'}}}", r"templates: en: the template must"),
        (
            "survey: {reply: {templates: {en: '{link} {secret}'}}}",
            r"unknown placeholder \{secret\}",
        ),
        # A known placeholder with a format spec was said "unknown placeholder {agent_name};
        # known: ... {agent_name} ...", which read as a contradiction.
        (
            "survey: {reply: {templates: {en: '{link} {agent_name:>20}'}}}",
            r"templates: en: \{agent_name\} has a format spec or conversion .*write \{agent_name\}",
        ),
        (
            "survey: {reply: {templates: {en: '{link!r}'}}}",
            r"templates: en: \{link\} has a format spec or conversion",
        ),
        ("survey: {form: {fields: {agent_name: entry.1}}}", r"fields\.token is required"),
        ("survey: {form: {fields: {token: 'entry.x'}}}", r"not a Google Forms entry id"),
        (
            "survey: {form: {kind: template, url_template: 'https://t.example/?a={agent_name}'}}",
            r"must contain \{token\}",
        ),
        (  # a relative link: every short link redirected back to csat-hook itself
            "survey: {form: {url: 'docs.google.com/forms/d/e/X/viewform'}}",
            r"survey\.form\.url: the form's public link",
        ),
        (  # the pre-filled values (the reference too) would land in the fragment
            "survey: {form: {url: 'https://docs.google.com/forms/d/X/edit#responses'}}",
            r"survey\.form\.url: .*no #fragment",
        ),
        ("survey: {form: {url: 'javascript:alert(1)'}}", r"survey\.form\.url: "),
        (  # a space ends the link in every chat; the port is unreadable
            "survey: {form: {url: 'https://docs.google.com/forms/d/e/X Y/viewform'}}",
            r"survey\.form\.url: .*space",
        ),
        (
            "survey: {links: {public_base_url: 'https://csat.example.com/csat survey'}}",
            r"survey\.links\.public_base_url: .*space",
        ),
        (
            "survey: {links: {public_base_url: 'https://csat.example.com:99999'}}",
            r"survey\.links\.public_base_url: .*port",
        ),
        (  # the dialog id a webhook sent would choose where a short link redirects
            "survey: {form: {kind: template, url_template: 'https://{ticket}.example/?r={token}'}}",
            r"survey\.form\.url_template: an https:// link whose scheme and host",
        ),
        *(
            (  # replies carry the filled template as it is: a chat ends a link at a space
                f"survey: {{form: {{kind: template, url_template: '{template}'}}}}",
                rf"survey\.form\.url_template: {reason}",
            )
            for template, reason in (
                ("https://t.example/to/A B#ref={token}", r"no spaces"),
                ('https://t.example/to/A#ref={token}&x="', r"no spaces, quotes"),
                ("https://t.example/to/<A>#ref={token}", r"no spaces, quotes"),
                ("https://t.example:99999/to/A#ref={token}", r"the port"),
            )
        ),
        ("database: {url: 'mysql://x'}", r"database\.url: must be a sqlite"),
        ("helpdesks: {zz: {type: nope}}", r"helpdesks\.zz\.kind: unknown helpdesk kind 'nope'"),
        ("helpdesks: {Bad Name: {type: dryrun}}", r"the name must be lower-case"),
        (
            "helpdesks: {chatwoot: {api_access_token: t}}",
            r"helpdesks\.chatwoot: set webhook_secret",
        ),
        (
            "helpdesks: {g: {type: generic, auth: {mode: token, token: t}}}",
            r"helpdesks\.g: reply is required",
        ),
        (
            "helpdesks: {g: {type: generic, auth: {mode: hmac}, reply: {url: 'https://x'}}}",
            r"helpdesks\.g\.auth: secret is required",
        ),
        (
            "helpdesks: {g: {type: generic, auth: {mode: none}, mapping: {dialog_id: 'a..b'},"
            " reply: {url: 'https://x'}}}",
            r"dialog_id: 'a\.\.b' is not a valid JMESPath",
        ),
        (
            "helpdesks: {g: {type: generic, auth: {mode: none}, reply: {url: 'https://x/{oops}'}}}",
            r"unknown placeholder \{oops\}",
        ),
        *(
            (
                "helpdesks: {d: {type: dryrun, auth: {mode: none}, "
                f"ticket_url_template: '{template}'}}}}",
                r"helpdesks\.d\.ticket_url_template: .*\{ticket\} after the host",
            )
            for template in (
                "/tickets/{ticket}",  # no host: Telegram refuses such a link (every alert)
                "desk.example.com/t/{ticket}",
                "https://{ticket}.desk.example.com/",  # the dialog id would pick the host
                "https://desk.example.com/tickets/",  # no {ticket}
                "javascript:alert({ticket})",
                "https://desk.example.com/t /{ticket}",
            )
        ),
        *(
            (
                "helpdesks: {d: {type: dryrun, auth: {mode: none}, "
                f"ticket_url_template: '{template}'}}}}",
                rf"helpdesks\.d\.ticket_url_template: ticket_url_template: {reason}",
            )
            for template, reason in (
                # The survey links' check (links.form.check_link) holds for ticket links too.
                ("https://user:pw@desk.example.com/t/{ticket}", r"no credentials"),
                ("https://desk.example.com:99999/t/{ticket}", r"the port must be a number"),
                ("https://desk.example.com:80x/t/{ticket}", r"the port must be a number"),
                ("https://desk.example.com/t/{ticket}?a=b c", r"no spaces"),
                ('https://desk.example.com/t/"{ticket}"', r"no spaces, quotes"),
            )
        ),
        ("helpdesks: []", r"helpdesks: must be a mapping"),
        ("- just\n- a list", r"the top level must be a mapping"),
        ("a: [unclosed", r"is not valid YAML"),
    ],
)
def test_errors_name_the_key(tmp_path, yaml_text, message):
    path = tmp_path / "c.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError, match=message):
        load_config(path, env={})


def test_all_errors_are_reported_at_once(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("server: {port: 0}\nhelpdesks: {x: {type: nope}}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert "server.port" in info.value.message and "helpdesks.x.kind" in info.value.message


def test_masked_dump_hides_every_secret():
    config = load_config(
        ROOT / "config.example.yaml",
        env={
            "CHATWOOT_API_TOKEN": "cw-REAL-api",
            "CSAT_TOKEN_SECRET": "REAL-token-secret-xyz",
            "GENERIC_API_TOKEN": "REAL-generic-api",
        },
    )
    text = repr(masked_dump(config))
    for secret in (
        "cw-REAL-api",
        "REAL-token-secret-xyz",
        "REAL-generic-api",
        "dev-insecure-chatwoot-secret",
    ):
        assert secret not in text


def test_check_config_masks_a_secret_variable_wherever_the_file_puts_it(tmp_path):
    # A generic helpdesk's reply URL with an Azure Functions key (?code=${FN_KEY}), a body
    # with ${BODY_KEY}: check-config printed both in clear (only SecretStr fields, and query
    # parameters of a few names, were masked). A variable without a secret's name stays shown.
    path = tmp_path / "c.yaml"
    path.write_text(
        "helpdesks:\n"
        "  desk:\n"
        "    kind: generic\n"
        "    auth: {mode: none}\n"
        "    reply:\n"
        "      url: https://api.example.com/reply/{dialog_id}?code=${FN_KEY}&x=${REGION}\n"
        "      body: {api_key: '${BODY_KEY}', text: '{text}', note: 'v=${SIGNING_SECRET}'}\n"
        "      headers: {X-Sig: 'sig ${HOOK_SIG}'}\n"
        "output:\n"
        "  local: {dir: '${REPORT_DIR}'}\n"
    )
    env = {
        "FN_KEY": "LEAKfnkey-123",
        "BODY_KEY": "LEAKbody-456",
        "SIGNING_SECRET": "LEAKsigning-789",
        "HOOK_SIG": "LEAKhook",
        "REGION": "eu-west-1",
        "REPORT_DIR": str(tmp_path / "report"),
    }
    result = CliRunner().invoke(main, ["-c", str(path), "check-config"], env=env)
    assert result.exit_code == 0, result.output
    assert "LEAK" not in result.output, result.output
    assert "code=**********" in result.output and "api_key: '**********'" in result.output
    assert "eu-west-1" in result.output and str(tmp_path / "report") in result.output


def test_check_config_prints_masked_config_and_exits_0():
    result = CliRunner().invoke(
        main,
        ["-c", str(ROOT / "config.example.yaml"), "check-config"],
        env={"CHATWOOT_API_TOKEN": "cw-REAL-api"},
    )
    assert result.exit_code == 0
    assert "cw-REAL-api" not in result.output
    assert "api_access_token: '**********'" in result.output
    assert "configuration OK" in result.output


def test_check_config_warns_of_secrets_written_in_the_file_naming_only_the_keys(tmp_path):
    # A secret pasted into the YAML (not ${VAR}) went unremarked: the file, copied into a
    # repository or a ticket, carried it. Named by key, never shown.
    path = tmp_path / "c.yaml"
    path.write_text(
        "token:\n  secret: Inline-Token-Secret-123456\n"
        "server:\n  api_token: ${API_TOKEN}\n"
        "database:\n  url: postgresql://csat:Inline-Db-Pass@db.example/csat\n"
        "helpdesks:\n  dryrun:\n    auth: {mode: token, token: 'Inline-Webhook-Token'}\n"
        "  generic:\n    auth: {mode: token, token: '${GT:-Default-Inline-Token}'}\n"
        "    reply:\n      url: http://127.0.0.1:1/x\n"
        "      headers: {Authorization: 'Bearer ${GA}', X-Static: 'Inline-Header-Key'}\n"
    )
    env = {"API_TOKEN": "from-the-environment-123", "GA": "from-env-api"}
    result = CliRunner().invoke(main, ["-c", str(path), "check-config"], env=env)

    assert result.exit_code == 0, result.output
    (warning,) = [line for line in result.stderr.splitlines() if "written in the" in line]
    assert warning == (
        "warning: secrets written in the configuration file (give each as ${VAR}, from the "
        "environment, so the file holds none): database.url (its password), token.secret, "
        "helpdesks.dryrun.auth.token, helpdesks.generic.auth.token, "
        "helpdesks.generic.reply.headers.X-Static"
    )
    assert "Inline" not in result.output
    assert "configuration OK" in result.stderr


def test_the_shipped_example_and_the_defaults_say_nothing_of_secrets_in_the_file():
    # Their development secrets are already said (insecure); the zero-config start is quiet.
    for args in (["-c", str(ROOT / "config.example.yaml")], []):
        result = CliRunner().invoke(
            main, [*args, "check-config"], env={"CSAT_HOOK_CONFIG": None, "DATABASE_URL": None}
        )
        assert result.exit_code == 0, result.output
        assert "written in the configuration file" not in result.output


@pytest.mark.parametrize(
    ("host", "message"),
    [
        # ${HOST:-} with HOST unset: gunicorn bound every interface (":8000"), not 127.0.0.1.
        ("", "server.host: empty: give the interface to listen on"),
        ("  ", "server.host: empty"),
        # The port in the host was bound, server.port and --port ignored without a word.
        ("0.0.0.0:9000", "server.host: '0.0.0.0:9000' is not a host name or an IP address"),
        ("http://0.0.0.0", "server.host: 'http://0.0.0.0' is not a host name or an IP"),
    ],
)
def test_a_server_host_that_is_no_interface_is_refused_naming_the_key(host, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(None, env={}, overrides={"server": {"host": host}})


@pytest.mark.parametrize(
    ("host", "bound"),
    [("::1", "[::1]"), ("[::1]", "[::1]"), ("10.0.0.5", "10.0.0.5"), ("localhost", "localhost")],
)
def test_an_ipv6_server_host_is_bound_as_written_or_bracketed(host, bound):
    # "::1" gave gunicorn the bind ":::1:8000": "'' is not a valid port number".
    config = load_config(None, env={}, overrides={"server": {"host": host}})
    assert config.server.host == bound


def test_check_config_exits_2_naming_the_key(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("delivery: {max_attempts: 0}\n")
    result = CliRunner().invoke(main, ["-c", str(path), "check-config"])
    assert result.exit_code == 2
    assert "delivery.max_attempts: Input should be greater than or equal to 1" in result.output


# Links are ASCII: a look-alike letter in a host typed by hand is another host (a homograph),
# and a raw non-ASCII character breaks the short link's redirect (a Location header is
# Latin-1). The error names the key, the character and its ASCII spelling; a link written
# in ASCII (a host's xn-- form, a path percent-encoded, as a pasted pre-filled link is)
# is accepted as it is.
LOOKALIKE = "https://typ\u0435form.com/to/A#ref={token}"  # Cyrillic е


@pytest.mark.parametrize(
    ("template", "message"),
    [
        (
            LOOKALIKE,
            r"survey\.form\.url_template: only ASCII in a link: U\+0435 CYRILLIC SMALL LETTER IE "
            r"in the host, among Latin letters \(a look-alike\?\); an internationalized "
            r"host is written in its IDNA form: xn--typform-9gg\.com",
        ),
        (
            "https://опрос.рф/s#ref={token}",
            r"survey\.form\.url_template: only ASCII in a link: U\+043E CYRILLIC SMALL LETTER O "
            r"in the host; an internationalized host is written in its IDNA form: "
            r"xn--n1aaceg\.xn--p1ai",
        ),
        (
            "https://t.example/опрос?ref={token}",
            r"survey\.form\.url_template: only ASCII in a link: U\+043E CYRILLIC SMALL LETTER O "
            r"in the path: percent-encode it \(UTF-8\): %D0%BE",
        ),
        (
            "https://t.example/s?team=Поддержка&ref={token}",
            r"survey\.form\.url_template: only ASCII in a link: .* in the query: percent-encode",
        ),
        (
            "https://t.example/s?ref={token}\u200b",  # invisible, pasted along
            r"survey\.form\.url_template: only ASCII in a link: U\+200B ZERO WIDTH SPACE",
        ),
    ],
)
def test_a_form_url_template_with_non_ascii_is_refused_naming_the_key(template, message):
    overrides = {"survey": {"form": {"kind": "template", "url_template": template}}}
    with pytest.raises(ConfigError, match=message):
        load_config(None, env={}, overrides=overrides)


def test_check_config_names_the_url_template_and_the_character(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(
        f"survey: {{form: {{kind: template, url_template: '{LOOKALIKE}'}}}}\n", encoding="utf-8"
    )
    result = CliRunner().invoke(main, ["-c", str(path), "check-config"])
    assert result.exit_code == 2
    assert "survey.form.url_template: only ASCII in a link: U+0435" in result.output


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (
            {"form": {"url": "https://docs.g\u043e\u043egle.com/forms/d/e/X/viewform"}},
            r"survey\.form\.url: .*only ASCII in a link: U\+043E .* in the host",
        ),
        (
            {"links": {"public_base_url": "https://csat.пример.com"}},
            r"survey\.links\.public_base_url: .*only ASCII in a link: .* in the host",
        ),
    ],
)
def test_every_link_key_is_ascii(section, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, env={}, overrides={"survey": section})


def test_a_link_written_in_ascii_is_kept_as_it_is():
    # A pasted pre-filled link percent-encodes Cyrillic; an IDN host in its xn-- form.
    template = "https://xn--n1aaceg.xn--p1ai/s?team=%D0%9F%D0%BE%D0%B4&ref={token}"
    overrides = {"survey": {"form": {"kind": "template", "url_template": template}}}
    assert load_config(None, env={}, overrides=overrides).survey.form.url_template == template


def test_check_config_reports_an_unreadable_file(tmp_path):
    result = CliRunner().invoke(main, ["-c", str(tmp_path / "missing.yaml"), "check-config"])
    assert result.exit_code == 2 and "cannot read config file" in result.output


def test_the_commented_generic_agent_lookup_example_is_valid(tmp_path):
    # The same for the commented `agent_lookup` block.
    lines = (ROOT / "config.example.yaml").read_text(encoding="utf-8").splitlines()
    start = lines.index("    # agent_lookup:")
    end = next(i for i in range(start, len(lines)) if not lines[i].startswith("    #"))
    block = [line.replace("    # ", "    ", 1) for line in lines[start:end]]
    lines = lines[:start] + block + lines[end:]
    lines.remove("    agent_lookup: null")
    path = tmp_path / "example.yaml"
    path.write_text("\n".join(lines), encoding="utf-8")

    generic = load_config(path, env={"GENERIC_API_TOKEN": "t"}).helpdesks["generic"]

    assert generic.agent_lookup is not None
    assert generic.agent_lookup.by_dialog.agent == "assignee"
    assert generic.agent_lookup.by_id.name == "full_name"


def test_the_commented_generic_lookup_example_is_valid(tmp_path):
    # config.example.yaml shows a `lookup` block in comments: uncommented, it must load.
    lines = (ROOT / "config.example.yaml").read_text(encoding="utf-8").splitlines()
    start = lines.index("    # lookup:")
    end = next(i for i in range(start, len(lines)) if not lines[i].startswith("    #"))
    block = [line.replace("    # ", "    ", 1) for line in lines[start:end]]
    lines = lines[:start] + block + lines[end:]
    lines.remove("    lookup: null")
    path = tmp_path / "example.yaml"
    path.write_text("\n".join(lines), encoding="utf-8")

    generic = load_config(path, env={}).helpdesks["generic"]

    assert generic.lookup is not None and generic.lookup.messages == "messages"
    assert generic.lookup.ours == "direction == 'outgoing' && !private"


@pytest.mark.parametrize("where", ["yaml", "environment"])
def test_check_config_masks_the_database_password(tmp_path, where):
    url = "postgresql://csat:S3cr%40tPass@db.example.com:5432/csat?sslmode=require"
    path = tmp_path / "config.yaml"
    path.write_text(f"database: {{url: '{url}'}}\n" if where == "yaml" else "{}\n")
    env = {"DATABASE_URL": url} if where == "environment" else {}

    result = CliRunner().invoke(main, ["-c", str(path), "check-config"], env=env)

    assert result.exit_code == 0, result.output
    assert "S3cr" not in result.output
    assert "postgresql+psycopg://csat:**********@db.example.com:5432/csat?sslmode=require" in (
        result.output
    )


@pytest.mark.parametrize(
    "password", ["S3cret'pw", 'S3cret"pw', "S3cret pw", "S3cret<pw", "S3cret#pw"]
)
def test_check_config_masks_a_database_password_written_without_percent_escapes(password):
    # The URL was found in the text up to a quote, space or <: a password holding one (the
    # driver takes it as written, up to the last @) was printed whole.
    url = f"postgresql://csat:{password}@db.example.com:5432/csat?sslpassword=S3cretKey"

    result = CliRunner().invoke(
        main, ["check-config"], env={"CSAT_HOOK_CONFIG": None, "DATABASE_URL": url}
    )

    assert result.exit_code == 0, result.output
    assert "S3cret" not in result.output
    assert "postgresql+psycopg://csat:**********@db.example.com:5432/csat" in result.output


def test_masked_dump_masks_credentials_in_every_url():
    config = load_config(
        None,
        env={"DATABASE_URL": "postgresql://db.example.com/csat?user=app&password=PG-PASS"},
        overrides={
            "helpdesks": {
                "chatwoot": {
                    "kind": "chatwoot",
                    "base_url": "https://bot:CW-PASS@chat.example.com",
                    "api_access_token": "x",
                    "webhook_token": "y",
                },
                "generic": {
                    "kind": "generic",
                    "auth": {"mode": "none"},
                    "reply": {"url": "https://api.example.com/{dialog_id}?api_key=API-KEY&v=2"},
                },
            }
        },
    )

    data = masked_dump(config)

    text = repr(data)
    for secret in ("PG-PASS", "CW-PASS", "API-KEY"):
        assert secret not in text
    assert data["helpdesks"]["generic"]["reply"]["url"] == (
        "https://api.example.com/{dialog_id}?api_key=**********&v=2"
    )
    assert data["helpdesks"]["chatwoot"]["base_url"] == "https://bot:**********@chat.example.com"


@pytest.mark.parametrize(
    "text",
    [
        "See https://[our-site]/faq?token=S3CRET-TOKEN and rate us: {link}",
        "See https://user:S3CRET-TOKEN@docs.example.com]/faq and rate us: {link}",
    ],
)
def test_check_config_shows_a_text_holding_a_url_urllib_cannot_read(tmp_path, text):
    # A reply template with a bracketed placeholder in a URL ("https://[our-site]/faq")
    # loaded, and check-config ended in urllib's ValueError traceback as it masked it.
    path = tmp_path / "c.yaml"
    path.write_text(
        "survey:\n  reply:\n"
        f"    templates: {{en: '{text}'}}\n"
        "    templates_without_agent: {en: 'Rate us: {link}'}\n"
    )

    result = CliRunner().invoke(main, ["--config", str(path), "check-config"], env={})

    assert result.exit_code == 0, result.output
    assert "configuration OK" in result.output
    assert "S3CRET" not in result.output


def test_the_commented_alerts_example_is_valid(tmp_path):
    # config.example.yaml shows destinations, rules and digests in comments: uncommented, they
    # load, with the secrets from the environment.
    lines = (ROOT / "config.example.yaml").read_text(encoding="utf-8").splitlines()
    start = lines.index("  # destinations:")
    end = next(i for i in range(start, len(lines)) if not lines[i].startswith("  #"))
    block = [line.replace("  # ", "  ", 1) for line in lines[start:end]]
    lines = lines[:start] + block + lines[end:]
    for empty in ("  destinations: {}", "  rules: []", "  digests: []"):
        lines = [line for line in lines if not line.startswith(empty + " ")]
    path = tmp_path / "example.yaml"
    path.write_text("\n".join(lines), encoding="utf-8")
    env = {
        "SLACK_ALERTS_URL": "https://hooks.slack.com/services/T0/B0/X0",
        "TELEGRAM_BOT_TOKEN": "123456789:AAH0exampleTokenForTests_abcdefgh",
        "SMTP_PASSWORD": "pw",
        "ALERTS_WEBHOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    }

    alerts = load_config(path, env=env).alerts

    assert sorted(alerts.destinations) == [
        "conversation",
        "crm",
        "managers",
        "team-slack",
        "team-telegram",
    ]
    assert [r.name for r in alerts.rules] == ["low_rating", "comments", "agent_drop"]
    assert alerts.digests[0].at.hour == 9


def test_a_note_destination_without_a_helpdesk_that_takes_notes_is_warned_about():
    config = load_config(
        None,
        env={},
        overrides={
            "helpdesks": {
                "generic": {
                    "kind": "generic",
                    "auth": {"mode": "none"},
                    "reply": {"url": "https://d.example/{dialog_id}"},
                }
            },
            "alerts": {"destinations": {"note": {"kind": "helpdesk_note"}}},
        },
    )
    assert any(
        "alerts.destinations.note: no configured helpdesk" in w for w in config_warnings(config)
    )


CHATWOOT = {"api_access_token": "t", "webhook_secret": "s" * 32}


@pytest.mark.parametrize(
    ("kind", "options", "warned"),
    [
        ("chatwoot", {"base_url": "http://chat.example.com", **CHATWOOT}, True),
        ("chatwoot", {"base_url": "https://chat.example.com", **CHATWOOT}, False),
        ("chatwoot", {"base_url": "http://127.0.0.1:3000", **CHATWOOT}, False),
        (
            "intercom",
            {"base_url": "http://api.example.com", "access_token": "t", "client_secret": "s"},
            True,
        ),
    ],
)
def test_a_vendor_api_in_plain_http_to_another_host_is_warned_about(kind, options, warned):
    """As for the generic adapter's URLs: the API token in every request's headers and each
    reply cross the network readable."""
    config = load_config(None, env={}, overrides={"helpdesks": {"desk": {"kind": kind, **options}}})
    said = [w for w in config_warnings(config) if w.startswith("helpdesks.desk.base_url")]
    assert bool(said) is warned, said
    if warned:
        assert "plain http://" in said[0] and "use https://" in said[0]


@pytest.mark.parametrize(
    ("survey", "warned"),
    [
        ({"links": {"public_base_url": "http://csat.example.com"}}, ["survey.links"]),
        ({"links": {"public_base_url": "https://csat.example.com"}}, []),
        ({"links": {"public_base_url": "http://127.0.0.1:8000"}}, []),
        ({"links": {"public_base_url": "http://localhost:8000"}}, []),
        ({"links": {"public_base_url": "http://[::1]:8000"}}, []),
        # Local too (127.0.0.0/8 is loopback; *.localhost resolves to it, RFC 6761).
        ({"links": {"public_base_url": "http://127.0.0.2:8000"}}, []),
        ({"links": {"public_base_url": "http://csat.localhost:8000"}}, []),
        ({"links": {"public_base_url": "http://CSAT.LOCALHOST."}}, []),
        # Not local: only named like it.
        ({"links": {"public_base_url": "http://localhost.example.com"}}, ["survey.links"]),
        ({"links": {"public_base_url": "http://127.0.0.1.nip.io"}}, ["survey.links"]),
        ({"form": {"url": "http://docs.google.com/forms/d/e/X/viewform"}}, ["survey.form"]),
        ({"form": {"url": "https://docs.google.com/forms/d/e/X/viewform"}}, []),
    ],
)
def test_a_public_link_in_plain_http_to_another_host_is_warned_about(survey, warned):
    """The links customers open carry their survey's signed reference (and, for score links,
    the score): over plain http on the network anyone on the way reads and can change them."""
    config = load_config(None, env={}, overrides={"survey": survey})
    said = [w for w in config_warnings(config) if "plain http://" in w]
    assert [w.split(".url")[0].split(".public_base_url")[0] for w in said] == warned, said
    for warning in said:
        assert "use https://" in warning


@pytest.mark.parametrize(
    ("results", "warned"),
    [
        ({}, True),  # the default: a sheet's columns, no NPS title given
        ({"columns": {"nps": ["How likely are you to recommend us?"]}}, False),
        (
            {
                "source": "forms_api",
                "forms_api": {"form_id": "f1", "question_ids": {"rating": "a1", "token": "b2"}},
            },
            True,
        ),
        (
            {
                "source": "forms_api",
                "forms_api": {
                    "form_id": "f1",
                    "question_ids": {"rating": "a1", "token": "b2", "nps": "c3"},
                },
            },
            False,
        ),
    ],
)
def test_an_nps_detractor_rule_without_the_forms_nps_question_is_warned_about(results, warned):
    """Without the 0-10 question in the results no answer has an NPS score: the rule would
    never alert, and nothing said so."""
    config = load_config(
        None,
        env={},
        overrides={
            "results": results,
            "alerts": {
                "destinations": {
                    "slack": {
                        "kind": "slack",
                        "webhook_url": "https://hooks.slack.com/services/T/B/C",
                    }
                },
                "rules": [
                    {"name": "detractors", "kind": "nps_detractor", "destinations": ["slack"]}
                ],
            },
        },
    )
    said = [w for w in config_warnings(config) if w.startswith("alerts.rules.detractors")]
    assert bool(said) is warned, said
    if warned:
        assert "never alerts" in said[0] and "nps" in said[0]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        # PyYAML's own text quotes the offending line: here, a secret.
        (b"token:\n  secret: Sup3r-S3cret: value\n", r"line 2, column 23: mapping values"),
        (b"token:\n\tsecret: Sup3r-S3cret-value\n", r"line 2, column 1: .*'\\t'"),
        (b"token:\n  secret: '\xffSup3r-S3cret-value'\n", r"line 2: not UTF-8 text"),
        (b"metrics:\n  timezone: 2025-13-45\n", r"line 2, column 13: not a valid date"),
        # Characters YAML does not allow (a NUL, an ESC pasted from a terminal, DEL): PyYAML
        # refuses them before parsing, and that refusal was a traceback (exit 1).
        (b"server:\n  port: 8001\ntoken:\n  secret: Sup3r\x00S3cret\n", r"line 4: .*U\+0000"),
        (b"token:\n  secret: '\x1b[0mSup3r-S3cret-value'\n", r"line 2: .*U\+001B"),
        (b"token:\n  secret: 'Sup3r-S3cret-value\x7f'\n", r"line 2: .*U\+007F"),
    ],
)
def test_a_file_that_cannot_be_read_names_the_line_and_quotes_nothing(tmp_path, data, message):
    path = tmp_path / "c.yaml"
    path.write_bytes(data)

    result = CliRunner().invoke(main, ["-c", str(path), "check-config"])

    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert re.search(message, result.output), result.output
    assert "S3cret" not in result.output


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # Billion laughs: seven lines standing for 10**6 values (two more lines, 10**9).
        (
            "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
            + "".join(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 6))
            + "server: {port: *a5}\n",
            r"line 5: more than 100000 values once aliases are expanded",
        ),
        ("server: " + "[" * 5000 + "]" * 5000, r"line 1, column 72: nested deeper than 64"),
        (  # nested by aliases, not in the text
            "".join(f"a{i}: &a{i} [{f'*a{i - 1}' if i else 'x'}]\n" for i in range(100)),
            r"nested deeper than 64 levels",
        ),
        ("a: &a {b: *a}\n", r"line 1: a\.b: an alias refers to itself"),
    ],
)
def test_a_file_too_large_deep_or_recursive_once_expanded_is_refused(tmp_path, text, message):
    path = tmp_path / "c.yaml"
    path.write_text(text)

    # CPU time, not wall time: a busy machine (other tests' processes on the same cores) made
    # the wall-clock bound fail now and then; an expansion that ran would take minutes of CPU.
    started = time.thread_time()
    with pytest.raises(ConfigError, match=message):
        load_config(path, env={})
    assert time.thread_time() - started < 2


def test_anchors_and_merge_keys_still_load(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(
        "helpdesks:\n"
        "  one: &desk {kind: dryrun, auth: {mode: token, token: a-token-of-ours}}\n"
        "  two:\n    <<: *desk\n    output: var/two.jsonl\n"
    )
    config = load_config(path, env={})
    assert config.helpdesks["two"].output == "var/two.jsonl"
    assert config.helpdesks["two"].auth.token.get_secret_value() == "a-token-of-ours"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "token:\n  secret: the-secret-meant-earlier\n  secret: a-later-secret-value\n",
            r"line 3: token\.secret: given twice \(first on line 2\); keep one",
        ),
        ("server: {port: 8001}\nserver: {port: 8002}\n", r"line 2: server: given twice"),
        (
            "helpdesks:\n  d: {kind: dryrun}\n  d: {kind: generic}\n",
            r"line 3: helpdesks\.d: given twice",
        ),
        # One agent id, quoted once and not once (or written 1_4): the configuration reads
        # ids as text, so the directory kept the last entry and dropped the other unsaid.
        (
            "helpdesks:\n  d:\n    kind: dryrun\n    agents:\n"
            "      14: {name: the-secret-meant-earlier}\n"
            "      '14': {name: a-later-secret-value}\n",
            r"line 6: helpdesks\.d\.agents\.14: given twice \(first on line 5, written "
            r"another way: the same key\); keep one",
        ),
        (
            "helpdesks:\n  d:\n    kind: dryrun\n    agents:\n"
            "      14: {name: the-secret-meant-earlier}\n      1_4: {name: a-later-secret-value}\n",
            r"line 6: helpdesks\.d\.agents\.1_4: given twice \(first on line 5",
        ),
    ],
)
def test_a_key_given_twice_is_refused_naming_it(tmp_path, text, message):
    # PyYAML alone keeps the last one without a word.
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        load_config(path, env={})
    assert "secret-meant" not in info.value.message and "later-secret" not in info.value.message


@pytest.mark.parametrize(
    ("url", "message"),
    [
        # The password's "@" unencoded: its rest became the host, which psycopg's connection
        # error quotes ("failed to resolve host 'Wd-77@db.example.com'").
        (
            "postgresql://csat:Pa55@Wd-77@db.example.com/csat",
            r"an @ in the user name or password must be written %40",
        ),
        # Its rest after a "/" or a "?" (Pa55@Wd-77/x9): the host was "Wd-77" and the rest a
        # database or an option's name, said by check-config's masked URL and quoted by the
        # driver ("failed to resolve host 'Wd-77'").
        (
            "postgresql://csat:Pa55@Wd-77/x9@db.example.com/csat",
            r"an @ in the user name or password must be written %40",
        ),
        (
            "postgresql://csat:Pa55@Wd-77:5432/x9@db.example.com/csat",
            r"an @ in the user name or password must be written %40",
        ),
        (
            "postgresql://csat:Pa55@Wd-77?x9@db.example.com/csat",
            r"an @ in the user name or password must be written %40",
        ),
        (
            "postgres://csat:Pa55@Wd-77/x9@db.example.com/csat",  # Heroku's spelling
            r"an @ in the user name or password must be written %40",
        ),
        ("postgresql://csat:Pa55Wd-77@db.example.com:54x2/csat", r"is not a valid URL"),
        ("postgres://csat:Pa55Wd-77@db.example.com:99999/csat", r"the port must be 1 to 65535"),
    ],
)
def test_a_database_url_the_driver_would_trip_on_is_refused_quoting_none_of_it(url, message):
    # A bad port used to end in a ValueError traceback at the first connection.
    result = CliRunner().invoke(main, ["check-config"], env={"DATABASE_URL": url})

    assert result.exit_code == 2, result.output
    assert re.search(r"database\.url: " + message, result.output), result.output
    assert "Pa55" not in result.output and "Wd-77" not in result.output


def test_an_encoded_password_and_a_socket_url_are_valid():
    for url in (
        "postgresql://csat:Pa55%40Wd@db.example.com:5432/csat",
        "postgresql:///csat?host=/var/run/postgresql",
        "sqlite:////srv/csat@2/csat.sqlite3",
        "postgresql://csat@azure-server:Pa55%40Wd@db.example.com/csat",  # SQLAlchemy's user
        "postgresql://csat:pw@db.example.com/csat?application_name=csat@web",
    ):
        assert load_config(None, env={"DATABASE_URL": url}).database.url.endswith(url[-12:])


@pytest.mark.parametrize(
    "value",
    [
        "${CW_SECRET:-Pa55-w0rd-default",  # the closing brace forgotten
        "${1CW_SECRET:-Pa55-w0rd-default}",  # not a variable name
        "Pa55-w0rd${literal",  # a literal secret holding ${ (write $$)
    ],
)
def test_a_malformed_reference_says_where_and_quotes_nothing(tmp_path, value):
    path = tmp_path / "c.yaml"
    path.write_text(f"token: {{secret: '{value}'}}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert re.search(
        rf"token\.secret: malformed \$\{{\.\.\.}} reference at character {value.index('${') + 1}",
        info.value.message,
    ), info.value.message
    assert "Pa55" not in info.value.message and "w0rd" not in info.value.message


@pytest.mark.parametrize(
    ("written", "read_as"),
    [
        ("null", "null (no value)"),
        ("~", "null (no value)"),
        ("yes", "true/false"),
        ("2025-01-01", "a date"),
    ],
)
def test_a_helpdesk_name_yaml_reads_as_another_value_says_what_it_was_read_as(
    tmp_path, written, read_as
):
    # Said "helpdesks.None: the name is read as a number; quote it ('None':)": no number,
    # and the name it suggested ("None", "True") is refused as not lower-case.
    path = tmp_path / "c.yaml"
    path.write_text(f"helpdesks:\n  {written}: {{kind: dryrun}}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    message = info.value.message
    assert f"the name is read as {read_as}" in message, message
    assert "None" not in message and "True" not in message
    assert "number" not in message


def test_a_helpdesk_name_yaml_reads_as_a_number_is_refused(tmp_path):
    # It was kept as the int 1, so /webhooks/1 (the text "1") found no helpdesk: 404 forever.
    path = tmp_path / "c.yaml"
    path.write_text("helpdesks:\n  1: {kind: dryrun}\n")
    with pytest.raises(ConfigError, match=r"helpdesks\.1: the name is read as a number; quote it"):
        load_config(path, env={})

    path.write_text("helpdesks:\n  '1': {kind: dryrun}\n")
    assert list(load_config(path, env={}).helpdesks) == ["1"]


def test_a_file_far_larger_than_a_configuration_is_refused_unread(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("# " + "x" * 2_000_000 + "\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: larger than 1 MB; is it the configuration"):
        load_config(path, env={})

    # /dev/zero as the config file used to be read until memory ran out.
    result = CliRunner().invoke(main, ["-c", "/dev/zero", "check-config"])
    assert result.exit_code == 2 and "/dev/zero: larger than 1 MB" in result.output


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("delivery: {max_attempts: yes}", r"delivery: max_attempts: a number, not true"),
        ("metrics: {low_rating: on}", r"metrics: low_rating: a number, not true"),
        ("server: {body_timeout_seconds: off}", r"server: body_timeout_seconds: a number, not fa"),
    ],
)
def test_yes_no_on_off_are_not_numbers(tmp_path, yaml_text, message):
    # YAML reads them as true/false, which pydantic took as 1 and 0: one attempt, a
    # low-rating threshold of 1, a body timeout of 0 s.
    path = tmp_path / "c.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError, match=message):
        load_config(path, env={})


def test_booleans_and_numbers_from_the_environment_still_load(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("server: {port: '${PORT}'}\npolicy: {skip_without_agent: yes}\n")
    config = load_config(path, env={"PORT": "8001"})
    assert config.server.port == 8001 and config.policy.skip_without_agent is True


def test_secrets_are_read_without_the_line_break_a_secret_file_ends_with(tmp_path):
    # A Kubernetes secret or `$(cat secret.txt)` ends with "\n": no vendor's secret does, so
    # every signature would fail (401 forever) and every header holding it would be refused.
    path = tmp_path / "c.yaml"
    path.write_text(
        "token: {secret: '${TOKEN_SECRET}', previous_secrets: ['${OLD_SECRET}']}\n"
        "helpdesks:\n"
        "  chatwoot: {kind: chatwoot, base_url: 'https://chat.example.com',"
        " api_access_token: '${CW_TOKEN}', webhook_secret: '${CW_SECRET}'}\n"
        "  g: {kind: generic, auth: {mode: token, token: '${G_TOKEN}'},"
        " reply: {url: 'https://desk.example.com/{dialog_id}',"
        " headers: {Authorization: '${G_AUTH}'}}}\n"
    )
    env = {
        "TOKEN_SECRET": "s" * 40 + "\n",
        "OLD_SECRET": "\t" + "o" * 40 + "\r\n",
        "CW_TOKEN": "cw-api-token\n",
        "CW_SECRET": " cw-webhook-secret \n",
        "G_TOKEN": "g-token\n",
        "G_AUTH": "Bearer g-api\n",
    }
    config = load_config(path, env=env)
    assert config.token.secret.get_secret_value() == "s" * 40
    assert [s.get_secret_value() for s in config.token.previous_secrets] == ["o" * 40]
    chatwoot, generic = config.helpdesks["chatwoot"], config.helpdesks["g"]
    assert chatwoot.api_access_token.get_secret_value() == "cw-api-token"
    assert chatwoot.webhook_secret.get_secret_value() == "cw-webhook-secret"
    assert generic.auth.token.get_secret_value() == "g-token"
    assert generic.reply.headers["Authorization"].get_secret_value() == "Bearer g-api"


# What proves a webhook's sender, per adapter: with it empty (``${VAR:-}`` with VAR unset),
# a token matched an empty ``?token=`` and an HMAC was one anyone can compute.
GENERIC_REPLY = {"url": "https://d.example/{dialog_id}"}
EMPTY_SENDER_PROOFS = [
    ({"dryrun": {"auth": {"mode": "token", "token": ""}}}, "helpdesks.dryrun.auth.token"),
    ({"dryrun": {"auth": {"mode": "token", "token": "  "}}}, "helpdesks.dryrun.auth.token"),
    (
        {"g": {"kind": "generic", "auth": {"mode": "hmac", "secret": ""}, "reply": GENERIC_REPLY}},
        "helpdesks.g.auth.secret",
    ),
    (
        {"zendesk": {"subdomain": "acme", "oauth_token": "an-oauth-token", "webhook_secret": ""}},
        "helpdesks.zendesk.webhook_secret",
    ),
    (
        {"chatwoot": {"account_id": 1, "api_access_token": "a-token", "webhook_secret": ""}},
        "helpdesks.chatwoot.webhook_secret",
    ),
    (
        {"chatwoot": {"account_id": 1, "api_access_token": "a-token", "webhook_token": ""}},
        "helpdesks.chatwoot.webhook_token",
    ),
    (
        {"freshdesk": {"domain": "acme", "api_key": "a-key", "webhook_token": ""}},
        "helpdesks.freshdesk.webhook_token",
    ),
    (
        {
            "freshdesk": {
                "domain": "acme",
                "api_key": "a-key",
                "webhook_username": "csat",
                "webhook_password": "",
            }
        },
        "helpdesks.freshdesk.webhook_password",
    ),
]


@pytest.mark.parametrize(("helpdesks", "key"), EMPTY_SENDER_PROOFS)
def test_an_empty_webhook_token_or_signing_secret_is_refused_naming_its_key(helpdesks, key):
    with pytest.raises(ConfigError) as raised:
        load_config(None, env={}, overrides={"helpdesks": helpdesks})

    assert f"{key}: must not be empty" in raised.value.message, raised.value.message


@pytest.mark.parametrize("old", ["", "   ", "short-old"])
def test_a_retired_token_secret_is_held_to_the_current_ones_length(old):
    # An empty retired secret verified references anyone can sign: forged answers credited
    # to any agent. Every secret ever current had 16 characters at least.
    with pytest.raises(ConfigError) as raised:
        load_config(None, env={}, overrides={"token": {"previous_secrets": ["o" * 40, old]}})

    assert "token.previous_secrets.1: must be at least 16 characters" in raised.value.message


@pytest.mark.parametrize(
    "url", ["sqlite://var/csat.sqlite3", "sqlite://u:S3cret@host/x.db", "sqlite://host:5/x.db"]
)
def test_a_sqlite_url_with_two_slashes_is_refused_naming_the_key(url):
    # Taken by check-config, then every command that opened it ended in SQLAlchemy's
    # traceback ("Invalid SQLite URL").
    result = CliRunner().invoke(
        main, ["db", "current"], env={"CSAT_HOOK_CONFIG": None, "DATABASE_URL": url}
    )

    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "database.url: a SQLite URL is sqlite:/// and a path" in result.output
    assert "S3cret" not in result.output


def test_a_sqlite_url_option_the_driver_would_ignore_is_refused_naming_it(tmp_path):
    # ?mode=ro without uri=true: SQLAlchemy warned (a Python warning with its source line)
    # and opened the file read-write, the option dropped.
    url = f"sqlite:///{tmp_path / 'c.sqlite3'}?mode=ro"
    result = CliRunner().invoke(
        main, ["outbox"], env={"CSAT_HOOK_CONFIG": None, "DATABASE_URL": url}
    )

    assert result.exit_code == 2, result.output
    assert "database.url: SQLite ignores mode without uri=true" in result.output
    assert not (tmp_path / "c.sqlite3").exists()
    uri = f"sqlite:///file:{tmp_path / 'c.sqlite3'}?mode=rwc&uri=true"
    assert load_config(None, env={"DATABASE_URL": uri}).database.url == uri


def test_a_section_with_every_key_commented_out_runs_on_its_defaults(tmp_path):
    # YAML reads such a section as null: it was refused ("Input should be a valid dictionary
    # or instance of ServerConfig") while every key of it is optional.
    path = tmp_path / "c.yaml"
    path.write_text(
        "server:\n  # port: 8001\nsurvey:\n  links:\n    # style: scores\n"
        "alerts:\n  # rules: []\nhelpdesks:\n  dryrun:\n"
    )

    config = load_config(path, env={})

    assert config.server.port == 8000 and config.survey.links.style == "link"
    assert config.alerts.rules == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("server: [8000]\n", "server: must be a mapping of keys (key: value), not a list"),
        (
            "database: sqlite:///x.db\n",
            "database: must be a mapping of keys (key: value), not text",
        ),
        (
            "alerts:\n  rules: [low]\n",
            "alerts.rules.0: must be a mapping of keys (key: value), not text",
        ),
        ("survey:\n  reply:\n    templates: [a]\n", "survey.reply.templates: must be a mapping"),
    ],
)
def test_a_list_or_text_where_a_section_belongs_is_said_so_without_class_names(
    tmp_path, text, message
):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        load_config(path, env={})
    assert message in raised.value.message, raised.value.message
    assert "instance of" not in raised.value.message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "alerts:\n  destinations:\n    team: {webhook_url: 'https://x.example/'}\n",
            "alerts.destinations.team: kind is required (one of the kinds in config.example.yaml)",
        ),
        (
            "survey:\n  form:\n    rating_values: {five: x}\n",
            "survey.form.rating_values.five (the key): Input should be a valid integer",
        ),
    ],
)
def test_a_missing_kind_or_a_bad_key_is_said_in_the_files_words(tmp_path, text, message):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        load_config(path, env={})
    assert message in raised.value.message, raised.value.message


@pytest.mark.parametrize("where", ["loader", "command"])
def test_an_empty_config_variable_is_refused_not_taken_for_the_defaults(where):
    # `CSAT_HOOK_CONFIG=` in an env file, or `${CONFIG}` of an unset variable in a compose
    # file: the process ran on the built-in defaults (a SQLite file, the dry-run helpdesk)
    # beside the ones that read the real file, and a worker failed every reply.
    if where == "loader":
        with pytest.raises(ConfigError, match=r"the config file's path is empty"):
            load_config(None, env={"CSAT_HOOK_CONFIG": ""})
        return
    result = CliRunner().invoke(main, ["check-config"], env={"CSAT_HOOK_CONFIG": ""})
    assert result.exit_code == 2, result.output
    assert "the config file's path is empty (--config or CSAT_HOOK_CONFIG)" in result.output


def test_an_empty_config_path_is_named_as_such():
    # `-c "$CONFIG"` with CONFIG unset: "cannot read config file : Is a directory".
    result = CliRunner().invoke(main, ["-c", "", "check-config"], env={"CSAT_HOOK_CONFIG": None})

    assert result.exit_code == 2, result.output
    assert "the config file's path is empty" in result.output


GENERIC_URL = {"url": "https://d.example/{dialog_id}"}
HMAC = {"mode": "hmac", "secret": "s" * 20}


@pytest.mark.parametrize(
    ("helpdesks", "key"),
    [
        (
            {"dryrun": {"auth": {"mode": "token", "token": "t" * 20, "token_header": "X Tok"}}},
            "helpdesks.dryrun.auth.token_header",
        ),
        (
            {
                "g": {
                    "kind": "generic",
                    "auth": {**HMAC, "signature_header": "X-Sig:"},
                    "reply": GENERIC_URL,
                }
            },
            "helpdesks.g.auth.signature_header",
        ),
        (
            {
                "g": {
                    "kind": "generic",
                    "auth": {"mode": "none"},
                    "reply": {**GENERIC_URL, "idempotency_header": "Idem Key"},
                }
            },
            "helpdesks.g.reply.idempotency_header",
        ),
        (
            {
                "freshdesk": {
                    "domain": "acme",
                    "api_key": "a-key",
                    "webhook_token": "t" * 20,
                    "webhook_token_header": "X Token",
                }
            },
            "helpdesks.freshdesk.webhook_token_header",
        ),
    ],
)
def test_a_header_name_that_cannot_be_one_is_refused_naming_its_key(helpdesks, key):
    # A sender's header of that name never arrives (every webhook 401), and a request of
    # ours with it failed for good (InvalidHeader) at every reply.
    with pytest.raises(ConfigError) as raised:
        load_config(None, env={}, overrides={"helpdesks": helpdesks})
    assert f"{key}: " in raised.value.message and "is not a header name" in raised.value.message


@pytest.mark.parametrize("name", ["ПЕРЕМЕННАЯ", "CW_SECRÉT", "ＳＥＣＲＥＴ"])
def test_a_variable_name_outside_ascii_is_one_message_naming_the_key(tmp_path, name):
    """One message, naming the key and what a name may hold; no second one about the value
    left unexpanded (it was validated as written: "must be at least 16 characters")."""
    path = tmp_path / "c.yaml"
    path.write_text(f"token: {{secret: '${{{name}}}'}}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path, env={name: "x" * 40})
    lines = info.value.message.splitlines()[1:]
    assert len(lines) == 1, info.value.message
    assert lines[0].strip().startswith("token.secret: ")
    assert "ASCII letters, digits and underscore" in lines[0]


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("metrics:\n  timezone: ${GOOGLE_PRIVATE_KEY}\n", "metrics.timezone"),
        ("helpdesks:\n  d:\n    kind: ${DESK_API_TOKEN}\n", "helpdesks.d.kind"),
    ],
)
def test_a_secret_variable_in_the_wrong_key_is_not_quoted_by_its_error(tmp_path, text, key):
    # A variable with a secret's name put in a key whose check quotes the value ("unknown
    # time zone '...'"): check-config printed the secret, which it masks everywhere else.
    path = tmp_path / "c.yaml"
    path.write_text(text)
    secret = "Zk8s3cr3tT0kenValue9Q"

    with pytest.raises(ConfigError) as raised:
        load_config(path, env={"GOOGLE_PRIVATE_KEY": secret, "DESK_API_TOKEN": secret})

    said = raised.value.message
    assert f"{key}: " in said and "**********" in said, said
    assert secret not in said


def test_a_reference_that_fails_is_the_one_message_about_its_key(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("token: {secret: '${CSAT_UNSET_SECRET}'}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    lines = info.value.message.splitlines()[1:]
    assert [line.strip() for line in lines] == [
        "token.secret: environment variable CSAT_UNSET_SECRET is not set"
    ]


def test_the_alerts_example_writes_no_secret_and_its_defaults_are_the_fake_receivers():
    """examples/alerts.yaml takes each destination's secret from ${VAR}; the default it falls
    back to (for trying it against ``dev fake-notify``) is marked a development secret, said
    as such, not as a secret written in the file. The defaults are fake-notify's own, so the
    "Try it" of docs/alerts.md works with no variable set."""
    from csat_hook.cli.dev import fake_notify

    example = ROOT / "examples" / "alerts.yaml"
    env = {"CSAT_HOOK_CONFIG": None, "DATABASE_URL": None}
    result = CliRunner().invoke(main, ["-c", str(example), "check-config"], env=env)
    assert result.exit_code == 0, result.output
    assert "written in the configuration file" not in result.output

    config = load_config(example, env={})
    assert config.secrets_in_file == []
    defaults = {param.name: param.default for param in fake_notify.params}
    team = config.alerts.destinations
    slack = team["team-slack"].webhook_url.get_secret_value()  # type: ignore[union-attr]
    assert slack == f"http://127.0.0.1:{defaults['port']}{defaults['slack_path']}"
    telegram = team["team-telegram"]
    assert telegram.bot_token.get_secret_value() == defaults["telegram_token"]  # type: ignore[union-attr]
    assert telegram.chat_id == defaults["telegram_chat"]  # type: ignore[union-attr]
    crm = team["crm"]
    assert crm.secret.get_secret_value() == defaults["webhook_secret"]  # type: ignore[union-attr]
    assert crm.url.endswith(f"/hooks/{defaults['webhook_name']}")  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg2://csat:Pa55Wd-77@db.example.com/csat",
        "postgresql+asyncpg://csat:Pa55Wd-77@db.example.com/csat",
        "postgresql+pg8000://csat:Pa55Wd-77@db.example.com/csat",
        "postgres+nosuch://csat:Pa55Wd-77@db.example.com/csat",
        "postgres+psycopg://csat:Pa55Wd-77@db.example.com/csat",
        "sqlite+aiosqlite:///var/csat.sqlite3",
    ],
)
def test_a_database_driver_that_is_not_shipped_is_refused_naming_the_key(url):
    # Taken by check-config ("configuration OK"), then every command that opened it ended in
    # a traceback: ModuleNotFoundError (psycopg2), NoSuchModuleError (an unknown driver).
    result = CliRunner().invoke(
        main, ["db", "current"], env={"CSAT_HOOK_CONFIG": None, "DATABASE_URL": url}
    )

    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "database.url: " in result.output and "Traceback" not in result.output
    assert "Pa55" not in result.output


@pytest.mark.parametrize(
    "url",
    [
        "sqlite://",
        "sqlite:///",
        "sqlite:///:memory:",
        "sqlite:///file::memory:?uri=true",
        "sqlite:///file:csat?mode=memory&uri=true",
    ],
)
def test_an_in_memory_sqlite_database_is_refused_naming_the_key(url):
    # Taken by check-config; `serve` then answered health checks 200 and every webhook 503
    # (each pooled connection its own empty database, without the schema), and whatever one
    # connection stored was gone at exit.
    with pytest.raises(ConfigError, match=r"database\.url: .*in memory"):
        load_config(None, env={"DATABASE_URL": url})


@pytest.mark.parametrize("value", [".inf", "1e300", "31536000000"])
def test_max_retry_after_without_a_bound_is_refused_naming_the_key(tmp_path, value):
    # Taken: a vendor's Retry-After of 10^17 seconds (digits, so read) was then honoured as
    # asked, and now + that many seconds overflowed the date (OverflowError) where the
    # reply was being rescheduled.
    path = tmp_path / "c.yaml"
    path.write_text(f"delivery:\n  max_retry_after_seconds: {value}\n")

    with pytest.raises(ConfigError, match=r"delivery\.max_retry_after_seconds: "):
        load_config(path, env={})


def test_a_reference_in_a_default_is_resolved_not_taken_as_the_secret(tmp_path):
    # ${A:-${B}} (as a shell and docker compose read it) took the default's text as it was:
    # the secret became the literal "${CSAT_TOKEN_SECRET_FROM_VAULT}", long enough to pass,
    # written in the file for anyone to forge survey references with.
    path = tmp_path / "c.yaml"
    path.write_text("token: {secret: '${CSAT_TOKEN_SECRET:-${CSAT_TOKEN_SECRET_FROM_VAULT}}'}\n")

    config = load_config(path, env={"CSAT_TOKEN_SECRET_FROM_VAULT": "v" * 32})
    assert config.token.secret.get_secret_value() == "v" * 32
    assert config.secrets_in_file == []
    config = load_config(path, env={"CSAT_TOKEN_SECRET": "t" * 32})
    assert config.token.secret.get_secret_value() == "t" * 32
    with pytest.raises(
        ConfigError, match=r"token\.secret: environment variable CSAT_TOKEN_SECRET_FROM_VAULT is"
    ):
        load_config(path, env={})


def test_references_nested_without_end_are_refused_naming_the_key(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("token: {secret: '" + "${A:-" * 5000 + "x" + "}" * 5000 + "'}\n")

    with pytest.raises(ConfigError, match=r"token\.secret: \$\{\.\.\.\} references nested deeper"):
        load_config(path, env={})


@pytest.mark.parametrize("kind", ["chatwoot", "zendesk", "freshdesk", "intercom", "helpscout"])
@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "chat.example.com",
            "must start with https://",
        ),  # no scheme: every reply failed at delivery
        ("https://chat.example.com:99999", "port"),
        ("https://[::1", "IPv6"),  # check-config ended in a ValueError traceback
        ("https://chat.example.com/ S3CRET", "no spaces"),
        ("https://chat.example.com/api?token=S3CRET", "no query"),
        ("https://chat.example.com/#S3CRET", "no query"),
    ],
)
def test_a_vendor_base_url_that_is_no_api_address_is_refused_naming_the_key(kind, url, message):
    # Taken as written (Chatwoot's not checked at all, the others' first characters only):
    # each reply then failed at delivery, or went with the paths glued after a query.
    variable = f"{kind.upper()}_BASE_URL"
    with pytest.raises(ConfigError) as raised:
        load_config(EXAMPLE, env={variable: url})

    said = raised.value.message
    assert f"helpdesks.{kind}.base_url: " in said and message in said, said
    assert "S3CRET" not in said


@pytest.mark.parametrize("kind", ["zendesk", "freshdesk", "intercom", "helpscout"])
def test_credentials_in_the_base_url_of_a_helpdesk_using_authorization_are_refused(kind):
    # requests sends a URL's user:password as Basic auth over the Authorization header the
    # adapter set: the configured API token never left, every reply was refused (401).
    variable = f"{kind.upper()}_BASE_URL"
    with pytest.raises(ConfigError) as raised:
        load_config(EXAMPLE, env={variable: "https://proxy:S3CRET-pass@desk.example.com"})

    said = raised.value.message
    assert f"helpdesks.{kind}.base_url: no user:password@" in said, said
    assert "S3CRET" not in said and "proxy" not in said


def test_credentials_in_a_chatwoot_base_url_go_beside_its_token():
    # Chatwoot's token is its own header: a user:password for a proxy in front is kept.
    url = "https://proxy:pass@chat.example.com"
    config = load_config(EXAMPLE, env={"CHATWOOT_BASE_URL": url})
    assert config.helpdesks["chatwoot"].base_url == url


def test_a_vendor_base_url_with_a_path_and_a_trailing_newline_is_kept_cleanly():
    config = load_config(EXAMPLE, env={"CHATWOOT_BASE_URL": "https://desk.example.com/chat/\n"})
    assert config.helpdesks["chatwoot"].base_url == "https://desk.example.com/chat"


def test_a_generic_request_url_with_a_trailing_newline_is_sent_as_checked():
    # ${GENERIC_REPLY_URL} from a file or a Kubernetes secret ends with a newline: urlsplit
    # drops it for the check, requests sends it as /messages%0A (a 404: every reply failed).
    url = "https://desk.example.com/api/dialogs/{dialog_id}/messages"
    config = load_config(EXAMPLE, env={"GENERIC_REPLY_URL": f" {url}\n"})
    reply = config.helpdesks["generic"].reply

    assert reply.url == url
    assert rendered_parts(reply, {"dialog_id": "7"})[0] == url.format(dialog_id="7")


@pytest.mark.parametrize("key", ["sheets_base_url", "forms_base_url"])
@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://[::1", "IPv6"),  # check-config and sync ended in a ValueError traceback
        ("https://sheets.example.com:99999", "port"),
        ("https://sheets.example.com/v4?key=S3CRET", "no query"),
    ],
)
def test_a_google_base_url_that_is_no_api_address_is_refused_naming_the_key(key, url, message):
    with pytest.raises(ConfigError) as raised:
        load_config(None, env={}, overrides={"google": {key: url}})

    said = raised.value.message
    assert f"google.{key}: " in said and message in said, said
    assert "S3CRET" not in said


@pytest.mark.parametrize("folder", ["", "   "])
def test_a_blank_local_report_folder_is_refused_naming_the_key(folder):
    # `dir: ${REPORT_DIR:-}` with the variable unset: the report went into the folder the
    # process started in, without a word.
    with pytest.raises(ConfigError, match=r"output\.local\.dir: blank"):
        load_config(None, env={}, overrides={"output": {"local": {"dir": folder}}})


@pytest.mark.parametrize("name", REPORT_FILES)
def test_a_csv_export_that_is_a_file_of_the_local_report_is_refused(tmp_path, name):
    # results.csv.path at <output.local.dir>/answers.csv: the run said "ok" and wrote the
    # report's answers.csv over the export it had read (its references and unverified rows
    # gone), and the next run failed on the report's headers; alerts.csv, with the alerts
    # off, was removed after the read, and the run after waited for an export for ever.
    report = tmp_path / "report"
    overrides = {
        "results": {"source": "csv", "csv": {"path": str(report / name)}},
        "output": {"local": {"dir": str(report)}},
    }
    with pytest.raises(ConfigError) as raised:
        load_config(None, env={}, overrides=overrides)
    said = raised.value.message
    assert f"results.csv.path: {str(report / name)!r} is the report's own {name}" in said, said

    # Through a symbolic link to it, or the folder's: the same file.
    report.mkdir()
    (report / name).write_text("Timestamp\n")
    (tmp_path / "export.csv").symlink_to(report / name)
    (tmp_path / "linked").symlink_to(report)
    for path in (tmp_path / "export.csv", tmp_path / "linked" / name):
        overrides["results"]["csv"]["path"] = str(path)
        with pytest.raises(ConfigError, match=f"the report's own {re.escape(name)}"):
            load_config(None, env={}, overrides=overrides)
    # A hard link is the same file under another name.
    os.link(report / name, tmp_path / "hard.csv")
    overrides["results"]["csv"]["path"] = str(tmp_path / "hard.csv")
    with pytest.raises(ConfigError, match=f"the report's own {re.escape(name)}"):
        load_config(None, env={}, overrides=overrides)


def test_a_csv_export_beside_the_local_report_or_with_it_off_is_accepted(tmp_path):
    report = tmp_path / "report"
    for results, local in [
        ({"csv": {"path": str(report / "form-responses.csv")}}, {"dir": str(report)}),
        ({"csv": {"path": str(tmp_path / "answers.csv")}}, {"dir": str(report)}),
        ({"csv": {"path": str(report / "answers.csv")}}, {"dir": str(report), "enabled": False}),
    ]:
        config = load_config(
            None, env={}, overrides={"results": results, "output": {"local": local}}
        )
        assert config.results.csv.path == results["csv"]["path"]


def test_the_report_files_the_configuration_knows_are_those_the_local_output_writes():
    assert (REPORT_XLSX, *REPORT_CSVS) == REPORT_FILES
    assert REPORT_XLSX.endswith(".xlsx") and all(n.endswith(".csv") for n in REPORT_CSVS)
    assert {UNVERIFIED_CSV, ALERTS_CSV} <= set(REPORT_CSVS)  # the report's own names


def test_a_path_from_a_variable_is_read_without_the_line_break_around_it(tmp_path):
    # ${REPORT_DIR} from a file or a Kubernetes secret ends with a newline: the report went
    # into a new folder "var/csat-report\n" beside the one the team looked in, silently, and
    # the CSV export was looked for as "form.csv\n", which never exists.
    path = tmp_path / "c.yaml"
    path.write_text(
        "output: {local: {dir: '${REPORT_DIR}'}}\n"
        "results: {csv: {path: '${CSV_PATH}'}}\n"
        "helpdesks: {g: {kind: generic, auth: {mode: none}, capture_dir: '${CAPTURES}',"
        " reply: {url: 'https://desk.example.com/{dialog_id}'}}}\n"
    )
    env = {"REPORT_DIR": "var/reports\n", "CSV_PATH": " var/form.csv\n", "CAPTURES": "var/c\r\n"}
    config = load_config(path, env=env)
    path.write_text("google: {service_account_file: '${SA_FILE}'}\n")
    google = load_config(path, env={"SA_FILE": "/run/secrets/sa.json\n"}).google

    assert config.output.local.dir == "var/reports"
    assert config.results.csv.path == "var/form.csv"
    assert config.helpdesks["g"].capture_dir == "var/c"
    assert google.service_account_file == "/run/secrets/sa.json"


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"output": {"local": {"dir": "~/csat-report"}}}, "output.local.dir"),
        ({"output": {"local": {"dir": "$HOME/csat-report"}}}, "output.local.dir"),
        ({"results": {"csv": {"path": "~/exports/form.csv"}}}, "results.csv.path"),
        # Read at each sync: "cannot read ~/keys/sa.json", check-config having said it was OK.
        ({"google": {"service_account_file": "~/keys/sa.json"}}, "google.service_account_file"),
        (
            {"helpdesks": {"g": {"kind": "generic", "capture_dir": "~/captures"}}},
            "helpdesks.g.capture_dir",
        ),
    ],
)
def test_a_path_nothing_would_expand_is_refused_naming_the_key(overrides, key):
    # `dir: ~/csat-report` made a folder named "~" where the process started and wrote the
    # report there; a CSV export at `~/exports/...` was waited for there for ever.
    if "helpdesks" in overrides:
        overrides["helpdesks"]["g"].update(
            {"auth": {"mode": "none"}, "reply": {"url": "https://desk.example.com/d/{dialog_id}"}}
        )
    with pytest.raises(ConfigError) as raised:
        load_config(None, env={}, overrides=overrides)
    assert f"{key}: " in raised.value.message
    assert "are not expanded in a path" in raised.value.message


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"output": {"local": {"dir": "var/rep\x00orts"}}}, "output.local.dir"),
        ({"results": {"csv": {"path": "var/form\x00.csv"}}}, "results.csv.path"),
        ({"google": {"service_account_file": "sa\x00.json"}}, "google.service_account_file"),
        ({"database": {"url": "sqlite:///var/csat\x00.sqlite3"}}, "database.url"),
        (
            {"helpdesks": {"g": {"kind": "generic", "capture_dir": "var/cap\x00tures"}}},
            "helpdesks.g.capture_dir",
        ),
        ({"helpdesks": {"dryrun": {"output": "var/replies\x00.jsonl"}}}, "helpdesks.dryrun.output"),
    ],
)
def test_a_path_with_a_nul_is_refused_naming_the_key(overrides, key):
    # No file system takes a NUL in a name: `dir: "var/rep\0orts"` was refused as
    # "embedded null byte" naming nothing, and such a database.url passed check-config and
    # broke `db upgrade` with a traceback.
    if "g" in overrides.get("helpdesks", {}):
        overrides["helpdesks"]["g"].update(
            {"auth": {"mode": "none"}, "reply": {"url": "https://desk.example.com/d/{dialog_id}"}}
        )
    with pytest.raises(ConfigError) as raised:
        load_config(None, env={}, overrides=overrides)
    assert f"{key}: " in raised.value.message
    assert "NUL" in raised.value.message
    assert "embedded null byte" not in raised.value.message


@pytest.mark.parametrize("written", ["012", "0x1F", "0b11", "-017", "0_12"])
def test_an_id_written_in_another_base_is_refused_naming_the_line(tmp_path, written):
    # YAML 1.1 reads 012 as 10 and 0x1F as 31: the agent directory's id became "10", which
    # no webhook's agent "012" ever matched; the name was never shown, without a word.
    path = tmp_path / "c.yaml"
    path.write_text(f"helpdesks:\n  dryrun:\n    agents:\n      {written}: {{name: Anna}}\n")

    with pytest.raises(ConfigError, match=r"line 4, column 7: .*leading 0 \(octal\), 0x or 0b"):
        load_config(path, env={})
    path.write_text(f"helpdesks:\n  dryrun:\n    agents:\n      '{written}': {{name: Anna}}\n")
    assert list(load_config(path, env={}).helpdesks["dryrun"].agents) == [written]


def test_decimal_numbers_with_underscores_and_zero_still_load(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(
        "server: {port: 8_080, max_body_bytes: 1048576}\npolicy: {send_delay_seconds: 0}\n"
    )
    config = load_config(path, env={})
    assert (config.server.port, config.policy.send_delay_seconds) == (8080, 0)


@pytest.mark.parametrize("option", ["timeout=abc", "check_same_thread=maybe", "detect_types=x"])
def test_a_sqlite_url_option_the_driver_cannot_read_is_refused_naming_the_key(tmp_path, option):
    # Taken by check-config; every command then ended in the driver's ValueError traceback.
    url = f"sqlite:///{tmp_path / 'c.sqlite3'}?{option}"
    result = CliRunner().invoke(
        main, ["outbox"], env={"CSAT_HOOK_CONFIG": None, "DATABASE_URL": url}
    )

    assert result.exit_code == 2, result.output
    assert "database.url: a SQLite URL option has a value the driver cannot read" in result.output


@pytest.mark.parametrize(
    ("key", "shown", "hint"),
    [
        ("port ", "server.port : ", "it starts or ends with a space"),
        ("p\u200bort", "server.p\\u200bort: ", "U+200B ZERO WIDTH SPACE"),
        ("\u0440ort", "server.\u0440ort: ", "U+0440 CYRILLIC SMALL LETTER ER"),
    ],
)
def test_an_unknown_key_that_looks_right_says_what_hides_in_it(tmp_path, key, shown, hint):
    # Said as "server.port: unknown key (check the spelling...)": the spelling looked right.
    path = tmp_path / "c.yaml"
    path.write_text(f'server:\n  "{key}": 8080\n', encoding="utf-8")

    with pytest.raises(ConfigError) as raised:
        load_config(path, env={})
    said = raised.value.message
    assert shown + "unknown key (" in said and hint in said, said


@pytest.mark.parametrize(
    ("url", "message"),
    [
        # check-config ended in urlsplit's ValueError traceback: the template was let through.
        ("https://[::1/{dialog_id}", "is not a URL"),
        ("https://api.example.com:99999/{dialog_id}", "the port must be a number up to 65535"),
        ("https://api.example.com:80a/{dialog_id}", "the port must be a number up to 65535"),
    ],
)
def test_a_generic_request_url_no_request_can_go_to_is_refused_naming_the_key(url, message):
    options = {
        "kind": "generic",
        "auth": {"mode": "token", "token": "t" * 24},
        "reply": {"url": url},
    }
    with pytest.raises(ConfigError) as raised:
        load_config(None, env={}, overrides={"helpdesks": {"g": options}})

    assert f"helpdesks.g.reply.url: {message}" in raised.value.message, raised.value.message


@pytest.mark.parametrize("text", ["${API_TOKEN:-}", "''"])
def test_an_empty_api_token_is_the_api_off(tmp_path, text):
    # ${API_TOKEN:-}: the API on where the variable is set, off where it is not. It was
    # refused as "must be at least 16 characters", with no way to say "off" but editing the file.
    path = tmp_path / "c.yaml"
    path.write_text(f"server:\n  api_token: {text}\n")

    assert load_config(path, env={}).server.api_token is None


def test_a_short_api_token_from_the_environment_is_refused(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("server:\n  api_token: ${API_TOKEN:-}\n")

    # Named with the variable: the file holds ${API_TOKEN}, the value is in the environment.
    with pytest.raises(ConfigError) as raised:
        load_config(path, env={"API_TOKEN": "too-short"})
    assert raised.value.message.endswith(
        "server.api_token: must be at least 16 characters (expanded from $API_TOKEN)"
    )
    assert "too-short" not in raised.value.message
    token = load_config(path, env={"API_TOKEN": "operator-token-0123456789"}).server.api_token
    assert token is not None and token.get_secret_value() == "operator-token-0123456789"


def test_a_zone_is_known_on_a_system_without_a_zone_database(tmp_path):
    # Slim containers and Windows have no /usr/share/zoneinfo: zoneinfo falls back to the
    # tzdata package (a dependency), else even "UTC" was "unknown time zone 'UTC'".
    script = (
        "from csat_hook.settings import check_timezone\n"
        "print(check_timezone('UTC'), check_timezone('Europe/Moscow'))\n"
    )
    env = {**os.environ, "PYTHONTZPATH": str(tmp_path)}  # a folder with no zone in it
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=False
    )
    assert done.stdout == "UTC Europe/Moscow\n", done.stderr


def test_check_config_warns_of_a_public_base_url_in_plain_http_and_still_loads(tmp_path):
    """Risky but allowed (a TLS proxy may be added later, a trial runs without one): said
    on every check-config and serve, as for every URL in plain http:// (config_warnings)."""
    path = tmp_path / "http.yaml"
    path.write_text("survey:\n  links:\n    public_base_url: http://csat.example.com\n")

    result = CliRunner().invoke(main, ["-c", str(path), "check-config"])

    assert result.exit_code == 0, result.output
    assert (
        "warning: survey.links.public_base_url: plain http:// to csat.example.com" in result.stderr
    )
    assert "use https://" in result.stderr


PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy")


@pytest.mark.parametrize(
    ("variable", "value", "pysocks", "warned"),
    [
        ("HTTPS_PROXY", "socks5h://proxy.example:1080", False, True),
        ("all_proxy", "SOCKS5://proxy.example:1080", False, True),
        ("HTTPS_PROXY", "socks5h://proxy.example:1080", True, False),
        ("HTTPS_PROXY", "http://proxy.example:3128", False, False),
    ],
)
def test_a_socks_proxy_without_pysocks_is_warned_about(
    monkeypatch, variable, value, pysocks, warned
):
    """Every request through a SOCKS proxy fails (not sent) when PySocks, a dependency
    (requests[socks]), is missing from the install: check-config names the variable."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setenv(variable, value)
    if not pysocks:
        monkeypatch.setitem(sys.modules, "socks", None)  # what an import finds: not installed
    config = load_config(None, env={})
    said = [w for w in config_warnings(config) if "PySocks" in w]
    assert bool(said) is warned, said
    if warned:
        assert said[0].startswith(f"{variable} is a SOCKS proxy") and "requests[socks]" in said[0]


GSHEETS = {"spreadsheet_id": "s1", "sheet_name": "Form Responses 1"}
FORMS = {"form_id": "f1", "question_ids": {"rating": "a1", "token": "b2"}}


@pytest.mark.parametrize(
    ("overrides", "warned"),
    [
        ({}, None),  # the default: a CSV export, local files
        ({"results": {"source": "gsheets", "gsheets": GSHEETS}}, "results.source gsheets"),
        ({"results": {"source": "forms_api", "forms_api": FORMS}}, "results.source forms_api"),
        ({"output": {"gsheets": {"enabled": True, "spreadsheet_id": "s1"}}}, "output.gsheets"),
        (
            {
                "results": {"source": "gsheets", "gsheets": GSHEETS},
                "google": {"service_account_file": "/etc/csat-hook/sa.json"},
            },
            None,
        ),
    ],
)
def test_a_sync_that_calls_google_without_a_service_account_is_warned_about(overrides, warned):
    """check-config said "configuration OK" (and serve started) for a Sheets or Forms API
    source, or the Sheets report, with no service-account key (the example's
    ``${GOOGLE_SERVICE_ACCOUNT_JSON:-}`` with the variable unset): every sync then failed."""
    config = load_config(None, env={}, overrides=overrides)
    said = [w for w in config_warnings(config) if "google.service_account_file" in w]
    if warned is None:
        assert said == []
    else:
        assert len(said) == 1 and said[0].startswith(warned), said
        assert "google.service_account_json" in said[0] and "every sync fails" in said[0]
    result = CliRunner().invoke(main, ["check-config"], env={"CSAT_HOOK_CONFIG": None})
    assert "google.service_account_file nor" not in result.output  # the defaults need none


def test_a_config_file_that_cannot_be_read_names_csat_hook_config_when_it_gave_the_path(tmp_path):
    # The Procfile's web: (csat_hook.wsgi) reads $CSAT_HOOK_CONFIG itself: a typo in it said
    # "cannot read config file …", naming no variable.
    missing = tmp_path / "csat-hook.yml"
    with pytest.raises(ConfigError) as from_env:
        load_config(env={"CSAT_HOOK_CONFIG": str(missing)})
    assert from_env.value.message == (
        f"cannot read config file {missing}: No such file or directory (the path given by "
        "$CSAT_HOOK_CONFIG, the environment variable)"
    )
    with pytest.raises(ConfigError) as given:
        load_config(str(missing), env={"CSAT_HOOK_CONFIG": str(missing)})
    assert "CSAT_HOOK_CONFIG" not in given.value.message


@pytest.mark.parametrize(
    ("links", "templates", "warned"),
    [
        # The form's own link: the character lands in its last pre-filled value.
        ({}, {"en": "Rate us: {link}.", "ru": "Оцените ({link})"}, [("en", "."), ("ru", ")")]),
        ({}, {"en": "Rate us: «{link}»"}, [("en", "»")]),
        ({}, {"en": "Rate us: {link}{ticket}"}, [("en", "{ticket}")]),
        # A space, a line break or the end after it: nothing to say.
        ({}, {"en": "Rate us: {link} .", "ru": "Оцените:\n{link}\n"}, []),
        ({}, {"en": "Literal {{link}}. Rate us: {link}"}, []),
        # Short links drop the punctuation no reference ends with; not a reference's own.
        ({"public_base_url": "https://csat.example.com"}, {"en": "Rate us: {link}."}, []),
        ({"public_base_url": "https://csat.example.com"}, {"en": "({link})"}, []),
        ({"public_base_url": "https://csat.example.com"}, {"en": "Rate: {link}-"}, [("en", "-")]),
    ],
)
def test_a_template_with_punctuation_glued_to_the_link_is_warned_about(links, templates, warned):
    """ "Rate us: {link}." or "({link})": many chat apps take the "." or ")" into the link, and
    the form's pre-filled reference then ends with it (the answer comes in unverified)."""
    config = load_config(
        None,
        env={},
        overrides={
            "survey": {
                "links": links,
                "reply": {"templates": templates, "templates_without_agent": {}},
            }
        },
    )
    said = [w for w in config_warnings(config) if "right after {link}" in w]
    assert [
        (w.split(":")[0].removeprefix("survey.reply.templates."), w.split("'")[1]) for w in said
    ] == warned, said
    for warning in said:
        assert "put a space or a line break after {link}" in warning
        assert ("unverified" in warning) is not bool(links)


def test_check_config_names_the_nameless_template_with_punctuation_glued_to_the_link(tmp_path):
    path = tmp_path / "glued.yaml"
    path.write_text(
        'survey:\n  reply:\n    templates_without_agent:\n      en: "How did we do? ({link})"\n'
    )

    result = CliRunner().invoke(main, ["-c", str(path), "check-config"])

    assert result.exit_code == 0, result.output
    assert (
        "warning: survey.reply.templates_without_agent.en: ')' right after {link}: chat apps "
        "that take it into the link add it to the form link's last pre-filled value"
    ) in result.stderr
