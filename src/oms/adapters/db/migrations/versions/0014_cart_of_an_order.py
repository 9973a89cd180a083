"""the cart of an order: a store order's receipt reads the cart it was checked out from

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 15:00:00.000000
"""
from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = '0014'
down_revision: str | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_carts_order_id', 'carts', ['order_id'])


def downgrade() -> None:
    op.drop_index('ix_carts_order_id', table_name='carts')
