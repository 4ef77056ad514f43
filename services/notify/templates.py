"""Chinese message templates, kept as files in ``templates/`` and rendered with
Jinja2. A variable a template names but the event lacks is an error
(StrictUndefined), never a blank in a resident's SMS."""
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined

TEMPLATE_DIR = Path(__file__).with_name("templates")
SUFFIX = ".txt.j2"

# E-mail subjects and list titles per kind.
TITLES = {
    "case_assigned.worker": "新诉求派单",
    "case_assigned.resident": "诉求已受理",
    "case_escalated.lead": "诉求上报待处理",
    "case_escalated.department": "诉求转办职能部门",
    "case_escalated.grid_head": "网格诉求已上报",
    "case_merged.resident": "诉求已在处理中",
    "case_closed.resident": "诉求已办结",
    "follow_up_requested.resident": "诉求办理回访",
    "case_status_changed.resident": "诉求未予受理",
    "sla_warning.worker": "诉求即将超时",
    "sla_warning.lead": "诉求即将超时",
    "sla_warning.department": "诉求即将超时",
    "sla_breached.grid_head": "诉求已超时",
    "sla_breached.worker": "诉求已超时",
    "sla_breached.lead": "诉求已超时",
    "sla_breached.department": "诉求已超时",
    "campaign_due.grid_group": "网格课堂学习内容",
    "study_reminder_due.member": "学习提醒",
    "ops_alert.ops": "平台告警",
    "visit_overdue.worker": "关爱对象走访逾期",
    "visit_overdue.grid_head": "关爱对象走访逾期督办",
}


def local_time(value, timezone_name):
    """``2026-11-29T01:30:00+00:00`` → ``11月29日 09:30`` (county time)."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.astimezone(ZoneInfo(timezone_name)).strftime("%m月%d日 %H:%M").lstrip("0")


class Templates:
    def __init__(self, timezone_name, directory=TEMPLATE_DIR):
        self.environment = Environment(
            loader=FileSystemLoader(str(directory)), undefined=StrictUndefined,
            autoescape=False, trim_blocks=True, lstrip_blocks=True,
        )
        # times in messages are the county's (WANGGE_TIMEZONE), like everything residents read
        self.environment.filters["local_time"] = lambda value: local_time(value, timezone_name)

    def kinds(self):
        return sorted(name[: -len(SUFFIX)] for name in self.environment.list_templates() if name.endswith(SUFFIX))

    def render(self, kind, context):
        """(subject, body); raises ``jinja2.UndefinedError`` or ``TemplateNotFound``."""
        body = self.environment.get_template(kind + SUFFIX).render(**context).strip()
        return TITLES.get(kind, "网格通知"), body
