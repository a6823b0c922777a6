"""The report's words in English and Russian: headers, period names, notes, number patterns.

Number and date *patterns* are written in en_US syntax (``0.0%``, ``yyyy-mm-dd``); Google
Sheets, Excel and LibreOffice render them in the reader's locale (``85,3%`` in Russian). What
the report formats as text itself (period names, notes) is formatted here, in the report's
language, with CLDR's Russian plural forms (1 день, 2 дня, 5 дней, 21 день).
"""

from __future__ import annotations

from datetime import date
from datetime import datetime

from csat_hook.sync.periods import ALL_TIME
from csat_hook.sync.periods import LAST_DAYS
from csat_hook.sync.periods import MONTH
from csat_hook.sync.periods import PREVIOUS_DAYS
from csat_hook.sync.periods import WEEK
from csat_hook.sync.periods import Period

LANGUAGES = ("en", "ru")

_EN = {
    "summary": "Summary",
    "trends": "Trends",
    "responses": "Responses",
    "unverified": "Unverified",
    "title": "CSAT report — {period} ({first} – {last})",
    "target": "Target CSAT",
    "latest": "Latest answer",
    "no_answers": "no answers yet",
    "rank": "Rank",
    "agent": "Agent",
    "team": "Team",
    "no_team": "No team",
    "all_agents": "All agents",
    "no_agent": "No agent recorded",
    "answers": "Answers",
    "csat": "CSAT",
    "low": "95% low",
    "high": "95% high",
    "adjusted": "Adjusted CSAT",
    "previous_csat": "CSAT, {period}",
    "change": "Change",
    "mark": "Sig.",
    "response_rate": "Response rate",
    "sent": "Surveys sent",
    "opened": "Opened",
    "open_rate": "Open rate",
    "answered_sent": "Answered",
    "mean": "Mean rating",
    "nps": "NPS",
    "nps_answers": "NPS answers",
    "nps_low": "NPS 95% low",
    "nps_high": "NPS 95% high",
    "not_enough": "not enough answers",
    "by_period": "By period",
    "period": "Period",
    "from": "From",
    "to": "To",
    "level": "Level",
    "name": "Name",
    "agent_key": "Agent ID",
    "helpdesk": "Helpdesk",
    "overall": "Overall",
    "chart_agents": "CSAT by agent, {period} (95% interval)",
    "chart_trend": "Team CSAT by week (95% interval)",
    "team_by_week": "Team CSAT by week",
    "team_by_month": "Team CSAT by month",
    "csat_by_week": "CSAT by week",
    "answers_by_week": "Answers by week",
    "csat_by_month": "CSAT by month",
    "answers_by_month": "Answers by month",
    "week": "Week starting",
    "month": "Month",
    "granularity": "Granularity",
    "weekly": "week",
    "monthly": "month",
    "submitted": "Submitted ({tz})",
    "channel": "Channel",
    "ticket": "Ticket",
    "ticket_link": "Ticket link",
    "rating": "Rating",
    "nps_score": "NPS answer (0–10)",
    "comment": "Comment",
    "reason": "Reason",
    "field_agent": "Agent field (not verified)",
    "field_ticket": "Ticket field (not verified)",
    "source_row": "Source row",
    "unverified_note": (
        "Not counted for anyone: the reference of these answers is missing, malformed or "
        "forged. The agent and ticket fields are what the form held; anyone can type them."
    ),
    "note_rank": (
        "Rank: by adjusted CSAT (empirical Bayes: an agent with few answers is pulled toward "
        "the team rate); 2= is a shared place. Agents with fewer than {min_n} answers are "
        "shown, not ranked."
    ),
    "note_rank_raw": (
        "Rank: by CSAT (too few agents or answers to estimate the team's spread, so no "
        "adjusted CSAT); 2= is a shared place. Agents with fewer than {min_n} answers are "
        "shown, not ranked."
    ),
    "note_prior": (
        "Adjusted CSAT = (satisfied + {weight} × {mean}) / (answers + {weight}): the team "
        "rate {mean} and a weight of {weight} {answers_word}, fitted to {agents} agents."
    ),
    "note_pooled": (
        "Adjusted CSAT: the agents differ no more than chance would make them, so everyone "
        "is shown at the team rate {mean}."
    ),
    "note_interval": "95% interval: Wilson score interval of CSAT.",
    "note_change": (
        "Change: CSAT against the {previous}; ▲/▼ only when it is statistically significant "
        "(5%, Newcombe's interval for a difference of proportions) with at least {min_n} "
        "answers in both periods."
    ),
    "note_nps": (
        "NPS = % promoters (9–10) − % detractors (0–6) of the 0–10 question; 95% interval: "
        "adjusted Wald (Rocks 2016)."
    ),
    "note_funnel": (
        "Funnel, on the surveys sent in the period: sent → opened (a person opened the survey "
        "link; link scanners and previews are not counted) → answered."
    ),
    "note_cohort": (
        "Each period counts the surveys sent in it. Scale {low}–{high}; CSAT = share of "
        "{satisfied}."
    ),
    "last_days": "Last {n} days",
    "last_day": "Today",
    "previous_days": "previous {n} days",
    "previous_day": "previous day",
    "all_time": "All time",
    "month_to_date": "{month} {year} (to {day} {short})",
    "week_of": "Week of {date}",
    "pp_format": '+0.0" pp";-0.0" pp";0.0" pp"',
    "date_format": "yyyy-mm-dd",
    "datetime_format": "yyyy-mm-dd hh:mm",
    "answer_one": "answer",
    "answer_many": "answers",
}

