"""What a reader is shown of the people in a case or a grid.

A resident's name and phone, and phone numbers they typed into their request,
are for the person the case is assigned to and their leads
(``access.reporter_reader``); everyone else reads them masked. Lists mask the
text for everyone: the full text is on the case, where each read is logged.
Grid workers' phones are for staff.
"""
from wangge.logs import mask_name, mask_phone, redact_phones


def reporters_of(case, unmasked):
    shown = []
    for linked in case.get("reporters", []):
        reporter = linked.get("reporter") or {}
        name, phone = reporter.get("name"), reporter.get("phone")
        shown.append({
            "tracking_no": linked.get("tracking_no"), "at": linked.get("at"),
            "name": name if unmasked else mask_name(name), "phone": phone if unmasked else mask_phone(phone),
        })
    return shown


def case_detail(case, reader):
    """``case`` for a reader with a reason to see the resident (``reader``), or without (``None``)."""
    text = case.get("text") or ""
    return {**case, "text": text if reader else redact_phones(text), "reporters": reporters_of(case, unmasked=bool(reader))}


def case_listed(case):
    return {**case, "text": redact_phones(case.get("text") or "")}


def grid_detail(grid, staff):
    if staff:
        return grid

    def masked(person):
        return {**person, "phone": mask_phone(person["phone"])} if person and person.get("phone") else person

    return {**grid, "head": masked(grid.get("head")), "workers": [masked(worker) for worker in grid.get("workers", [])]}


def my_grid(grid, role, subject):
    """A grid of the caller's, with what they are in it and, as one of its workers, their duty."""
    worker = next((w for w in grid.get("workers", []) if w.get("id") == subject), None)
    return {**grid, "role": role, "on_duty": worker.get("on_duty", True) if worker and role == "grid_worker" else None}


def queued_case(case):
    returns = case.get("returns") or []
    return {**case_listed(case), "last_return": returns[-1] if returns else None}


def taxonomy_view(taxonomy):
    return {
        "version": taxonomy.version, "departments": taxonomy.departments,
        "majors": [
            {"code": major.code, "name": major.name, "standard": major.standard,
             "subclasses": [taxonomy.subclasses[code] for code in major.subclasses]}
            for major in taxonomy.majors.values()
        ],
    }
