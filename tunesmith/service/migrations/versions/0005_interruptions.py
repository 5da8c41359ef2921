"""Interruptions: how many times a server stop left a job running (recovery retries once, then fails it).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("generations", "analyses"):
        op.add_column(table, sa.Column("interruptions", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    for table in ("generations", "analyses"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("interruptions")
