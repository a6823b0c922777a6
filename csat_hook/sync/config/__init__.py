"""The sync's configuration sections: ``google``, ``results``, ``metrics``, ``output``, ``sync``.

One module per section (:mod:`.google`, :mod:`.results`, :mod:`.metrics`, :mod:`.output`,
:mod:`.schedule` for ``sync``); what the sync reads of the whole configuration is
:class:`SyncSettings` (:mod:`.settings`). Checks that span these sections are in
:func:`check_sync_sections` (:mod:`.checks`; each message starts with the key it is about);
:mod:`csat_hook.config` runs it on the whole configuration. Every name is re-exported here.
"""

from csat_hook.sync.config.checks import check_sync_sections
from csat_hook.sync.config.google import GOOGLE_FORMS_BASE_URL
from csat_hook.sync.config.google import GOOGLE_SHEETS_BASE_URL
from csat_hook.sync.config.google import QUOTA_WINDOW_SECONDS
from csat_hook.sync.config.google import GoogleConfig
from csat_hook.sync.config.metrics import MetricsConfig
from csat_hook.sync.config.metrics import PeriodsConfig
from csat_hook.sync.config.output import LocalOutputConfig
from csat_hook.sync.config.output import OutputConfig
from csat_hook.sync.config.output import SheetsOutputConfig
from csat_hook.sync.config.results import NPS_MAX
from csat_hook.sync.config.results import NPS_MIN
from csat_hook.sync.config.results import RESULT_ROLES
from csat_hook.sync.config.results import ColumnsConfig
from csat_hook.sync.config.results import CsvResultsConfig
from csat_hook.sync.config.results import FormsApiResultsConfig
from csat_hook.sync.config.results import GSheetsResultsConfig
from csat_hook.sync.config.results import ResultsConfig
from csat_hook.sync.config.results import comparable_text
from csat_hook.sync.config.schedule import SyncConfig
from csat_hook.sync.config.settings import SyncSettings

__all__ = [
    "GOOGLE_FORMS_BASE_URL",
    "GOOGLE_SHEETS_BASE_URL",
    "NPS_MAX",
    "NPS_MIN",
    "QUOTA_WINDOW_SECONDS",
    "RESULT_ROLES",
    "ColumnsConfig",
    "CsvResultsConfig",
    "FormsApiResultsConfig",
    "GSheetsResultsConfig",
    "GoogleConfig",
    "LocalOutputConfig",
    "MetricsConfig",
    "OutputConfig",
    "PeriodsConfig",
    "ResultsConfig",
    "SheetsOutputConfig",
    "SyncConfig",
    "SyncSettings",
    "check_sync_sections",
    "comparable_text",
]
