"""One open incident per alert fingerprint, enforced by the database.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "open_fingerprints",
        sa.Column("fingerprint", sa.String(128), primary_key=True),
        sa.Column("incident_id", sa.String(32), sa.ForeignKey("incidents.id"), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
    )
    op.create_index("ix_open_fingerprints_incident_id", "open_fingerprints", ["incident_id"])


def downgrade() -> None:
    op.drop_table("open_fingerprints")