_RU = {
    "summary": "Сводка",
    "trends": "Динамика",
    "responses": "Ответы",
    "unverified": "Непроверенные",
    "title": "Отчёт CSAT — {period} ({first} – {last})",
    "target": "Целевой CSAT",
    "latest": "Последний ответ",
    "no_answers": "ответов пока нет",
    "rank": "Место",
    "agent": "Сотрудник",
    "team": "Команда",
    "no_team": "Без команды",
    "all_agents": "Вся команда",
    "no_agent": "Сотрудник не указан",
    "answers": "Оценок",
    "csat": "CSAT",
    "low": "95% интервал: от",
    "high": "95% интервал: до",
    "adjusted": "Скорректированный CSAT",
    "previous_csat": "CSAT, {period}",
    "change": "Изменение",
    "mark": "Знач.",
    "response_rate": "Доля ответивших",
    "sent": "Отправлено опросов",
    "opened": "Открыли",
    "open_rate": "Доля открывших",
    "answered_sent": "Ответили",
    "mean": "Средняя оценка",
    "nps": "NPS",
    "nps_answers": "Оценок NPS",
    "nps_low": "NPS 95%: от",
    "nps_high": "NPS 95%: до",
    "not_enough": "мало оценок",
    "by_period": "По периодам",
    "period": "Период",
    "from": "С",
    "to": "По",
    "level": "Уровень",
    "name": "Название",
    "agent_key": "ID сотрудника",
    "helpdesk": "Хелпдеск",
    "overall": "Всего",
    "chart_agents": "CSAT по сотрудникам, {period} (95% интервал)",
    "chart_trend": "CSAT команды по неделям (95% интервал)",
    "team_by_week": "CSAT команды по неделям",
    "team_by_month": "CSAT команды по месяцам",
    "csat_by_week": "CSAT по неделям",
    "answers_by_week": "Оценок по неделям",
    "csat_by_month": "CSAT по месяцам",
    "answers_by_month": "Оценок по месяцам",
    "week": "Неделя с",
    "month": "Месяц",
    "granularity": "Шаг",
    "weekly": "неделя",
    "monthly": "месяц",
    "submitted": "Дата и время ответа ({tz})",
    "channel": "Канал",
    "ticket": "Обращение",
    "ticket_link": "Ссылка на обращение",
    "rating": "Оценка",
    "nps_score": "Ответ NPS (0–10)",
    "comment": "Комментарий",
    "reason": "Причина",
    "field_agent": "Поле «сотрудник» (не проверено)",
    "field_ticket": "Поле «обращение» (не проверено)",
    "source_row": "Исходная строка",
    "unverified_note": (
        "Не засчитаны никому: ссылка в этих ответах отсутствует, повреждена или подделана. "
        "Поля «сотрудник» и «обращение» — то, что было в форме; их может вписать кто угодно."
    ),
    "note_rank": (
        "Место — по скорректированному CSAT (эмпирический Байес: у сотрудника с малым числом "
        "оценок он ближе к среднему по команде); «2=» — место разделено. Сотрудники, у "
        "которых меньше {min_n} оценок, показаны без места."
    ),
    "note_rank_raw": (
        "Место — по CSAT (слишком мало сотрудников или оценок, чтобы оценить разброс в "
        "команде, поэтому без корректировки); «2=» — место разделено. Сотрудники, у которых "
        "меньше {min_n} оценок, показаны без места."
    ),
    "note_prior": (
        "Скорректированный CSAT = (довольных + {weight} × {mean}) / (оценок + {weight}): "
        "CSAT команды {mean} и вес {weight} {answers_word}, по {agents} сотрудникам."
    ),
    "note_pooled": (
        "Скорректированный CSAT: сотрудники различаются не больше, чем дала бы случайность, "
        "поэтому у всех он равен CSAT команды {mean}."
    ),
    "note_interval": "95% интервал CSAT — по Уилсону.",
    "note_change": (
        "Изменение — CSAT к периоду «{previous}»; ▲/▼ — только если изменение статистически "
        "значимо (уровень 5%, интервал Ньюкомба для разности долей) и в обоих периодах не "
        "меньше {min_n} оценок."
    ),
    "note_nps": (
        "NPS = % промоутеров (9–10) − % критиков (0–6) по вопросу 0–10; 95% интервал — "
        "скорректированный Вальда (Rocks 2016)."
    ),
    "note_funnel": (
        "Воронка по опросам, отправленным в периоде: отправлено → открыли (человек открыл "
        "ссылку на опрос; проверки ссылок и превью не считаются) → ответили."
    ),
    "note_cohort": (
        "Каждый период считает опросы, отправленные в нём. Шкала {low}–{high}; CSAT — доля "
        "оценок {satisfied}."
    ),
    "last_days": "{adjective} {n} {days}",
    "last_day": "Сегодня",
    "previous_days": "{adjective_lower} {n} {days}",
    "previous_day": "предыдущий день",
    "all_time": "За всё время",
    "month_to_date": "{month} {year} (по {day} {genitive})",
    "week_of": "Неделя с {date}",
    "pp_format": '+0.0" п.п.";-0.0" п.п.";0.0" п.п."',
    "date_format": "dd.mm.yyyy",
    "datetime_format": "dd.mm.yyyy hh:mm",
}

