"""What a request looks like to whoever reads it back.

* **Public** (anyone holding the tracking number): where the request stands —
  status, category, the grid's name once routing knows it, the history in plain
  words — and the resident's text with phone numbers and the reporter's name
  masked; once the request is resolved, the result the resolving worker wrote for
  the resident (phone numbers and the reporter's name masked there too). Never the
  reporter, the address, the location, the media or the other notes of the people
  handling it.
* **Full** (the county command centre and administrators; an integrator for the
  requests of its own source): everything intake holds about the request,
  the reporter in full, for calling the resident back.
"""
from wangge.logs import mask_name, redact_phones

from services.intake.schemas import RequestViewSchema

# What each status means to the resident, as the tracking page says it.
STATUS_WORDS = {
    "received": "已受理",
    "assigned": "已分派到网格办理",
    "acknowledged": "网格员已响应",
    "in_progress": "正在办理",
    "escalated": "已上报上级部门办理",
    "resolved": "已办结，等待回访",
    "closed": "已结案",
    "reopened": "回访未解决，重新办理",
    "merged": "已有居民反映同一问题，合并办理",
    "rejected": "未予受理",
    "returned": "正在重新派遣办理单位",
}
# The statuses whose request has a result the resident may read.
RESULT_STATUSES = ("resolved", "closed")
# A one-character name would mask that character everywhere in the text.
MIN_MASKED_NAME_CHARS = 2


def redacted_text(text, reporter):
    """The resident's words with every phone number and the reporter's name masked."""
    text = redact_phones(text)
    name = (reporter or {}).get("name")
    if name and len(name) >= MIN_MASKED_NAME_CHARS:
        text = text.replace(name, mask_name(name))
    return text


def sentiment_entries(entries):
    """Log entries as staff read them: phone numbers in summaries (notes included) masked."""
    return [{**entry, "summary": redact_phones(entry["summary"]) if entry.get("summary") else entry.get("summary")}
            for entry in entries]


def status_words(status):
    return STATUS_WORDS.get(status, status)


def public_view(request):
    return RequestViewSchema(only=PUBLIC_FIELDS).dump({
        **request,
        "status_words": status_words(request["status"]),
        "text": redacted_text(request["text"], request.get("reporter")),
        "result": public_result(request),
        "history": [{"status": entry["status"], "at": entry["at"], "words": status_words(entry["status"])}
                    for entry in request.get("history", [])],
    })


def public_result(request):
    """The note of the request's latest resolution while it stands (resolved or closed),
    as the resident reads it; ``None`` before, after a reopening, or without a note."""
    if request["status"] not in RESULT_STATUSES:
        return None
    resolved = [entry for entry in request.get("history", []) if entry["status"] == "resolved"]
    note = resolved[-1].get("note") if resolved else None
    return redacted_text(note, request.get("reporter")) if note else None


def full_view(request):
    return RequestViewSchema().dump({
        **request,
        "status_words": status_words(request["status"]),
        "history": [{**entry, "words": status_words(entry["status"])} for entry in request.get("history", [])],
    })


PUBLIC_FIELDS = ("tracking_no", "status", "status_words", "received_at", "category", "category_name", "subclass", "subclass_name",
                 "major", "major_name", "grid_name",
                 "text", "result", "history.status", "history.at", "history.words")
