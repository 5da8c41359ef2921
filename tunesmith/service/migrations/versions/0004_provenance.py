"""Provenance and originality of each work (the signed manifest; the check against the training corpus).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("generations", sa.Column("provenance", sa.JSON(), nullable=True))
    op.add_column("generations", sa.Column("originality", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("generations") as batch:
        batch.drop_column("originality")
        batch.drop_column("provenance")
