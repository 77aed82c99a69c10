"""Lineage and realised outcome of each signal; the view shows them.

Adds, all nullable so that existing rows are kept as they are: the registry
alias the model was loaded by, the last price date and a hash of the feature
rows the prediction used, and, once the next close is known, the realised
return and whether the signal was right.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

READ_ONLY_ROLE = "goldsignals_readonly"


def _new_columns() -> list[sa.Column[Any]]:
    # Fresh objects each time: a Column belongs to the one table it joins.
    return [
        sa.Column("model_alias", sa.String(64), nullable=True),
        sa.Column("last_price_date", sa.Date, nullable=True),
        sa.Column("feature_hash", sa.String(64), nullable=True),
        sa.Column("realised_return", sa.Float, nullable=True),
        sa.Column("outcome_correct", sa.Boolean, nullable=True),
    ]


VIEW_0001 = """
CREATE VIEW latest_signals AS
SELECT s.ticker, s.as_of_date, s.signal, s.probability, s.model_name,
       s.model_version, s.mlflow_run_id, s.zenml_run_id, s.created_at
FROM signals AS s
WHERE s.as_of_date = (
    SELECT MAX(t.as_of_date) FROM signals AS t WHERE t.ticker = s.ticker
)
"""
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


def _create_view(definition: str) -> None:
    op.execute(definition)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"GRANT SELECT ON latest_signals TO {READ_ONLY_ROLE}")


def upgrade() -> None:
    # The view goes first: SQLite rebuilds the table to alter it.
    op.execute("DROP VIEW latest_signals")
    with op.batch_alter_table("signals") as batch:
        for column in _new_columns():
            batch.add_column(column)
    _create_view(VIEW_0002)


def downgrade() -> None:
    op.execute("DROP VIEW latest_signals")
    with op.batch_alter_table("signals") as batch:
        for column in reversed(_new_columns()):
            batch.drop_column(column.name)
    _create_view(VIEW_0001)
