"""store carts: carts, holds that expire, tax rates and the retailer's settings

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 09:00:00.000000
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    with op.batch_alter_table('reservations') as batch:
        batch.add_column(sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True))
    op.create_index('ix_reservations_expires_at', 'reservations', ['expires_at'],
                    postgresql_where=sa.text('expires_at IS NOT NULL'),
                    sqlite_where=sa.text('expires_at IS NOT NULL'))
    op.create_table('settings',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('value', JSON, nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_settings'))
    )
    op.create_table('tax_rates',
    sa.Column('country', sa.String(length=2), nullable=False),
    sa.Column('region', sa.String(length=100), nullable=False),
    sa.Column('tax_class', sa.String(length=64), nullable=False),
    sa.Column('rate', sa.String(length=16), nullable=False),
    sa.Column('prices_include_tax', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('country', 'region', 'tax_class', name=op.f('pk_tax_rates'))
    )
    op.create_table('carts',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('location_id', sa.String(length=64), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_by_key', sa.String(length=36), nullable=False),
    sa.Column('document', JSON, nullable=False),
    sa.Column('holds_expire_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['location_id'], ['locations.id'], name=op.f('fk_carts_location_id_locations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_carts'))
    )
    op.create_index('ix_carts_location_created', 'carts', ['location_id', 'created_at'])


def downgrade() -> None:
    op.drop_index('ix_carts_location_created', table_name='carts')
    op.drop_table('carts')
    op.drop_table('tax_rates')
    op.drop_table('settings')
    op.drop_index('ix_reservations_expires_at', table_name='reservations')
    with op.batch_alter_table('reservations') as batch:
        batch.drop_column('expires_at')
