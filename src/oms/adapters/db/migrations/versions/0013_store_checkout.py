"""store checkout: shipping rates, a store's sale on its order, pickup per item

The built-in rates adapter's table; an order sold in a store keeps the store and the key
that sold it, an item collected at a store other than the rest of its order says which, and
a cart keeps the order it became.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 12:00:00.000000
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0013'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('shipping_rates',
    sa.Column('country', sa.String(length=2), nullable=False),
    sa.Column('service_level', sa.String(length=16), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('carrier', sa.String(length=64), nullable=False),
    sa.Column('price_minor', sa.BigInteger(), nullable=False),
    sa.Column('free_above_minor', sa.BigInteger(), nullable=True),
    sa.Column('transit_days', sa.Integer(), nullable=False),
    sa.Column('cutoff', sa.String(length=5), nullable=False),
    sa.PrimaryKeyConstraint('country', 'service_level', 'currency',
                            name=op.f('pk_shipping_rates'))
    )
    with op.batch_alter_table('orders') as batch:
        batch.add_column(sa.Column('sold_at_location_id', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('sold_by_key', sa.String(length=36), nullable=True))
    with op.batch_alter_table('order_items') as batch:
        batch.add_column(sa.Column('pickup_location_id', sa.String(length=64), nullable=True))
    with op.batch_alter_table('carts') as batch:
        batch.add_column(sa.Column('order_id', sa.String(length=36), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('carts') as batch:
        batch.drop_column('order_id')
    with op.batch_alter_table('order_items') as batch:
        batch.drop_column('pickup_location_id')
    with op.batch_alter_table('orders') as batch:
        batch.drop_column('sold_by_key')
        batch.drop_column('sold_at_location_id')
    op.drop_table('shipping_rates')
