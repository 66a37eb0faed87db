"""search terms: the lexicon and postings behind `q`, the short name a search ranks by

A trigram index over whole search texts costs in proportion to the catalog (a rare word read
four times as much at 100,000 packages as at 10,000); searches now look words up in a small
lexicon of terms and read the postings of the few packages holding them
(catalog.services.package_search). The packages already stored are indexed here, a batch at
a time, and the trigram index moves from the texts to the lexicon (PostgreSQL; declared here
only, not on the model, as 0002's was).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 12:30:00.000000
"""

import sqlalchemy as sa
from alembic import op

from catalog.services.package_search import index_packages, short_name

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

BATCH = 1000


def _backfill(connection) -> None:
    packages = sa.table(
        "packages", sa.column("id"), sa.column("name"), sa.column("search_text"),
        sa.column("short_name"),
    )  # fmt: skip
    after = ""
    while True:
        rows = connection.execute(
            sa.select(packages.c.id, packages.c.name, packages.c.search_text)
            .where(packages.c.id > after)
            .order_by(packages.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        connection.execute(
            packages.update()
            .where(packages.c.id == sa.bindparam("package_id"))
            .values(short_name=sa.bindparam("short")),
            [{"package_id": row.id, "short": short_name(row.name)} for row in rows],
        )
        index_packages(connection, [(row.name, row.search_text) for row in rows])
        after = rows[-1].id


def upgrade() -> None:
    op.create_table(
        "search_terms",
        sa.Column("term", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("term"),
    )
    op.create_table(
        "package_terms",
        sa.Column("term", sa.String(length=64), nullable=False),
        sa.Column("package_name", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(["package_name"], ["packages.name"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("term", "package_name"),
    )
    with op.batch_alter_table("package_terms", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_package_terms_package_name"), ["package_name"], unique=False
        )
    with op.batch_alter_table("packages", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "short_name",
                sa.String(length=128).with_variant(
                    sa.String(length=128, collation="C"), "postgresql"
                ),
                nullable=False,
                server_default="",
            )
        )
    _backfill(op.get_bind())
    with op.batch_alter_table("packages", schema=None) as batch_op:
        batch_op.create_index("ix_packages_short_name", ["short_name", "name"], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute(
            "CREATE INDEX ix_search_terms_trgm ON search_terms USING gin (term gin_trgm_ops)"
        )
        op.execute("DROP INDEX IF EXISTS ix_packages_search_trgm")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE INDEX IF NOT EXISTS ix_packages_search_trgm "
            "ON packages USING gin (search_text gin_trgm_ops)"
        )
    with op.batch_alter_table("packages", schema=None) as batch_op:
        batch_op.drop_index("ix_packages_short_name")
        batch_op.drop_column("short_name")
    op.drop_table("package_terms")
    op.drop_table("search_terms")
