"""docker hosts

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 05:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hosts",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("public_host", sa.String(length=255), nullable=False),
        sa.Column("docker_url", sa.String(length=255), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    with op.batch_alter_table("environments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("host_id", sa.String(length=32), nullable=True))
        batch_op.create_index(batch_op.f("ix_environments_host_id"), ["host_id"], unique=False)
        batch_op.create_foreign_key("fk_environments_host_id", "hosts", ["host_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("environments", schema=None) as batch_op:
        batch_op.drop_constraint("fk_environments_host_id", type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_environments_host_id"))
        batch_op.drop_column("host_id")
    op.drop_table("hosts")
