"""routing runs keep a compact account and their inputs, not every consideration

A run kept a consideration for every item at every location (1,500 of them for three items
over 500 locations). It now keeps, per item, the location chosen, the few best passed over
and counts per reason (`decisions`), and the inputs that tell any location's part again
(`inputs`). Runs kept before are converted: their decisions are taken from their
considerations, which they keep as their inputs, so any location's part is still shown as it
was recorded.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 10:00:00.000000
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')
BATCH = 500

#: The reasons routing has given, by how they begin, with their code.
REASONS = (
    ("chosen:", "chosen"),
    ("location is inactive", "inactive"),
    ("location rejected these items before", "rejected_before"),
    ("a pickup item goes only to its pickup store", "not_the_pickup_store"),
    ("location does not offer pickup", "no_pickup"),
    ("location does not ship", "no_shipping"),
    ("the order names ", "not_the_named_location"),
    ("not in the routing rule for ", "not_in_rule"),
    ("not enough ", "not_enough_atp"),
    ("its ATP went to other items of the order", "atp_went_to_other_items"),
    ("another location takes more of the order", "takes_less_of_the_order"),
    ("later rule group ", "later_rule_group"),
    ("lower priority ", "lower_priority"),
    ("farther ", "farther"),
    ("less ATP left after the order", "less_atp_left"),
)
#: Passed over by the ranking: these could take the item.
RANKED = ("later_rule_group", "lower_priority", "farther", "less_atp_left",
          "takes_less_of_the_order")
ALTERNATIVES = 3

runs = sa.table(
    'routing_runs',
    sa.column('id', sa.String),
    sa.column('assignments', JSON),
    sa.column('on_hold', JSON),
    sa.column('considerations', JSON),
    sa.column('decisions', JSON),
    sa.column('inputs', JSON),
)


def _code(reason: str) -> str:
    for start, code in REASONS:
        if reason.startswith(start):
            return code
    raise RuntimeError(f"a routing run gives a reason no routing gave: {reason!r}")


def _decisions(considerations: list[dict[str, Any]], assignments: dict[str, str],
               on_hold: dict[str, str]) -> list[dict[str, Any]]:
    item_ids = list(dict.fromkeys([*(c["item_id"] for c in considerations), *assignments,
                                   *on_hold]))
    decisions = []
    for item_id in item_ids:
        mine = [c for c in considerations if c["item_id"] == item_id]
        chosen = next((c for c in mine if c["verdict"] == "chosen"), None)
        lost = [c for c in mine if c is not chosen]
        # Kept in rank order; those that could take fewer of the order lost to the rest.
        ranked = sorted((c for c in lost if c["code"] in RANKED),
                        key=lambda c: c["code"] == "takes_less_of_the_order")
        decisions.append({
            "item_id": item_id,
            "location_id": chosen["location_id"] if chosen else None,
            "reason": chosen["reason"] if chosen else on_hold.get(item_id, "not routed"),
            "score": None,
            "alternatives": [{"location_id": c["location_id"], "code": c["code"],
                              "reason": c["reason"], "score": None}
                             for c in ranked[:ALTERNATIVES]],
            "not_chosen": dict(sorted(Counter(c["code"] for c in lost).items())),
        })
    return decisions


def _batches(conn: sa.Connection, columns: Sequence[str]) -> Iterator[list[Any]]:
    after = ''
    while True:
        rows = conn.execute(
            sa.select(*(runs.c[name] for name in columns)).where(runs.c.id > after)
            .order_by(runs.c.id).limit(BATCH)).all()
        if not rows:
            return
        yield list(rows)
        after = rows[-1].id


def upgrade() -> None:
    with op.batch_alter_table('routing_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('decisions', JSON, nullable=True))
        batch_op.add_column(sa.Column('inputs', JSON, nullable=True))

    conn = op.get_bind()
    for rows in _batches(conn, ('id', 'assignments', 'on_hold', 'considerations')):
        for row in rows:
            considerations = [{**c, "code": _code(c["reason"]), "score": None}
                              for c in row.considerations]
            conn.execute(runs.update().where(runs.c.id == row.id).values(
                decisions=_decisions(considerations, row.assignments, row.on_hold),
                # A run that weighed nothing (the stock kept changing) has nothing to tell.
                inputs={"considerations": considerations} if considerations else None))

    with op.batch_alter_table('routing_runs', schema=None) as batch_op:
        batch_op.alter_column('decisions', existing_type=JSON, nullable=False)
        batch_op.drop_column('considerations')


def downgrade() -> None:
    with op.batch_alter_table('routing_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('considerations', JSON, nullable=True))

    conn = op.get_bind()
    for rows in _batches(conn, ('id', 'decisions', 'inputs')):
        for row in rows:
            if row.inputs and "considerations" in row.inputs:
                kept = row.inputs["considerations"]
            else:
                # Runs kept compactly go back with what they kept: the location chosen and
                # the best passed over.
                kept = [{"item_id": d["item_id"], "location_id": c["location_id"],
                         "verdict": verdict, "reason": c["reason"]}
                        for d in row.decisions
                        for verdict, c in ([("chosen", d)] if d["location_id"] else [])
                        + [("passed_over", a) for a in d["alternatives"]]]
            conn.execute(runs.update().where(runs.c.id == row.id).values(considerations=[
                {key: c[key] for key in ("item_id", "location_id", "verdict", "reason")}
                for c in kept]))

    with op.batch_alter_table('routing_runs', schema=None) as batch_op:
        batch_op.alter_column('considerations', existing_type=JSON, nullable=False)
        batch_op.drop_column('inputs')
        batch_op.drop_column('decisions')