MONTHS = {
    "en": ["January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"],
    "ru": ["Январь", "Февраль", "Март", "Апрель", "Май", "Июнь", "Июль", "Август",
           "Сентябрь", "Октябрь", "Ноябрь", "Декабрь"],
}  # fmt: skip
_RU_GENITIVE = ["января", "февраля", "марта", "апреля", "мая", "июня", "июля", "августа",
                "сентября", "октября", "ноября", "декабря"]  # fmt: skip


def ru_plural(n: int, one: str, few: str, many: str) -> str:
    """CLDR Russian plural forms for whole numbers: 1 день, 2 дня, 5 дней, 11 дней, 21 день."""
    if n % 10 == 1 and n % 100 != 11:
        return one
    if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
        return few
    return many


class Texts:
    """The report's words in one language (``en`` or ``ru``)."""

    def __init__(self, language: str) -> None:
        if language not in LANGUAGES:
            raise ValueError(f"unknown report language {language!r}")
        self.language = language
        self._words = _RU if language == "ru" else _EN

    def __getitem__(self, key: str) -> str:
        return self._words[key]

    def date(self, day: date) -> str:
        return day.strftime("%d.%m.%Y" if self.language == "ru" else "%Y-%m-%d")

    def datetime(self, moment: datetime) -> str:
        """A local date-time as text (in a note): ``2026-11-30 14:05`` / ``30.11.2026 14:05``."""
        return moment.strftime("%d.%m.%Y %H:%M" if self.language == "ru" else "%Y-%m-%d %H:%M")

    def percent(self, fraction: float) -> str:
        """A fraction as text in a note: ``85.2%`` / ``85,2%``."""
        text = f"{100 * fraction:z.1f}%"  # z: never "-0.0%"
        return text.replace(".", ",") if self.language == "ru" else text

    def answers_word(self, n: int) -> str:
        if self.language == "ru":
            return ru_plural(n, "оценка", "оценки", "оценок")
        return self["answer_one"] if n == 1 else self["answer_many"]

    def period(self, period: Period) -> str:
        """A period's name: "Last 30 days", "October 2026 (to 30 Oct)", "Неделя с 03.11.2025"."""
        if period.kind == LAST_DAYS:
            return self._days("last", period.days)
        if period.kind == PREVIOUS_DAYS:
            return self._days("previous", period.days)
        if period.kind == ALL_TIME:
            return self["all_time"]
        first, last = period.first_date(), period.last_date()
        assert first is not None and last is not None  # months and weeks are bounded
        if period.kind == WEEK:
            return self["week_of"].format(date=self.date(first))
        assert period.kind == MONTH
        name = f"{MONTHS[self.language][first.month - 1]} {first.year}"
        if not period.to_date:
            return name
        return self["month_to_date"].format(
            month=MONTHS[self.language][first.month - 1],
            year=first.year,
            day=last.day,
            short=MONTHS["en"][first.month - 1][:3],
            genitive=_RU_GENITIVE[first.month - 1],
        )

    def _days(self, which: str, n: int) -> str:
        if n == 1:
            return self[f"{which}_day"]
        if self.language != "ru":
            return self[f"{which}_days"].format(n=n)
        one = ru_plural(n, "one", "few", "many") == "one"
        adjective = ("Последний" if one else "Последние") if which == "last" else None
        days = ru_plural(n, "день", "дня", "дней")
        if which == "last":
            return self["last_days"].format(adjective=adjective, n=n, days=days)
        lower = "предыдущий" if one else "предыдущие"
        return self["previous_days"].format(adjective_lower=lower, n=n, days=days)
