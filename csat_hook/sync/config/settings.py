"""What the sync reads of the whole configuration."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from csat_hook.alerts.config import AlertsConfig
from csat_hook.db.config import DatabaseConfig
from csat_hook.helpdesks.base import HelpdeskOptions
from csat_hook.links import SurveyConfig
from csat_hook.sync.config.google import GoogleConfig
from csat_hook.sync.config.metrics import MetricsConfig
from csat_hook.sync.config.output import OutputConfig
from csat_hook.sync.config.results import ResultsConfig
from csat_hook.sync.config.schedule import SyncConfig
from csat_hook.tokens import TokenConfig


class SyncSettings(Protocol):
    """What the sync reads of the whole configuration (:class:`csat_hook.config.Config` is
    one): its own sections, plus the database, the token secrets, the helpdesks' static
    agent maps and ticket URL templates, the alert rules it runs after the ingest, and the
    short links' settings (the funnel: ``survey.links``)."""

    @property
    def google(self) -> GoogleConfig: ...
    @property
    def results(self) -> ResultsConfig: ...
    @property
    def metrics(self) -> MetricsConfig: ...
    @property
    def output(self) -> OutputConfig: ...
    @property
    def sync(self) -> SyncConfig: ...
    @property
    def database(self) -> DatabaseConfig: ...
    @property
    def token(self) -> TokenConfig: ...
    @property
    def helpdesks(self) -> Mapping[str, HelpdeskOptions]: ...
    @property
    def alerts(self) -> AlertsConfig: ...
    @property
    def survey(self) -> SurveyConfig: ...
