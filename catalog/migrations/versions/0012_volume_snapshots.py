"""volume snapshots: copies of named volumes made before a revision changed their data

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 10:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "volume_snapshots",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "deployment_id", sa.String(32), sa.ForeignKey("deployments.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "environment_id", sa.String(32), sa.ForeignKey("environments.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("app", sa.String(63), nullable=False),
        sa.Column("service", sa.String(63), nullable=False),
        sa.Column("volume", sa.String(63), nullable=False),
        sa.Column("source_volume", sa.String(255), nullable=False),
        sa.Column("snapshot_volume", sa.String(255), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("deployment_id", "app", "volume", name="uq_volume_snapshots_volume"),
    )  # fmt: skip
    op.create_index("ix_volume_snapshots_env", "volume_snapshots", ["environment_id", "revision"])


def downgrade() -> None:
    op.drop_index("ix_volume_snapshots_env", table_name="volume_snapshots")
    op.drop_table("volume_snapshots")
