"""pre-order reservations of future stock

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('future_stock', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reserved', sa.Integer(), server_default='0', nullable=False))
        batch_op.create_check_constraint(op.f('ck_future_stock_reserved_not_negative'),
                                         'reserved >= 0')

    with op.batch_alter_table('reservations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('available_on', sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('reservations', schema=None) as batch_op:
        batch_op.drop_column('available_on')

    with op.batch_alter_table('future_stock', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_future_stock_reserved_not_negative'), type_='check')
        batch_op.drop_column('reserved')

