"""import runs: progress of each import, for resuming and idempotent resends

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 09:00:00.000000
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('import_runs',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('api_key_id', sa.String(length=36), nullable=True),
    sa.Column('idempotency_key', sa.String(length=255), nullable=True),
    sa.Column('file_sha256', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('mode', sa.String(length=8), nullable=False),
    sa.Column('format', sa.String(length=8), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('steps_applied', sa.Integer(), nullable=False),
    sa.Column('applied_through_line', sa.BigInteger(), nullable=False),
    sa.Column('zeroed_through', sa.String(length=64), nullable=True),
    sa.Column('rows_applied', sa.BigInteger(), nullable=False),
    sa.Column('report', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('runner', sa.String(length=36), nullable=True),
    sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['api_key_id'], ['api_keys.id'], name=op.f('fk_import_runs_api_key_id_api_keys')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_import_runs')),
    sa.UniqueConstraint('api_key_id', 'idempotency_key', name='uq_import_runs_idempotency_key')
    )


def downgrade() -> None:
    op.drop_table('import_runs')
