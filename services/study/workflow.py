"""Study's operations over the store and the grid directory."""
import csv
import io
import logging
import time
import uuid
from collections import Counter

from marshmallow import ValidationError

from wangge import events
from wangge.errors import ApiError, NotFound

from services.study import access, campaigns as plans
from services.study.schemas import MemberImportSchema

log = logging.getLogger(__name__)

SUMMARY_CHARS = 80
VERSION_FIELDS = ("version", "title", "body", "media", "tags", "author", "team", "editor", "updated_at")
# What an import says of a member; the rest (town, community) follows from the grid.
MEMBER_FIELDS = ("name", "grid_id", "kind", "phone")
CONFLICTS_LISTED = 100
# A spreadsheet takes a cell starting with one of these for a formula (=HYPERLINK(…), +cmd|…, @SUM(…)).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class Conflict(ApiError):
    http_status = 409
    error_code = "conflict"


class MembersWouldChange(Conflict):
    error_code = "members_would_change"

    def __init__(self, changes):
        super().__init__(
            f"{len(changes)} members of this import exist already with other details; nothing was written. "
            "Import again with replace=true to overwrite them.")
        self.details = {"changes": len(changes), "conflicts": [
            {"member_id": member_id, "fields": fields} for member_id, fields in sorted(changes.items())[:CONFLICTS_LISTED]]}


