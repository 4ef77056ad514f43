"""marshmallow fields every service reads the same way."""
from datetime import datetime, timezone

from marshmallow import ValidationError, fields, validate

# Moments a resident, a worker or another system can mean; outside them a date is
# a typo (or an attack) and would overflow on conversion to UTC or in the store.
EARLIEST = datetime(2000, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(2100, 1, 1, tzinfo=timezone.utc)
# Pages past this are no use to a person and overflow the store's 64-bit skip.
MAX_PAGE = 10_000


class Moment(fields.AwareDateTime):
    """ISO 8601 with a zone, between 2000 and 2100."""

    def _deserialize(self, value, attr, data, **kwargs):
        moment = super()._deserialize(value, attr, data, **kwargs)
        try:
            in_utc = moment.astimezone(timezone.utc)
        except OverflowError:
            in_utc = None
        if in_utc is None or not EARLIEST <= in_utc < LATEST:
            raise ValidationError(f"Must be between {EARLIEST.year} and {LATEST.year}.")
        return moment


def page_number():
    return fields.Integer(load_default=1, validate=validate.Range(min=1, max=MAX_PAGE))
