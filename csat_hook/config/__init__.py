"""Configuration: one YAML file, secrets from the environment, validated once at start-up.

Flow: built-in defaults → the YAML file (``--config`` or ``$CSAT_HOOK_CONFIG``) → ``${VAR}``
references inside it resolved from the environment → ``$DATABASE_URL`` overriding
``database.url``. Nothing reads ``os.environ`` after :func:`load_config` returns.

This package only composes: each section's model lives with the code that uses it (the table
in the README says where). ``model`` (the whole :class:`Config`), ``yamlfile`` (the file: UTF-8
YAML, bounded, each key once), ``loading`` (``${VAR}`` references, errors that name the key),
``checks`` (what ``check-config`` prints: the masked dump and the warnings).
"""

from __future__ import annotations

from csat_hook.config.checks import config_warnings
from csat_hook.config.checks import insecure_settings
from csat_hook.config.checks import log_config_warnings
from csat_hook.config.checks import mask_url
from csat_hook.config.checks import masked_dump
from csat_hook.config.loading import load_config
from csat_hook.config.model import ENV_CONFIG_PATH
from csat_hook.config.model import INSECURE_MARKER
from csat_hook.config.model import Config

__all__ = [
    "ENV_CONFIG_PATH",
    "INSECURE_MARKER",
    "Config",
    "config_warnings",
    "insecure_settings",
    "load_config",
    "log_config_warnings",
    "mask_url",
    "masked_dump",
]
