"""Schema pieces every resource uses."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from catalog.services.pagination import DEFAULT_LIMIT, MAX_LIMIT

NAME = validate.Regexp(
    r"^[a-z0-9][a-z0-9_-]{0,62}\Z",
    error="lower-case letters, digits, '_' and '-', starting with a letter or digit, 63 at most",
)


class JsonBoolean(fields.Boolean):
    """A JSON body's boolean: `true` or `false` only (not 0, 1 or "yes", which a query
    string's booleans accept)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class PageArgs(Schema):
    limit = fields.Integer(load_default=DEFAULT_LIMIT, validate=validate.Range(1, MAX_LIMIT))
    cursor = fields.String(load_default=None, validate=validate.Length(max=512))


class ProblemItem(Schema):
    path = fields.String(required=True)
    message = fields.String(required=True)


class Problem(Schema):
    """RFC 9457 problem details, the shape of every error."""

    type = fields.String(required=True)
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String()
    errors = fields.List(
        fields.Nested(ProblemItem),
        metadata={"description": "Each problem of an invalid request, with its path"},
    )
