"""Volume snapshots of an environment."""

from __future__ import annotations

from marshmallow import Schema, fields

from catalog.schemas.common import PageArgs


class Snapshot(Schema):
    revision = fields.Integer(metadata={"description": "The revision that made it."})
    app = fields.String()
    service = fields.String(metadata={"description": "The replaced service it was made for."})
    volume = fields.String(metadata={"description": "The package's volume name."})
    source_volume = fields.String(metadata={"description": "The engine volume it copies."})
    snapshot_volume = fields.String(metadata={"description": "The engine volume holding it."})
    size_bytes = fields.Integer(metadata={"description": "The copy's size (du -sb)."})
    seconds = fields.Float(metadata={"description": "How long the copy took."})
    status = fields.String(metadata={"description": "kept, restored, failed or pruned."})
    detail = fields.String(metadata={"description": "What failed, for a failed snapshot."})
    created_at = fields.DateTime()


SnapshotArgs = PageArgs


class SnapshotList(Schema):
    items = fields.List(fields.Nested(Snapshot), required=True)
    next_cursor = fields.String(allow_none=True, required=True)
