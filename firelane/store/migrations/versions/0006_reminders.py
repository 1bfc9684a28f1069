"""Action-item reminders: when each item was last reminded and escalated, and every reminder
sent (what, to whom, when).

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("action_items") as batch:
        batch.add_column(sa.Column("reminded_at", sa.DateTime(timezone=True)))
        batch.add_column(sa.Column("escalated_at", sa.DateTime(timezone=True)))
        batch.add_column(sa.Column("closed_at", sa.DateTime(timezone=True)))
    op.create_table(
        "reminders",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("item_id", sa.String(32), sa.ForeignKey("action_items.id"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("sent_to", sa.String(200), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ok", sa.Boolean, nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_index("ix_reminders_item_id", "reminders", ["item_id"])


def downgrade() -> None:
    op.drop_table("reminders")
    with op.batch_alter_table("action_items") as batch:
        batch.drop_column("closed_at")
        batch.drop_column("escalated_at")
        batch.drop_column("reminded_at")
