"""Signals table, its latest-signal index and view, a read-only role.

Revision ID: 0001
Revises:
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

READ_ONLY_ROLE = "goldsignals_readonly"

LATEST_VIEW = """
CREATE VIEW latest_signals AS
SELECT s.ticker, s.as_of_date, s.signal, s.probability, s.model_name,
       s.model_version, s.mlflow_run_id, s.zenml_run_id, s.created_at
FROM signals AS s
WHERE s.as_of_date = (
    SELECT MAX(t.as_of_date) FROM signals AS t WHERE t.ticker = s.ticker
)
"""


def upgrade() -> None:
    op.create_table(
        "signals",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ticker", sa.String(32), nullable=False),
        sa.Column("as_of_date", sa.Date, nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("signal", sa.String(4), nullable=False),
        sa.Column("probability", sa.Float, nullable=False),
        sa.Column("model_name", sa.String(256), nullable=False),
        sa.Column("mlflow_run_id", sa.String(64), nullable=True),
        sa.Column("zenml_run_id", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint(
            "ticker",
            "as_of_date",
            "model_version",
            name="uq_signals_ticker_date_version",
        ),
        sa.CheckConstraint(
            "signal IN ('BUY', 'SELL', 'HOLD')", name="ck_signals_signal_value"
        ),
        sa.CheckConstraint(
            "probability >= 0 AND probability <= 1", name="ck_signals_probability"
        ),
    )
    op.create_index(
        "ix_signals_ticker_date", "signals", ["ticker", sa.text("as_of_date DESC")]
    )
    op.execute(LATEST_VIEW)
    if op.get_bind().dialect.name == "postgresql":
        _grant_read_only()


def _grant_read_only() -> None:
    op.execute(
        f"""
        DO $$ BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{READ_ONLY_ROLE}')
            THEN CREATE ROLE {READ_ONLY_ROLE} NOLOGIN;
            END IF;
        END $$
        """
    )
    op.execute(f"GRANT USAGE ON SCHEMA public TO {READ_ONLY_ROLE}")
    op.execute(f"GRANT SELECT ON signals, latest_signals TO {READ_ONLY_ROLE}")


def downgrade() -> None:
    op.execute("DROP VIEW latest_signals")
    op.drop_index("ix_signals_ticker_date", table_name="signals")
    op.drop_table("signals")
