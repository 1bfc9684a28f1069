"""Weekly action-item digests (one row per team and ISO week, so a digest goes out once) and
report runs (one per incident and resolution, so a resolved incident gets one report).

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "digests",
        sa.Column("team", sa.String(200), primary_key=True),
        sa.Column("week", sa.String(10), primary_key=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "report_runs",
        sa.Column("incident_id", sa.String(32), sa.ForeignKey("incidents.id"),
                  primary_key=True),
        sa.Column("generation", sa.Integer, primary_key=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("report_runs")
    op.drop_table("digests")
