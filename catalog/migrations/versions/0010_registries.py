"""registries: a tenant's credentials for private registries, and the servers they guard

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 20:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "registry_credentials",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "tenant_id", sa.String(32), sa.ForeignKey("tenants.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("server", sa.String(255), nullable=False),
        sa.Column("username", sa.String(255), nullable=False),
        sa.Column("password", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(32)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("tenant_id", "server", name="uq_registry_credentials_server"),
    )  # fmt: skip
    op.create_index("ix_registry_credentials_server", "registry_credentials", ["server"])
    op.create_table(
        "guarded_registries",
        sa.Column("server", sa.String(255), primary_key=True),
        sa.Column("repository", sa.String(255), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("guarded_registries")
    op.drop_table("registry_credentials")
