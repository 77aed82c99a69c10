"""The view latest_signals keeps one row per ticker.

Until now it returned every row of a ticker's newest as-of date, so two model
versions that wrote the same day (a champion change and a re-run) gave two
rows. It now returns one row per ticker: the newest as-of date and, among
that date's rows, the most recently written (``created_at``, then ``id``).
The columns stay those of revision 0002; no table row is touched.

The index on (ticker, as_of_date DESC) gives way to one that also orders by
created_at DESC and id DESC: the view then reads it in order instead of
sorting every row, on SQLite and Postgres alike (without id, the tiebreak
still needs a sort). It serves whatever the old index served.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

READ_ONLY_ROLE = "goldsignals_readonly"
INDEX_0001 = "ix_signals_ticker_date"
INDEX_0004 = "ix_signals_ticker_latest"
VIEW_0002 = """
CREATE VIEW latest_signals AS
SELECT s.ticker, s.as_of_date, s.signal, s.probability, s.model_name,
       s.model_version, s.model_alias, s.mlflow_run_id, s.zenml_run_id,
       s.last_price_date, s.feature_hash, s.created_at
FROM signals AS s
WHERE s.as_of_date = (
    SELECT MAX(t.as_of_date) FROM signals AS t WHERE t.ticker = s.ticker
)
"""
VIEW_0004 = """
CREATE VIEW latest_signals AS
SELECT r.ticker, r.as_of_date, r.signal, r.probability, r.model_name,
       r.model_version, r.model_alias, r.mlflow_run_id, r.zenml_run_id,
       r.last_price_date, r.feature_hash, r.created_at
FROM (
    SELECT s.ticker, s.as_of_date, s.signal, s.probability, s.model_name,
           s.model_version, s.model_alias, s.mlflow_run_id, s.zenml_run_id,
           s.last_price_date, s.feature_hash, s.created_at,
           ROW_NUMBER() OVER (
               PARTITION BY s.ticker
               ORDER BY s.as_of_date DESC, s.created_at DESC, s.id DESC
           ) AS newest_first
    FROM signals AS s
) AS r
WHERE r.newest_first = 1
"""


def _replace_view(definition: str) -> None:
    # Dropping the view drops its grants on Postgres, so they are given again.
    op.execute("DROP VIEW latest_signals")
    op.execute(definition)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"GRANT SELECT ON latest_signals TO {READ_ONLY_ROLE}")


def upgrade() -> None:
    op.drop_index(INDEX_0001, table_name="signals")
    newest_first = ("as_of_date DESC", "created_at DESC", "id DESC")
    op.create_index(
        INDEX_0004, "signals", ["ticker", *(sa.text(key) for key in newest_first)]
    )
    _replace_view(VIEW_0004)


def downgrade() -> None:
    _replace_view(VIEW_0002)
    op.drop_index(INDEX_0004, table_name="signals")
    op.create_index(INDEX_0001, "signals", ["ticker", sa.text("as_of_date DESC")])
