"""Survey links and reply texts (the ``survey`` section).

* :mod:`.form`: the form (``survey.form``) and the pre-filled link, with or without a score;
* :mod:`.reply`: reply templates per language (``survey.reply``) and their rendering;
* :mod:`.body`: a reply as pieces (text, a link, the scale) for each vendor's markup;
* :mod:`.short`: short links and score links (``survey.links``);
* :mod:`.prefilled`: reading a link copied from the Forms "Get pre-filled link" screen.
"""

from __future__ import annotations

from pydantic import Field
from pydantic import model_validator

from csat_hook.links.body import Body
from csat_hook.links.body import Choice
from csat_hook.links.body import Segment
from csat_hook.links.body import plain_text
from csat_hook.links.form import LINK_ROLES
from csat_hook.links.form import FormConfig
from csat_hook.links.form import LinkValues
from csat_hook.links.form import build_link
from csat_hook.links.form import with_rating
from csat_hook.links.prefilled import PrefilledLink
from csat_hook.links.prefilled import decode_link
from csat_hook.links.prefilled import parse_prefilled_link
from csat_hook.links.reply import REPLY_PLACEHOLDERS
from csat_hook.links.reply import ReplyConfig
from csat_hook.links.reply import agent_label
from csat_hook.links.reply import pick_language
from csat_hook.links.reply import pick_template
from csat_hook.links.reply import readable_agent_name
from csat_hook.links.reply import reply_body
from csat_hook.links.reply import reply_text
from csat_hook.links.short import LinksConfig
from csat_hook.links.short import short_url
from csat_hook.links.short import survey_segment
from csat_hook.settings import StrictModel


class SurveyConfig(StrictModel):
    form: FormConfig = Field(default_factory=FormConfig)
    reply: ReplyConfig = Field(default_factory=ReplyConfig)
    links: LinksConfig = Field(default_factory=LinksConfig)

    @model_validator(mode="after")
    def _scores_need_rating(self) -> SurveyConfig:
        if self.links.style == "scores" and not self.form.prefills_rating:
            raise ValueError(
                "links.style: scores needs the form's rating question: form.fields.rating "
                "(its entry.<N>), or {rating} in form.url_template"
            )
        return self


__all__ = [
    "LINK_ROLES",
    "REPLY_PLACEHOLDERS",
    "Body",
    "Choice",
    "FormConfig",
    "LinkValues",
    "LinksConfig",
    "PrefilledLink",
    "ReplyConfig",
    "Segment",
    "SurveyConfig",
    "agent_label",
    "build_link",
    "decode_link",
    "parse_prefilled_link",
    "pick_language",
    "pick_template",
    "plain_text",
    "readable_agent_name",
    "reply_body",
    "reply_text",
    "short_url",
    "survey_segment",
    "with_rating",
]