def short_id(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# -- contents ---------------------------------------------------------------------

def create_content(store, body, now):
    content = {"_id": short_id("CT"), "version": 1, **body, "created_at": now, "updated_at": now}
    return {**store.insert_content(content), "history": []}


def revise_content(store, content_id, body, now):
    current = existing(store.get_content(content_id), f"No content {content_id}.")
    # the version being replaced is kept before it is replaced: a version is never
    # edited, so keeping it twice (a retry, a concurrent edit) stores it once
    store.keep_version(content_id, {key: current.get(key) for key in VERSION_FIELDS})
    if not store.revise_content(content_id, current["version"], {**body, "updated_at": now}):
        raise Conflict(f"Content {content_id} was edited meanwhile; read it again and retry.")
    return content_with_history(store, content_id)


def content_with_history(store, content_id):
    """The content with its earlier versions, oldest first, under ``history``."""
    content = existing(store.get_content(content_id), f"No content {content_id}.")
    return {**content, "history": store.versions_before(content_id, content["version"])}


# -- campaigns ----------------------------------------------------------------------

def create_campaign(store, directory, policy, body, now, idempotency_key=None):
    """``(campaign, created)``: a key seen before returns the campaign it created."""
    if idempotency_key is not None:
        earlier = store.campaign_by_idempotency_key(idempotency_key)
        if earlier is not None:
            return earlier, False
    known = store.known_content_ids(body["content_ids"])
    unknown = [content_id for content_id in body["content_ids"] if content_id not in known]
    if unknown:
        raise NotFound(f"Unknown content: {', '.join(unknown)}.", {"content_ids": [f"Unknown: {', '.join(unknown)}."]})
    grids = plans.targeted_grids(body["target"], directory.grids())
    plans.check_reminder(body["reminder"], policy)
    schedule = dict(body["schedule"])
    first = plans.first_round_at(schedule, now, policy)
    campaign = {
        "_id": short_id("CP"), **body, "schedule": schedule,
        # the grids as they were when targeted: every dispatch names its group from here
        "grids": {grid["grid_id"]: {key: grid.get(key) for key in ("name", "town_id", "community_id", "wechat_groups")} for grid in grids},
        "next_round_at": first, "last_round_at": None, "created_at": now,
    }
    if idempotency_key is not None:
        campaign["idempotency_key"] = idempotency_key
    if store.insert_campaign(campaign) is None:  # a concurrent request with the same key won
        return store.campaign_by_idempotency_key(idempotency_key), False
    # as stored (times to the millisecond), so a retry answers exactly the same
    return store.get_campaign(campaign["_id"]), True


def fan_out_due_rounds(store, policy, publish, now, claim, claim_until):
    """Publish the material of every round that has fallen due and store the round's
    dispatches, the material's as published; returns how many rounds moved on and a
    Counter of (kind, outcome) of the material, as ``publish_due`` counts. A round is taken
    under ``claim`` first, so two processes do not both publish it; one that dies before
    the round moves on leaves it to be taken again once ``claim_until`` has passed (its
    events go out again under the same ids, which notify recognises). Reminders, and
    material the broker did not take, wait in their dispatches for ``publish_due``."""
    rounds, outcomes = 0, Counter()
    for campaign in store.campaigns_with_round_due(now):
        due_at, round_since = campaign["next_round_at"], time.monotonic()
        if not store.take_round(campaign["_id"], due_at, claim, claim_until, now):
            continue  # another process is fanning it out
        dispatches = plans.round_dispatches(campaign, due_at)
        material = [n for n, dispatch in enumerate(dispatches) if dispatch["kind"] == plans.CAMPAIGN_DUE and dispatch["due_at"] <= now]
        contents = material_of(store, campaign)
        publishing_since = time.monotonic()
        taken = publish([dispatch_event(dispatches[n], campaign, contents, []) for n in material])
        published = {n for position, n in enumerate(material) if position in taken}
        publishing_seconds, not_taken = time.monotonic() - publishing_since, len(material) - len(published)
        store.add_dispatches([{**dispatch, "state": "published", "published_at": now} if n in published else dispatch
                              for n, dispatch in enumerate(dispatches)])
        outcomes[(plans.CAMPAIGN_DUE, "published")] += len(published)
        outcomes[(plans.CAMPAIGN_DUE, "not_taken")] += not_taken
        # one line a round: how late it was taken and how long the broker took its material
        log.info("campaign round fanned out", extra={
            "campaign_id": campaign["_id"], "round_due_at": due_at.isoformat(), "taken_late_seconds": round((now - due_at).total_seconds(), 3),
            "dispatches": len(dispatches), "material_published": len(published), "material_not_taken": not_taken,
            "publishing_seconds": round(publishing_seconds, 3), "round_seconds": round(time.monotonic() - round_since, 3)})
        if store.advance_round(campaign["_id"], due_at, following_round(campaign, due_at, policy)):
            rounds += 1
    return rounds, +outcomes  # + drops the zero counts


def material_of(store, campaign):
    """What a dispatch names of each of the campaign's contents, in the campaign's order."""
    found = store.contents_for_dispatch(campaign["content_ids"], SUMMARY_CHARS)
    return [found[c] for c in campaign["content_ids"] if c in found]


def following_round(campaign, due_at, policy):
    try:
        return plans.next_round_at(campaign["schedule"], due_at, policy)
    except plans.CampaignRejected as rejected:
        # stored before its rule was refused (FREQ=SECONDLY, UNTIL in the rule …): no more rounds
        log.warning("campaign rule no longer accepted; no further rounds", extra={"campaign_id": campaign["_id"], "reason": str(rejected.fields)})
        return None


def dispatch_event(dispatch, campaign, contents, missing_members):
    grid = campaign["grids"][dispatch["grid_id"]]
    data = {
        "campaign_id": campaign["_id"], "round": dispatch["round"], "title": campaign["title"], "grid_id": dispatch["grid_id"],
        "grid_name": grid.get("name"), "town_id": grid.get("town_id"), "community_id": grid.get("community_id"),
        "wechat_group_ids": grid.get("wechat_groups") or [], "due_at": dispatch["round_due_at"],
        "contents": [
            {"content_id": c["_id"], "version": c["version"], "title": c["title"], "summary": c["summary"], "media": c.get("media", [])}
            for c in contents
        ],
    }
    if dispatch["kind"] == plans.REMINDER:
        data.update(reminder_number=dispatch["number"], final_reminder=dispatch["final"], members=[
            {"member_id": m["_id"], "name": m.get("name"), "phone": m.get("phone")} for m in missing_members
        ])
        event_type = events.STUDY_REMINDER_DUE
    else:
        event_type = events.CAMPAIGN_DUE
    # the dispatch id is the event id: a repeat after a crash is recognised downstream
    return event_type, events.build_event(event_type, data, event_id=dispatch["_id"])


def publish_due(store, publish, now, claim, claim_until, batch):
    """Publish up to ``batch`` dispatches due now (reminders; material a round could not
    publish, or a process that died held), taken under ``claim``, all at once (``publish(events)`` returns the positions the broker took); returns a
    Counter of (kind, outcome)."""
    outgoing, skipped, outcomes = [], [], Counter()
    campaigns, contents = {}, {}
    for dispatch in store.claim_due_dispatches(now, claim, claim_until, batch):
        if dispatch["campaign_id"] not in campaigns:
            campaigns[dispatch["campaign_id"]] = store.get_campaign(dispatch["campaign_id"])
        campaign = campaigns[dispatch["campaign_id"]]
        missing_members = []
        if dispatch["kind"] == plans.REMINDER:
            missing_members = missing(store, campaign, dispatch["grid_id"])
            if not missing_members:
                skipped.append(dispatch["_id"])  # everyone has taken part: nobody to remind
                outcomes[(dispatch["kind"], "skipped")] += 1
                continue
        if campaign["_id"] not in contents:
            contents[campaign["_id"]] = material_of(store, campaign)
        outgoing.append((dispatch, dispatch_event(dispatch, campaign, contents[campaign["_id"]], missing_members)))
    store.finish_dispatches(skipped, "skipped", now)
    taken = publish([event for _, event in outgoing])
    if len(taken) == len(outgoing):
        store.finish_claimed(claim, "published", now)
    else:  # what the broker did not take stays claimed until claim_until, then is taken again
        store.finish_dispatches([dispatch["_id"] for n, (dispatch, _) in enumerate(outgoing) if n in taken], "published", now)
    for n, (dispatch, _) in enumerate(outgoing):
        outcomes[(dispatch["kind"], "published" if n in taken else "not_taken")] += 1
    return outcomes


# -- members, check-ins, sessions ------------------------------------------------------

def members_from_csv(raw):
    """CSV with a header row (member_id,name,grid_id,kind,phone) as the JSON import's document."""
    try:
        rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ApiError("The CSV file cannot be read.", {"body": [str(exc)]}) from exc
    return {"members": [{key: value for key, value in row.items() if value not in (None, "")} for row in rows]}


def parse_members(document):
    """Validated members; errors name the row (members.3.grid_id; CSV row 3 is line 5)."""
    return MemberImportSchema().load(document)["members"]


def import_members(store, directory, members, now, replace=False):
    """All rows or none: every grid must be known before anything is written, and
    members stored before are overwritten with other details only with ``replace``
    (importing the same list again changes nothing). Returns how many rows were
    imported, and of those how many were new, changed and unchanged."""
    grids = directory.grids()
    problems = {index: {"grid_id": [f"Unknown grid {m['grid_id']}."]} for index, m in enumerate(members) if m["grid_id"] not in grids}
    if problems:
        raise ValidationError({"members": problems})
    duplicates = sorted(member_id for member_id, n in Counter(m["member_id"] for m in members).items() if n > 1)
    if duplicates:
        raise ValidationError({"members": {"member_id": [f"Listed twice: {', '.join(sorted(duplicates))}."]}})
    incoming = [
        {"_id": m["member_id"], "name": m["name"], "grid_id": m["grid_id"], "kind": m["kind"], "phone": m.get("phone"),
         "town_id": grids[m["grid_id"]]["town_id"], "community_id": grids[m["grid_id"]]["community_id"]}
        for m in members
    ]
    stored = store.members_by_ids([member["_id"] for member in incoming])
    changes = {member["_id"]: changed for member in incoming if member["_id"] in stored
               for changed in [changed_fields(stored[member["_id"]], member)] if changed}
    if changes and not replace:
        raise MembersWouldChange(changes)
    store.upsert_members(incoming, now)
    created = len(incoming) - len(stored)
    return {"imported": len(incoming), "created": created, "changed": len(changes), "unchanged": len(stored) - len(changes)}


def changed_fields(stored, incoming):
    """The names (never the values: phone numbers) of what an import would change of a member."""
    return [name for name in MEMBER_FIELDS if stored.get(name) != incoming.get(name)]


def participation_entry(campaign_id, member, kind, now, **extra):
    return {"_id": f"{campaign_id}|{member['_id']}|{kind}", "campaign_id": campaign_id, "member_id": member["_id"],
            "grid_id": member["grid_id"], "town_id": member.get("town_id"), "community_id": member.get("community_id"),
            "kind": kind, "at": now, **extra}


def check_in(store, directory, caller, body, now):
    """``True`` if this (campaign, member, kind) is new."""
    campaign = existing(store.get_campaign(body["campaign_id"]), f"No campaign {body['campaign_id']}.")
    member = existing(store.members_by_ids([body["member_id"]]).get(body["member_id"]), f"No member {body['member_id']}.")
    access.require_grids(caller, directory, [member["grid_id"]])
    if member["grid_id"] not in campaign["grids"]:
        raise Conflict(f"Campaign {campaign['_id']} does not target grid {member['grid_id']} of member {member['_id']}.")
    return store.record_participation([participation_entry(campaign["_id"], member, body["kind"], now, comment=body.get("comment"))]) == 1


def record_session(store, directory, caller, body, now, idempotency_key=None):
    """``(session, created)``: a key seen before returns the session it recorded.
    The caller records for the session's grid and each attendee's."""
    if body["grid_id"] not in directory.grids():
        raise NotFound(f"No grid {body['grid_id']}.", {"grid_id": ["Unknown grid."]})
    attendees = known_members(store, body["attendees"])
    access.require_grids(caller, directory, [body["grid_id"], *(member["grid_id"] for member in attendees.values())])
    if idempotency_key is not None:
        earlier = store.session_by_idempotency_key(idempotency_key)
        if earlier is not None:
            access.require_grids(caller, directory, [earlier["grid_id"]])
            return count_earlier_attendance(store, earlier, now), False
    campaign = None
    if body.get("campaign_id"):
        campaign = existing(store.get_campaign(body["campaign_id"]), f"No campaign {body['campaign_id']}.")
    session = {"_id": short_id("SS"), **body, "attendees": sorted(attendees), "created_at": now}
    if idempotency_key is not None:
        session["idempotency_key"] = idempotency_key
    if store.insert_session(session) is None:  # a concurrent request with the same key won
        return count_earlier_attendance(store, store.session_by_idempotency_key(idempotency_key), now), False
    count_attendance(store, session, campaign, attendees, now)
    return store.get_session(session["_id"]), True


def count_earlier_attendance(store, session, now):
    """Count a session's attendance again (it counts once): the first request may have
    stopped between storing the session and counting its attendance."""
    campaign = store.get_campaign(session["campaign_id"]) if session.get("campaign_id") else None
    count_attendance(store, session, campaign, store.members_by_ids(session["attendees"]), now)
    return session


def add_attendance(store, directory, caller, session_id, member_ids, now):
    session = existing(store.get_session(session_id), f"No session {session_id}.")
    attendees = known_members(store, member_ids)
    access.require_grids(caller, directory, [session["grid_id"], *(member["grid_id"] for member in attendees.values())])
    store.add_attendees(session_id, attendees)
    campaign = store.get_campaign(session["campaign_id"]) if session.get("campaign_id") else None
    count_attendance(store, session, campaign, attendees, now)
    return store.get_session(session_id)


def known_members(store, member_ids):
    members = store.members_by_ids(member_ids)
    unknown = sorted(set(member_ids) - set(members))
    if unknown:
        raise NotFound(f"Unknown members: {', '.join(unknown)}.", {"attendees": [f"Unknown: {', '.join(unknown)}."]})
    return members


def count_attendance(store, session, campaign, attendees, now):
    """Attending a session of a campaign counts as taking part in it (for members it targets)."""
    if campaign is None:
        return
    store.record_participation([
        participation_entry(campaign["_id"], member, "attended", now, session_id=session["_id"])
        for member in attendees.values() if member["grid_id"] in campaign["grids"]
    ])


# -- reports --------------------------------------------------------------------------

def missing(store, campaign, grid_id):
    """The grid's members who have not taken part yet (the 不掉队 list)."""
    taken_part = store.participants_of(campaign["_id"], grid_id)
    return [member for member in store.members_of_grid(grid_id) if member["_id"] not in taken_part]


def participants(store, campaign, grid_id):
    """The grid's members who have taken part, each with how (``kinds``: read, attended,
    commented) and when first (``first_at``), by member id; members since moved to another
    grid are left out, as the 不掉队 list leaves them out."""
    taken_part = {}
    for entry in store.participation_in_grid(campaign["_id"], grid_id):
        seen = taken_part.setdefault(entry["member_id"], {"kinds": set(), "first_at": entry["at"]})
        seen["kinds"].add(entry["kind"])
        seen["first_at"] = min(seen["first_at"], entry["at"])
    return [{**member, "kinds": sorted(taken_part[member["_id"]]["kinds"]), "first_at": taken_part[member["_id"]]["first_at"]}
            for member in store.members_of_grid(grid_id) if member["_id"] in taken_part]


def report(store, campaign, by, members=None):
    """Members and participants of the campaign's grids, rolled up ``by`` town, community
    or grid; ``members`` (by grid) when the caller has them already."""
    members = store.members_per_grid() if members is None else members
    participants = store.participants_per_grid(campaign["_id"])
    rows = [
        {"grid_id": grid_id, "grid_name": grid.get("name"), "community_id": grid.get("community_id"), "town_id": grid.get("town_id"),
         "members": members.get(grid_id, 0), "participants": participants.get(grid_id, 0)}
        for grid_id, grid in sorted(campaign["grids"].items())
    ]
    return plans.rollup(rows, by)


def report_csv(rows):
    output = io.StringIO()
    if rows:
        writer = csv.DictWriter(output, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({key: spreadsheet_text(value) for key, value in row.items()} for row in rows)
    return output.getvalue()


def spreadsheet_text(value):
    """A cell a spreadsheet shows as text: names come from the registry and imports,
    and one starting like a formula would run as one when the file is opened (OWASP's
    advice: a leading apostrophe)."""
    return f"'{value}" if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value


def existing(document, message):
    if document is None:
        raise NotFound(message)
    return document
