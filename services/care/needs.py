"""A need found on a visit, filed with intake as a resident's request in one step:
channel ``visit``, the resident's grid and address, the resident as the reporter
(routing shows them only to whoever handles the case and their leads), and the
visit's id as the request's ``external_ref``. Each need's ``Idempotency-Key`` comes
from the visit and its place in it, so a visit retried files nothing twice."""
import requests

from wangge.errors import ApiError


class IntakeUnavailable(ApiError):
    http_status = 503
    error_code = "intake_unavailable"


class RequestFiling:
    def __init__(self, intake_url, timeout, authorization):
        self.intake_url = intake_url
        self.timeout = timeout
        self.authorization = authorization  # () -> headers naming care's own client

    def file(self, visit, resident, number, text):
        """``{text, tracking_no, request_id}`` of the request filed for the visit's ``number``-th need."""
        reporter = {"name": resident["name"], **({"phone": resident["phone"]} if resident.get("phone") else {})}
        body = {"channel": "visit", "text": text, "grid_id": resident["grid_id"], "address": resident["address"], "reporter": reporter,
                "submitted_at": visit["visited_at"].isoformat(), "external_ref": visit["_id"]}
        try:
            response = requests.post(f"{self.intake_url}/api/v1/requests", json=body, timeout=self.timeout,
                                     headers={**self.authorization(), "Idempotency-Key": f"{visit['_id']}:need:{number}"})
            response.raise_for_status()
            filed = response.json()
        except (requests.RequestException, ValueError) as exc:
            # the status only: intake's answer may quote the resident's words back
            status = getattr(getattr(exc, "response", None), "status_code", None)
            raise IntakeUnavailable(f"The need could not be filed with intake ({status or type(exc).__name__}); "
                                    "send the visit again with the same Idempotency-Key.") from None
        return {"text": text, "tracking_no": filed["tracking_no"], "request_id": filed["request_id"]}
