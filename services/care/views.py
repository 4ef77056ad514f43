"""What care shows of its records, in full or masked, and what the public sees of
the to-do list."""
from datetime import date

from wangge.logs import mask_name, mask_phone, redact_phones

from services.care import schedule

TODO_STATUS_WORDS = {"planned": "未开始", "in_progress": "办理中", "done": "已办结", "postponed": "已延期"}


def resident_view(resident, now, full):
    """A resident as their grid's people read them (``full``), or masked: the family
    name and the phone's ends, no address or notes."""
    view = {
        **resident, "kind_names": [schedule.KIND_NAMES[kind] for kind in resident["kinds"]],
        "overdue": schedule.is_overdue(resident, now), "days_overdue": schedule.days_overdue(resident, now),
    }
    if not full:
        view.update(name=mask_name(resident["name"]), phone=mask_phone(resident.get("phone")), address=None, notes=None)
    return view


def visit_view(visit, full):
    """A visit; masked, without what was said or found (its needs keep their tracking numbers)."""
    if full:
        return visit
    return {**visit, "notes": None, "needs": [{**need, "text": None} for need in visit.get("needs") or []]}


def public_todo(item):
    """A to-do item as anyone may read it: what, where, who is responsible (a department),
    by when and how far; no staff names, phone numbers masked in the notes."""
    return {
        "item_id": item["_id"], "title": item["title"], "area": item["area"], "town_id": item["town_id"],
        "community_id": item.get("community_id"), "owner_department": item["owner_department"],
        "promised_by": date.fromisoformat(item["promised_by"]), "status": item["status"], "status_words": TODO_STATUS_WORDS[item["status"]],
        "progress_notes": redact_phones(item.get("progress_notes") or ""), "updated_at": item["updated_at"],
        "history": [{"at": entry["at"], "status": entry["status"], "status_words": TODO_STATUS_WORDS[entry["status"]],
                     "progress_notes": redact_phones(entry.get("progress_notes") or "")} for entry in item.get("history") or []],
    }
