"""The stored price history, next to the signals it feeds.

One row per ticker and exchange date with the daily bar. The loader only
ever inserts new dates or replaces the bar of a refetched date, in one
transaction per run; it never deletes.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

READ_ONLY_ROLE = "goldsignals_readonly"


def upgrade() -> None:
    op.create_table(
        "prices",
        sa.Column("ticker", sa.String(32), primary_key=True),
        sa.Column("date", sa.Date, primary_key=True),
        sa.Column("open", sa.Float, nullable=False),
        sa.Column("high", sa.Float, nullable=False),
        sa.Column("low", sa.Float, nullable=False),
        sa.Column("close", sa.Float, nullable=False),
        sa.Column("volume", sa.Float, nullable=True),
        sa.CheckConstraint(
            "open > 0 AND high > 0 AND low > 0 AND close > 0",
            name="ck_prices_positive",
        ),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"GRANT SELECT ON prices TO {READ_ONLY_ROLE}")


def downgrade() -> None:
    op.drop_table("prices")
