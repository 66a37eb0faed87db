"""Deployments and their events."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from catalog.schemas.common import PageArgs


class DeploymentCreate(Schema):
    from_revision = fields.Integer(
        load_default=None,
        validate=validate.Range(min=1),
        metadata={"description": "Deploy this earlier revision's snapshot again (roll back)."},
    )


class PlanStep(Schema):
    action = fields.String()
    app = fields.String()
    service = fields.String()
    replica = fields.Integer()
    container = fields.String(allow_none=True)
    reason = fields.String()


class Event(Schema):
    id = fields.Integer()
    revision = fields.Integer(allow_none=True)
    time = fields.DateTime(attribute="created_at")
    level = fields.String()
    app = fields.String(allow_none=True)
    service = fields.String(allow_none=True)
    message = fields.String()


class Deployment(Schema):
    revision = fields.Integer()
    status = fields.String()
    from_revision = fields.Integer(allow_none=True)
    cancel_requested = fields.Boolean()
    attempts = fields.Integer()
    error = fields.String()
    apps = fields.Function(
        lambda d: [{"name": a["name"], "package": a["package"], "version": a["version"]}
                   for a in d.spec.get("apps", [])]
    )  # fmt: skip
    plan = fields.List(fields.Nested(PlanStep))
    created_at = fields.DateTime()
    started_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)


class DeploymentDetail(Deployment):
    events = fields.List(fields.Nested(Event))


class DeploymentList(Schema):
    items = fields.List(fields.Nested(Deployment), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


class EventArgs(Schema):
    after = fields.Integer(load_default=0, validate=validate.Range(min=0))
    revision = fields.Integer(load_default=None, validate=validate.Range(min=1))
    follow = fields.Boolean(load_default=False)
    limit = fields.Integer(load_default=200, validate=validate.Range(1, 1000))


class EventList(Schema):
    items = fields.List(fields.Nested(Event), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


DeploymentArgs = PageArgs


class PlanChange(Schema):
    app = fields.String(allow_none=True)
    service = fields.String(allow_none=True)
    replica = fields.Integer(allow_none=True)
    action = fields.String(metadata={"description": "create, replace, remove or keep"})
    reasons = fields.List(
        fields.String(),
        metadata={"description": "Why: the planner's reason, then each key that differs from "
                  "the running revision (version, parameter, setting, binding, image, "
                  "environment variable, file); never a value"},
    )  # fmt: skip


class PlanPreview(Schema):
    revision = fields.Integer(metadata={"description": "The revision a deploy now would make"})
    changes = fields.List(fields.Nested(PlanChange), required=True)
    summary = fields.Function(
        lambda p: {action: p.count(action) for action in ("create", "replace", "remove", "keep")}
    )
