"""The whole configuration (:class:`Config`): the sections the flows own, composed.

Each section's model lives with the code that uses it (the table in the README says where);
this model only puts them together and checks what spans sections.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field
from pydantic import model_validator

from csat_hook.alerts.config import AlertsConfig
from csat_hook.db.config import DatabaseConfig
from csat_hook.intake.config import PolicyConfig
from csat_hook.intake.config import ServerConfig
from csat_hook.links import SurveyConfig
from csat_hook.logs import LoggingConfig
from csat_hook.outbox.config import DeliveryConfig
from csat_hook.settings import StrictModel
from csat_hook.sync.config import GoogleConfig
from csat_hook.sync.config import MetricsConfig
from csat_hook.sync.config import OutputConfig
from csat_hook.sync.config import ResultsConfig
from csat_hook.sync.config import SyncConfig
from csat_hook.sync.config import check_sync_sections
from csat_hook.sync.report.alerts import alerts_tab_clash
from csat_hook.tokens import TokenConfig

ENV_CONFIG_PATH = "CSAT_HOOK_CONFIG"
# Values that ship as defaults so a fresh checkout runs; `check-config` flags them.
INSECURE_MARKER = "insecure"


class Config(StrictModel):
    """The whole configuration. ``helpdesks`` maps an instance name to its adapter options."""

    server: ServerConfig = Field(default_factory=ServerConfig)
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    token: TokenConfig = Field(default_factory=TokenConfig)
    survey: SurveyConfig = Field(default_factory=SurveyConfig)
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    delivery: DeliveryConfig = Field(default_factory=DeliveryConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    helpdesks: dict[str, Any] = Field(default_factory=lambda: {"dryrun": {"kind": "dryrun"}})
    google: GoogleConfig = Field(default_factory=GoogleConfig)
    results: ResultsConfig = Field(default_factory=ResultsConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)
    sync: SyncConfig = Field(default_factory=SyncConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)

    source: str = Field(default="<built-in defaults>", exclude=True)
    # Secrets written in the file rather than taken from the environment (check-config warns).
    secrets_in_file: list[str] = Field(default_factory=list, exclude=True)
    # The values of the environment variables with a secret's name (SECRET_VARIABLE) that the
    # file took, wherever it put them (a URL's query, a generic helpdesk's body): masked in
    # what check-config shows (masked_dump). Never shown themselves.
    secrets_from_env: list[str] = Field(default_factory=list, exclude=True, repr=False)

    @model_validator(mode="after")
    def _sync_sections(self) -> Config:
        check_sync_sections(self.results, self.metrics, self.output)
        links, metrics = self.survey.links, self.metrics
        # The score links' scale when they are shown or it is set: its built-in 1–5 refused
        # a three-point metrics scale with short links off, naming a key nobody wrote.
        shown = links.style == "scores" or {"scale_min", "scale_max"} & links.model_fields_set
        if shown and (links.scale_min < metrics.scale_min or links.scale_max > metrics.scale_max):
            raise ValueError(
                f"survey.links: the scale {links.scale_min}–{links.scale_max} must lie within "
                f"metrics.scale_min–scale_max ({metrics.scale_min}–{metrics.scale_max})"
            )
        _check_alerts_tab(self.alerts, self.output)
        return self


def _check_alerts_tab(alerts: AlertsConfig, output: OutputConfig) -> None:
    """The Alerts tab's title differs from the report's other tabs' (in either language), as
    the outputs write them: the report's own tabs are titled in order, the Alerts tab last,
    so it became "Summary 2" while its "Handled" column was read back from the tab of the
    configured title, the other one; every edit the team made was overwritten, silently."""
    if alerts.tab is None or not alerts.active:
        return
    clash = alerts_tab_clash(alerts.tab, output)
    if clash is not None:
        raise ValueError(
            f"alerts.tab: {alerts.tab!r} is the title of the report's tab {clash!r}; the "
            'alerts would go to another tab and the team\'s "Handled" column there would '
            "never be read back: give the Alerts tab a title of its own"
        )
