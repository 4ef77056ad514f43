"""Who may call what: the one permission table of the platform.

Each HTTP endpoint names one permission (``@http(..., allow=CASES_ACT)``); the
gateway and every service enforce it (a valid bearer token whose roles include
one of the permission's roles), and the service then narrows it to the caller's
area where the table says so (the grid registry says who belongs where).
``county_admin`` may do whatever any staff role may. The README's permission
table is generated from this one (``make contracts``).
"""
from dataclasses import dataclass

STAFF_ROLES = ("grid_worker", "grid_head", "community_lead", "town_lead", "department", "county_center",
               "study_editor", "county_admin", "operator")
# Accounts of systems, not people.
MACHINE_ROLES = ("integrator", "service", "alertmanager")
CASE_ROLES = ("grid_worker", "grid_head", "community_lead", "town_lead", "department", "county_center")
AREA_ROLES = ("grid_worker", "grid_head", "community_lead", "town_lead", "county_center")


@dataclass(frozen=True)
class Permission:
    name: str
    roles: tuple  # empty: anyone, no token needed
    scope: str  # how the service narrows it, for people reading the table

    @property
    def public(self):
        return not self.roles

    def allows(self, roles):
        if self.public:
            return True
        granted = set(self.roles)
        if granted & set(STAFF_ROLES):
            granted.add("county_admin")
        return bool(granted & set(roles))


PUBLIC = Permission("public", (), "anyone; rate-limited at the gateway")
REQUESTS_FILE = Permission("requests.file", (), "anyone (residents); an integrator's token binds its source; "
                           "Idempotency-Key per sender")
WECOM_CALLBACK = Permission("wecom.callback", (), "WeCom's servers: each call is signed with the grid group robot's token "
                            "(msg_signature; else 403) and encrypted with its EncodingAESKey")
REQUESTS_TRACK = Permission("requests.track", (), "anyone holding the unguessable tracking number: no reporter, address or place; "
                            "in full for the command centre and an integrator's own source")
REQUESTS_LOOKUP = Permission("requests.lookup", ("integrator", "county_center"), "an integrator: its own source only; the command centre any")
SENTIMENT_LOG_READ = Permission("sentiment_log.read", AREA_ROLES,
                                "all for the command centre; others a grid they work in, head or lead (its community or town), "
                                "one at a time")
REGISTRY_READ = Permission("registry.read", (*STAFF_ROLES, "service"), "all")
REGISTRY_LOAD = Permission("registry.load", ("county_admin",), "all")
CASES_READ = Permission("cases.read", CASE_ROLES, "the caller's grids, community, town or department")
CASES_ACT = Permission("cases.act", CASE_ROLES, "the caller's grids, community, town or department, as themselves; "
                       "re-assigning: a grid's head and leads within it, the command centre across grids")
CASES_DISPATCH = Permission("cases.dispatch", ("county_center", "town_lead"),
                            "the dispatcher's queue, triage placement and re-dispatch (改派): all for the command centre, "
                            "a town lead their town's queue and grids")
INDICATORS_READ = Permission("indicators.read", CASE_ROLES,
                             "the scorecard (考核指标): all for the command centre; a town lead the rows of their town and of "
                             "its communities, grids, workers and departments' cases there; a community lead their community's "
                             "and its grids' and workers'; grid workers and heads their grids' and workers'; a department its own; "
                             "a wider level 403")
CLASSIFIER_EXAMPLES = Permission("classifier.examples", ("county_admin",), "all: the classes dispatchers confirmed or corrected, "
                                 "texts masked")
CASES_FOLLOW_UP = Permission("cases.follow_up", (), "the resident holding the token of their follow-up message: once, until it expires")
NOTIFICATIONS_READ = Permission("notifications.read", ("operator",), "all, masked")
NOTIFICATIONS_RESEND = Permission("notifications.resend", ("operator",), "all; at most N per recipient an hour (429), quiet hours kept")
ALERTS_POST = Permission("alerts.post", ("alertmanager",), "Alertmanager only")
PREFERENCES_WRITE = Permission("preferences.write", STAFF_ROLES,
                               "the caller's own channel; residents', groups' and others' for county_admin only; no WeCom robot keys")
