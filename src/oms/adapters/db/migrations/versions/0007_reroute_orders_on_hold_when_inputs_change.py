"""orders on hold are routed again when what routing reads changes, else after a backoff

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for table in ('stock_levels', 'future_stock'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('atp_rises', sa.Integer(), server_default='0',
                                          nullable=False))

    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('routing_inputs', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('reroute_after', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('reroute_wait_seconds', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_column('reroute_wait_seconds')
        batch_op.drop_column('reroute_after')
        batch_op.drop_column('routing_inputs')

    for table in ('future_stock', 'stock_levels'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column('atp_rises')
