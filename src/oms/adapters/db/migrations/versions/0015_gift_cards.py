"""gift cards: issued with a balance, spent toward store carts

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 16:00:00.000000
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0015'
down_revision: str | None = '0014'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('gift_cards',
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('initial_minor', sa.BigInteger(), nullable=False),
    sa.Column('balance_minor', sa.BigInteger(), nullable=False),
    sa.Column('issued_by_key', sa.String(length=36), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('balance_minor >= 0',
                       name=op.f('ck_gift_cards_balance_not_negative')),
    sa.CheckConstraint('balance_minor <= initial_minor',
                       name=op.f('ck_gift_cards_balance_within_initial')),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_gift_cards'))
    )


def downgrade() -> None:
    op.drop_table('gift_cards')
