"""provider calls carried out after commit; idempotent answers stored with their change;
refunds and voids on payments; shipments booked after commit

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 12:31:06.494500
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    op.create_table('provider_calls',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('idempotency_key', sa.String(length=200), nullable=False),
    sa.Column('order_id', sa.String(length=36), nullable=False),
    sa.Column('payment_id', sa.String(length=36), nullable=True),
    sa.Column('shipment_id', sa.String(length=36), nullable=True),
    sa.Column('provider', sa.String(length=64), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=True),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.String(length=300), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_provider_calls_order_id_orders')),
    sa.ForeignKeyConstraint(['payment_id'], ['payments.id'], name=op.f('fk_provider_calls_payment_id_payments')),
    sa.ForeignKeyConstraint(['shipment_id'], ['shipments.id'], name=op.f('fk_provider_calls_shipment_id_shipments')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_provider_calls')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_provider_calls_idempotency_key'))
    )
    with op.batch_alter_table('provider_calls', schema=None) as batch_op:
        batch_op.create_index('ix_provider_calls_due', ['status', 'next_attempt_at'], unique=False)
        batch_op.create_index('ix_provider_calls_payment', ['payment_id'], unique=False)
        batch_op.create_index('ix_provider_calls_shipment', ['shipment_id'], unique=False)

    # A key still marked running has no answer to keep: its request never finished.
    op.execute("DELETE FROM idempotency_keys WHERE response_status IS NULL")
    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.alter_column('response_status', existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column('response_headers', existing_type=JSON, nullable=False)
        batch_op.alter_column('response_body', existing_type=sa.Text(), nullable=False)
        batch_op.drop_column('status')
        batch_op.drop_column('locked_at')

    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('refunded_minor', sa.BigInteger(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('voided_minor', sa.BigInteger(), server_default='0', nullable=False))
        batch_op.drop_constraint(op.f('ck_payments_captured_within_amount'), type_='check')
        batch_op.create_check_constraint(op.f('ck_payments_captured_within_amount'), 'captured_minor + voided_minor <= amount_minor')
        batch_op.create_check_constraint(op.f('ck_payments_refunded_within_captured'), 'refunded_minor <= captured_minor')

    with op.batch_alter_table('shipments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('label_status', sa.String(length=12), nullable=True))
        batch_op.add_column(sa.Column('label_error', sa.String(length=300), nullable=True))
        batch_op.alter_column('tracking_number', existing_type=sa.String(length=100), nullable=True)
    # Shipments booked before: their carrier booking was made in the step itself.
    op.execute("UPDATE shipments SET label_status = 'booked' WHERE label IS NOT NULL")


def downgrade() -> None:
    op.execute("DELETE FROM shipments WHERE tracking_number IS NULL")
    with op.batch_alter_table('shipments', schema=None) as batch_op:
        batch_op.alter_column('tracking_number', existing_type=sa.String(length=100), nullable=False)
        batch_op.drop_column('label_error')
        batch_op.drop_column('label_status')

    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_payments_refunded_within_captured'), type_='check')
        batch_op.drop_constraint(op.f('ck_payments_captured_within_amount'), type_='check')
        batch_op.create_check_constraint(op.f('ck_payments_captured_within_amount'), 'captured_minor <= amount_minor')
        batch_op.drop_column('voided_minor')
        batch_op.drop_column('refunded_minor')

    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('locked_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('status', sa.String(length=12), nullable=False, server_default='done'))
        batch_op.alter_column('response_body', existing_type=sa.Text(), nullable=True)
        batch_op.alter_column('response_headers', existing_type=JSON, nullable=True)
        batch_op.alter_column('response_status', existing_type=sa.Integer(), nullable=True)

    with op.batch_alter_table('provider_calls', schema=None) as batch_op:
        batch_op.drop_index('ix_provider_calls_shipment')
        batch_op.drop_index('ix_provider_calls_payment')
        batch_op.drop_index('ix_provider_calls_due')
    op.drop_table('provider_calls')
