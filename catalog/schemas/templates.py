"""Templates and the environments made from them."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from catalog.schemas.common import PageArgs
from catalog.schemas.environments import (
    DNS_LABEL,
    PROBLEM,
    AppCreate,
    bounded_document,
    host_field,
    parameters_field,
    settings_field,
)

MAX_APPS = 50

# -- requests --------------------------------------------------------------------------------


class TemplateCreate(Schema):
    """A template from `apps` (and `settings`) as given, or from an `environment`'s draft."""

    OPENAPI_RULES = {"oneOf": [{"required": ["apps"]}, {"required": ["environment"]}]}

    name = fields.String(required=True, validate=DNS_LABEL)
    description = fields.String(load_default="", validate=validate.Length(max=10_000))
    settings = settings_field(
        validate=bounded_document,
        metadata={"description": "default: the environment's, or none"},
    )
    apps = fields.List(
        fields.Nested(AppCreate),
        validate=validate.Length(1, MAX_APPS),
        metadata={"description": "as `POST /environments/{env}/apps` takes them"},
    )
    environment = fields.String(
        validate=validate.Length(1, 63),
        metadata={"description": "name or id of an environment whose draft to copy"},
    )

    @validates_schema
    def _one_source(self, data, **_kwargs) -> None:
        if ("apps" in data) == ("environment" in data):
            raise ValidationError("give either `apps` or `environment`", "apps")
        names = [app["name"] for app in data.get("apps", [])]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValidationError(f"app names must differ: {', '.join(twice)}", "apps")


class TemplateArgs(PageArgs):
    pass


class EnvironmentFromTemplate(Schema):
    name = fields.String(required=True, validate=DNS_LABEL)
    host = host_field()
    description = fields.String(validate=validate.Length(max=10_000))
    settings = settings_field(
        load_default=dict,
        validate=bounded_document,
        metadata={"description": "merged over the template's settings"},
    )
    parameters = fields.Dict(
        keys=fields.String(),
        values=parameters_field(),
        load_default=dict,
        metadata={"description": "by app: parameters merged over the template's (top-level keys)"},
    )


# -- responses -------------------------------------------------------------------------------


class TemplateApp(Schema):
    name = fields.String()
    package = fields.String()
    version = fields.String(allow_none=True, metadata={"description": "exact version or range"})
    parameters = fields.Dict(metadata={"description": 'x-secret values read "********"'})
    bindings = fields.Dict(keys=fields.String(), values=fields.String())
    problem = fields.String(allow_none=True, metadata={"description": PROBLEM})


class Template(Schema):
    id = fields.String()
    name = fields.String()
    tenant = fields.String()
    description = fields.String()
    source = fields.String(
        allow_none=True, metadata={"description": "the environment it was made from"}
    )
    settings = fields.Dict()
    apps = fields.List(fields.Nested(TemplateApp))
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class TemplateList(Schema):
    items = fields.List(fields.Nested(Template), required=True)
    next_cursor = fields.String(allow_none=True, required=True)
