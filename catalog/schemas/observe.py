"""Logs, actions and tasks."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from catalog.schemas.environments import parameters_field


class LogArgs(Schema):
    service = fields.String(load_default=None, validate=validate.Length(1, 63))
    tail = fields.Integer(load_default=100, validate=validate.Range(0, 10_000))
    follow = fields.Boolean(load_default=False)


class ActionRun(Schema):
    service = fields.String(
        load_default=None,
        validate=validate.Length(1, 63),
        metadata={"description": "Built-in actions only: one service instead of the whole app."},
    )
    parameters = parameters_field(load_default=dict)


class Task(Schema):
    """An action's run; its parameters are not shown (they may hold secrets)."""

    id = fields.String()
    app = fields.String()
    service = fields.String(allow_none=True)
    action = fields.String()
    status = fields.String()
    exit_code = fields.Integer(allow_none=True)
    output = fields.String(
        metadata={
            "description": "The command's output: its first and last 4 KiB when longer, with "
            "a line saying how much was cut between them."
        }
    )
    output_cut = fields.Integer(
        metadata={"description": "Bytes of the output left out of `output` (0: it is whole)."}
    )
    error = fields.String()
    created_at = fields.DateTime()
    started_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)
