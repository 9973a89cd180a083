"""order search by external id uses an index

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 12:00:00.000000
"""
from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # Built without blocking writes to a large orders table.
        with op.get_context().autocommit_block():
            op.create_index('ix_orders_external_id', 'orders', ['external_id'], unique=False,
                            postgresql_concurrently=True, if_not_exists=True)
    else:
        op.create_index('ix_orders_external_id', 'orders', ['external_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_orders_external_id', table_name='orders')