STUDY_READ = Permission("study.read", (*STAFF_ROLES, "service"), "all")
STUDY_EDIT = Permission("study.edit", ("study_editor",), "all: contents and campaigns")
MEMBERS_IMPORT = Permission("members.import", ("county_admin",), "all; changing members stored before needs replace=true")
PARTICIPATION_RECORD = Permission("participation.record", ("grid_worker", "grid_head", "community_lead", "town_lead", "study_editor"),
                                  "members and sessions of the grids the caller works in, heads, or leads as head of "
                                  "their community or town (all, for study editors)")
PARTICIPATION_READ = Permission("participation.read", ("grid_worker", "grid_head", "community_lead", "town_lead", "study_editor",
                                                       "county_admin"),
                                "who of a grid's members took part in a campaign and who has not (their names): the grids the "
                                "caller works in, heads, or leads as head of their community or town (all, for study editors "
                                "and the county's administrators); another grid 403")
CARE_READ = Permission("care.read", ("grid_worker", "grid_head", "community_lead", "town_lead", "department", "county_center"),
                       "priority residents, their visits and who is overdue: in full (each read audit-logged) for the grids the "
                       "caller works in, heads or leads and for the command centre; masked (no name, phone, address or notes) "
                       "for departments; another grid 403")
CARE_RECORD = Permission("care.record", ("grid_worker", "grid_head", "community_lead", "town_lead", "county_center"),
                         "residents and visits of the grids the caller works in, heads or leads; the command centre all")
CARE_REPORTS = Permission("care.reports", (*STAFF_ROLES, "service"), "all: counts per grid, community or town (visits due and on time, "
                          "volunteer activities); no personal data")
VOLUNTEERS_RECORD = Permission("volunteers.record", ("grid_worker", "grid_head", "community_lead", "town_lead", "county_center"),
                               "activities of the grids the caller works in, heads or leads, or of the community or town "
                               "they lead; the command centre all")
TODO_EDIT = Permission("todo.edit", ("community_lead", "town_lead", "county_center"),
                       "the public to-do list (为民办事清单) of the community or town the caller leads; the command centre all")
# Open311 GeoReport v2 (/open311/v2/): standard clients send an api_key, not a token
OPEN311 = Permission("open311", (), "anyone: the services; filing needs a system's Open311 api_key (its source); listing requests "
                     "needs the key (its own source's, with address and place) or names them by id (as the tracking page shows them)")
INTEGRATOR_KEYS = Permission("integrators.keys", ("county_admin",), "all: issue, replace and revoke the systems' Open311 API keys")

ALL = (PUBLIC, REQUESTS_FILE, WECOM_CALLBACK, REQUESTS_TRACK, REQUESTS_LOOKUP, SENTIMENT_LOG_READ, REGISTRY_READ, REGISTRY_LOAD,
       CASES_READ, CASES_ACT, CASES_DISPATCH, INDICATORS_READ, CLASSIFIER_EXAMPLES, CASES_FOLLOW_UP,
       NOTIFICATIONS_READ, NOTIFICATIONS_RESEND, ALERTS_POST,
       PREFERENCES_WRITE, STUDY_READ, STUDY_EDIT, MEMBERS_IMPORT, PARTICIPATION_RECORD,
       PARTICIPATION_READ, CARE_READ, CARE_RECORD, CARE_REPORTS,
       VOLUNTEERS_RECORD, TODO_EDIT, OPEN311, INTEGRATOR_KEYS)


def markdown_table():
    """The table as the README shows it: one row a permission, one column a role."""
    roles = [*STAFF_ROLES, *MACHINE_ROLES]
    lines = ["| permission | token | " + " | ".join(f"`{role}`" for role in roles) + " | scope |",
             "|---|---|" + "---|" * len(roles) + "---|"]
    for permission in ALL:
        token = "no" if permission.public else "yes"
        cells = ["" if permission.public or not permission.allows({role}) else "✓" for role in roles]
        lines.append(f"| `{permission.name}` | {token} | " + " | ".join(cells) + f" | {permission.scope} |")
    return "\n".join(lines)
