"""A paging responder SIGKILLed in the middle of a slow page call while another paging
responder runs: the other takes the page over and it goes out once, within the stated bound.

Real processes on a real PostgreSQL: an intake (`--responder external`), two `respond --role
urgent`, and (second case) a `respond --role flows` that must not be needed. The page request of
the responder that dies hangs at the sandbox and is never applied (its client is gone), so the
page the sandbox ends up with is the takeover's. Part of `make test-faults`.

The bound: the page lease (`FIRELANE_PAGE_LEASE_SECONDS`, 3 s here; 5 s by default) after the
last renewal, plus the once-a-second scan of the paging responders, plus the page call itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from firelane.store import open_store
from integrations.sandbox import Sandbox
from tests.pgserver import PostgresServer
from tests.process_stack import Stack

PAGE_LEASE = 3.0
BOUND = PAGE_LEASE + 1.0 + 4.0
HANG = 10.0

pytestmark = pytest.mark.timeout(180)


def _wait_for(what: str, check: Callable[[], object], seconds: float = 30) -> float:
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < seconds, f"{what} not within {seconds:g} s"
        time.sleep(0.02)
    return time.monotonic() - started


@pytest.mark.parametrize("with_flows", [False, True], ids=["urgent-only", "with-flows"])
def test_a_dead_responders_page_is_sent_by_the_other_paging_responder_within_the_bound(
        pg: PostgresServer, sandbox: Sandbox, tmp_path: Path, with_flows: bool) -> None:
    roles = {"urgent-a": "urgent", "urgent-b": "urgent"}
    if with_flows:
        roles["flows"] = "flows"
    stack = Stack(pg, sandbox, tmp_path, roles,
                  {"FIRELANE_PAGE_LEASE_SECONDS": str(PAGE_LEASE)})
    store = open_store(pg.url, migrate=False)
    try:
        stack.start_all()
        slow = sandbox.faults.add(path="/pagerduty/v2/enqueue", kind="latency", latency=HANG)
        assert stack.post(1, "takeover").status_code == 202
        _wait_for("the first page request", lambda: slow.hits >= 1)
        [incident] = store.list_incidents()
        [execution] = store.list_executions(incident.id)
        holder = store.step_records(execution.id)["page"].owner
        assert holder is not None
        pid = int(holder.split(":")[1])
        [dead] = [n for n, p in stack.procs.items() if p.pid == pid]
        stack.kill(dead)
        took = _wait_for("the page", lambda: len(stack.pages()) >= 1)
        assert took <= BOUND, f"paged {took:.1f} s after the responder died (bound {BOUND:g})"
        time.sleep(max(0.0, HANG + 1.0 - took))
        assert len(stack.pages()) == 1, stack.pages()
        page = store.step_records(execution.id)["page"]
        survivor = next(n for n in roles if n != dead and roles[n] == "urgent")
        assert (page.status.value, page.claims) == ("succeeded", 2), page
        assert page.owner is not None and int(page.owner.split(":")[1]) == \
            stack.procs[survivor].pid
        kinds = [e.kind for e in store.timeline(incident.id) if e.step_id == "page"]
        assert kinds.count("step.taken_over") == 1 and kinds.count("step.succeeded") == 1
        assert "taking over page page of INC-1" in stack.log(survivor)
        assert store.health(90, None).pages_overdue == 0
        alive = stack.alive()
        assert alive.pop(dead) is not None and set(alive.values()) == {None}, alive
        print(f"\npage takeover ({'with' if with_flows else 'no'} flow responder): the page "
              f"went out {took:.2f} s after its responder was SIGKILLed (page lease "
              f"{PAGE_LEASE:g} s, bound {BOUND:g} s), once")
    finally:
        store.close()
        stack.stop_all()
