"""Paging steps marked in the ledger (so any paging responder can find a page whose lease ran
out) and live processes (each responder, intake and worker says it is alive, per role).

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("step_ledger") as batch:
        batch.add_column(sa.Column("pages", sa.Boolean, nullable=False,
                                   server_default=sa.false()))
    op.create_index("ix_step_ledger_open_pages", "step_ledger", ["pages", "status"])
    op.create_table(
        "processes",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("host", sa.String(200), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False, index=True),
    )


def downgrade() -> None:
    op.drop_table("processes")
    op.drop_index("ix_step_ledger_open_pages", "step_ledger")
    with op.batch_alter_table("step_ledger") as batch:
        batch.drop_column("pages")
