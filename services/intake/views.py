"""What a request looks like to whoever reads it back.

* **Public** (anyone holding the tracking number): where the request stands —
  status, category, the grid's name once routing knows it, the history in plain
  words — and the resident's text with phone numbers and the reporter's name
  masked; once the request is resolved, the result the resolving worker wrote (every
  reporter's name of the case and every phone number masked). Never the reporter, the
  address, the location, the media or the other notes of the people handling it.
* **Full** (the county command centre and administrators; an integrator for the
  requests of its own source): everything intake holds about the request,
  the reporter in full, for calling the resident back.
"""
from wangge.logs import redact_people, redact_phones

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


def redacted_text(text, reporter):
    """The resident's words with every phone number and the reporter's name masked."""
    return redact_people(text, [(reporter or {}).get("name")])


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
    """What was done, while the request stands resolved or closed: routing's words for
    every reporter of the case (the worker's note, every reporter's name and every phone
    number masked), masked here once more for this request's own reporter."""
    if request["status"] not in RESULT_STATUSES or not request.get("result"):
        return None
    return redacted_text(request["result"], request.get("reporter"))


def full_view(request):
    return RequestViewSchema().dump({
        **request,
        "result": public_result(request),
        "status_words": status_words(request["status"]),
        "history": [{**entry, "words": status_words(entry["status"])} for entry in request.get("history", [])],
    })


PUBLIC_FIELDS = ("tracking_no", "status", "status_words", "received_at", "category", "category_name", "subclass", "subclass_name",
                 "major", "major_name", "grid_name",
                 "text", "result", "history.status", "history.at", "history.words")
