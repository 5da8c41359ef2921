"""Leases: which worker runs a job (``lease_owner``) and until when it has said so (``lease_expires``).

A worker renews the leases of its running jobs (a heartbeat); a job whose lease ran out (its host died or was cut
off) is queued again by another worker, and the old worker's late writes are refused (they name its lease).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("generations", "analyses"):
        op.add_column(table, sa.Column("lease_owner", sa.String(80), nullable=True))
        op.add_column(table, sa.Column("lease_expires", sa.DateTime(timezone=True), nullable=True))
        op.create_index(f"ix_{table}_lease_expires", table, ["lease_expires"])


def downgrade() -> None:
    for table in ("generations", "analyses"):
        op.drop_index(f"ix_{table}_lease_expires", table)
        with op.batch_alter_table(table) as batch:
            batch.drop_column("lease_expires")
            batch.drop_column("lease_owner")
