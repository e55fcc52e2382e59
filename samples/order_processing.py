"""Order processing: a realistic mix of fan-out sub-orchestrations, failure handling and custom status.

An order reserves stock for each line in a child orchestration (in parallel), charges the customer,
and ships. A line for an unknown SKU fails its child; the parent catches the failure, releases what
was reserved (compensation) and completes with a "cancelled" result instead of failing.

Run it::

    dtctl start-instance process_order --id order-1 \\
        --input '{"order_id": "order-1", "customer": "ada",
                  "lines": [{"sku": "book", "qty": 2}, {"sku": "pen", "qty": 10}]}'
    dtctl worker samples/order_processing.py:app --burst
    dtctl status order-1           # output {"order_id": "order-1", "status": "shipped", ...}
    dtctl history show order-1 --timeline
"""

from dataclasses import dataclass, field

import dtctl

app = dtctl.App()

PRICES = {"book": 12.5, "pen": 1.2, "lamp": 40.0}


@dataclass
class OrderLine:
    sku: str
    qty: int


@dataclass
class Order:
    order_id: str
    customer: str
    lines: list[OrderLine] = field(default_factory=list)


@dataclass
class Reservation:
    sku: str
    qty: int
    amount: float


class UnknownSku(Exception):
    pass


@app.activity
def reserve_stock(ctx: dtctl.ActivityContext, line: OrderLine) -> Reservation:
    if line.sku not in PRICES:
        raise UnknownSku(f"no such product: {line.sku}")
    return Reservation(sku=line.sku, qty=line.qty, amount=round(PRICES[line.sku] * line.qty, 2))


@app.activity
def release_stock(ctx: dtctl.ActivityContext, sku: str) -> str:
    return f"released {sku}"


@app.activity
def charge_customer(ctx: dtctl.ActivityContext, charge: dict) -> str:
    return f"charged {charge['customer']} {charge['amount']:.2f}"


@app.activity
def ship(ctx: dtctl.ActivityContext, order_id: str) -> str:
    return f"shipment for {order_id} booked"


@app.orchestrator
def reserve_line(ctx: dtctl.OrchestrationContext, line: OrderLine):
    reservation = yield ctx.call_activity(reserve_stock, input=line)
    return reservation


@app.orchestrator
def process_order(ctx: dtctl.OrchestrationContext, order: Order):
    ctx.set_custom_status({"stage": "reserving", "lines": len(order.lines)})
    children = [ctx.call_sub_orchestrator(reserve_line, input=line) for line in order.lines]
    try:
        reservations = yield dtctl.when_all(children)
    except dtctl.TaskFailedError as failure:
        ctx.set_custom_status({"stage": "compensating"})
        reserved = [c.get_result() for c in children if c.is_complete and not c.is_failed]
        yield dtctl.when_all([ctx.call_activity(release_stock, input=r["sku"]) for r in reserved])
        ctx.set_custom_status({"stage": "cancelled"})
        return {"order_id": order.order_id, "status": "cancelled", "reason": failure.details.message}

    total = round(sum(r["amount"] for r in reservations), 2)
    ctx.set_custom_status({"stage": "charging", "total": total})
    receipt = yield ctx.call_activity(charge_customer, input={"customer": order.customer, "amount": total})
    ctx.set_custom_status({"stage": "shipping"})
    shipment = yield ctx.call_activity(ship, input=order.order_id)
    ctx.set_custom_status({"stage": "done"})
    return {
        "order_id": order.order_id,
        "status": "shipped",
        "total": total,
        "receipt": receipt,
        "shipment": shipment,
    }
