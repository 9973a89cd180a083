"""fulfilment requests, shipments, tracking, payment capture

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 04:37:15.775937
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from oms.domain.ids import new_webhook_secret

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('fulfillment_requests',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('order_id', sa.String(length=36), nullable=False),
    sa.Column('location_id', sa.String(length=64), nullable=False),
    sa.Column('type', sa.String(length=20), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('placed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('available_on', sa.Date(), nullable=True),
    sa.Column('carrier', sa.String(length=64), nullable=True),
    sa.Column('parcels', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('collected_by', sa.String(length=200), nullable=True),
    sa.Column('reason', sa.String(length=300), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ready_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('notify_state', sa.String(length=12), nullable=True),
    sa.Column('notify_attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('notify_next_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('notify_last_error', sa.String(length=1000), nullable=True),
    sa.ForeignKeyConstraint(['location_id'], ['locations.id'], name=op.f('fk_fulfillment_requests_location_id_locations')),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_fulfillment_requests_order_id_orders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fulfillment_requests'))
    )
    with op.batch_alter_table('fulfillment_requests', schema=None) as batch_op:
        batch_op.create_index('ix_fulfillment_requests_notify', ['notify_state', 'notify_next_at'], unique=False)
        batch_op.create_index('ix_fulfillment_requests_order', ['order_id'], unique=False)
        batch_op.create_index('ix_fulfillment_requests_queue', ['location_id', 'status', 'placed_at'], unique=False)
        batch_op.create_index('ix_fulfillment_requests_status_ready', ['status', 'ready_at'], unique=False)

    op.create_table('fulfillment_request_items',
    sa.Column('request_id', sa.String(length=36), nullable=False),
    sa.Column('item_id', sa.String(length=36), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('reason', sa.String(length=300), nullable=True),
    sa.Column('shipment_id', sa.String(length=36), nullable=True),
    sa.ForeignKeyConstraint(['item_id'], ['order_items.id'], name=op.f('fk_fulfillment_request_items_item_id_order_items')),
    sa.ForeignKeyConstraint(['request_id'], ['fulfillment_requests.id'], name=op.f('fk_fulfillment_request_items_request_id_fulfillment_requests')),
    sa.PrimaryKeyConstraint('request_id', 'item_id', name=op.f('pk_fulfillment_request_items'))
    )
    with op.batch_alter_table('fulfillment_request_items', schema=None) as batch_op:
        batch_op.create_index('ix_fulfillment_request_items_item', ['item_id'], unique=False)

    op.create_table('shipments',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('request_id', sa.String(length=36), nullable=False),
    sa.Column('order_id', sa.String(length=36), nullable=False),
    sa.Column('location_id', sa.String(length=64), nullable=False),
    sa.Column('carrier', sa.String(length=64), nullable=False),
    sa.Column('tracking_number', sa.String(length=100), nullable=False),
    sa.Column('tracking_url', sa.String(length=2000), nullable=True),
    sa.Column('label_format', sa.String(length=16), nullable=True),
    sa.Column('label', sa.Text(), nullable=True),
    sa.Column('parcels', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('item_ids', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['location_id'], ['locations.id'], name=op.f('fk_shipments_location_id_locations')),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_shipments_order_id_orders')),
    sa.ForeignKeyConstraint(['request_id'], ['fulfillment_requests.id'], name=op.f('fk_shipments_request_id_fulfillment_requests')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_shipments'))
    )
    with op.batch_alter_table('shipments', schema=None) as batch_op:
        batch_op.create_index('ix_shipments_order', ['order_id'], unique=False)
        batch_op.create_index('ix_shipments_request', ['request_id'], unique=False)

    op.create_table('tracking_events',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('shipment_id', sa.String(length=36), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('description', sa.String(length=500), nullable=True),
    sa.Column('place', sa.String(length=200), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['shipment_id'], ['shipments.id'], name=op.f('fk_tracking_events_shipment_id_shipments')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tracking_events')),
    sa.UniqueConstraint('shipment_id', 'status', 'occurred_at', name='uq_tracking_events_update')
    )
    with op.batch_alter_table('locations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('fulfillment_callback_url', sa.String(length=2000), nullable=True))
        batch_op.add_column(sa.Column('callback_secret', sa.String(length=128), nullable=True))

    with op.batch_alter_table('order_items', schema=None) as batch_op:
        batch_op.add_column(sa.Column('fulfillment_request_id', sa.String(length=36), nullable=True))

    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('captured_minor', sa.BigInteger(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('failure_reason', sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column('version', sa.Integer(), server_default='1', nullable=False))
        batch_op.alter_column('status',
               existing_type=sa.VARCHAR(length=16),
               type_=sa.String(length=20),
               existing_nullable=False)
        batch_op.create_check_constraint(op.f('ck_payments_captured_within_amount'),
                                         'captured_minor <= amount_minor')

    # What the shop's system captured before the order came is not captured again.
    op.execute("UPDATE payments SET captured_minor = amount_minor WHERE status = 'captured'")
    # Every location gets the secret its DC or 3PL callbacks are signed with.
    locations = sa.table('locations', sa.column('id', sa.String),
                         sa.column('callback_secret', sa.String))
    conn = op.get_bind()
    for (location_id,) in conn.execute(sa.select(locations.c.id)).all():
        conn.execute(locations.update().where(locations.c.id == location_id)
                     .values(callback_secret=new_webhook_secret()))


def downgrade() -> None:
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_payments_captured_within_amount'), type_='check')
        batch_op.alter_column('status',
               existing_type=sa.String(length=20),
               type_=sa.VARCHAR(length=16),
               existing_nullable=False)
        batch_op.drop_column('version')
        batch_op.drop_column('failure_reason')
        batch_op.drop_column('captured_minor')

    with op.batch_alter_table('order_items', schema=None) as batch_op:
        batch_op.drop_column('fulfillment_request_id')

    with op.batch_alter_table('locations', schema=None) as batch_op:
        batch_op.drop_column('callback_secret')
        batch_op.drop_column('fulfillment_callback_url')

    op.drop_table('tracking_events')
    with op.batch_alter_table('shipments', schema=None) as batch_op:
        batch_op.drop_index('ix_shipments_request')
        batch_op.drop_index('ix_shipments_order')

    op.drop_table('shipments')
    with op.batch_alter_table('fulfillment_request_items', schema=None) as batch_op:
        batch_op.drop_index('ix_fulfillment_request_items_item')

    op.drop_table('fulfillment_request_items')
    with op.batch_alter_table('fulfillment_requests', schema=None) as batch_op:
        batch_op.drop_index('ix_fulfillment_requests_status_ready')
        batch_op.drop_index('ix_fulfillment_requests_queue')
        batch_op.drop_index('ix_fulfillment_requests_order')
        batch_op.drop_index('ix_fulfillment_requests_notify')

    op.drop_table('fulfillment_requests')
