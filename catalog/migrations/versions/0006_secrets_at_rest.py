"""secret parameters encrypted at rest

Secrets stored in clear before this revision (draft apps, templates, deployment snapshots,
action tasks) are encrypted with the first key of CATALOG_SECRET_KEY when one is configured
(or its key file exists). Without a key they stay as they are: the catalog reads them as
before, encrypts each one the next time it is written, and `catalogctl admin rotate-secrets`
encrypts all that remain once a key is set.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 13:00:00.000000
"""

import logging

from alembic import op

from catalog import config
from catalog.secretbox import box_from
from catalog.secretstore import reseal_all

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")


def upgrade() -> None:
    box = box_from(config.load())
    if not box.ready:
        log.warning(
            "CATALOG_SECRET_KEY is not set: secrets stored in clear stay so until "
            "`catalogctl admin rotate-secrets` runs with a key"
        )
        return
    counts = reseal_all(op.get_bind(), box)
    log.info("secret parameters: %(sealed)d encrypted, %(rotated)d already were", counts)


def downgrade() -> None:
    """Nothing: the encrypted values stay encrypted (this revision changes no table)."""
