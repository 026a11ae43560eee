"""node_init and run_node in-process, against the fake head office (the end-to-end tests run
them as real processes against a real one)."""

from __future__ import annotations

import time
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from stores.local import LocalProduct, LocalRegister, NodeState, OutboxEvent
from sync.node import agent as agent_module
from tests.node import processes
from tests.node.fake_hq import FakeHQ, network_down
from tests.node.helpers import append_sale
from tests.node.test_feed import everything

ARGS = ["--hq", "http://hq.test", "--store", "S01", "--register", "R1", "--key", "tbk_x_y"]


@pytest.fixture
def hq(monkeypatch: pytest.MonkeyPatch, settings: Any) -> FakeHQ:
    settings.ERP_ROLE = "node"
    fake = FakeHQ(pages=[everything()])
    real = agent_module.HQClient.__init__

    def init(self: agent_module.HQClient, **kwargs: Any) -> None:
        real(self, **kwargs, transport=fake.transport())

    monkeypatch.setattr(agent_module.HQClient, "__init__", init)
    return fake


def node_init(*args: str) -> str:
    out = StringIO()
    call_command("node_init", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_node_init_checks_with_head_office_stores_the_node_and_pulls(hq: FakeHQ) -> None:
    out = node_init(*ARGS)

    assert "Set up: register R1 of store S01" in out
    state = NodeState.objects.get()
    assert (state.hq_url, state.store_code, state.register_code, state.node_key) == (
        "http://hq.test",
        "S01",
        "R1",
        "tbk_x_y",
    )
    assert state.next_seq == 1
    assert state.cursor == "1"
    assert LocalProduct.objects.filter(sku="SKU-A").exists()
    assert LocalRegister.objects.filter(code="R1").exists()
    assert hq.requests[0] == ("GET", "/api/v1/sync/status")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"--key": "tbk_wrong"}, "^head office refused the key$"),
        ({"--register": "R9"}, "^register R9 is not a register of store S01 at head office$"),
        ({"--store": "BER1"}, "^the key belongs to store S01 at head office, not BER1$"),
        ({"--hq": "ftp://hq.test"}, "must be an http:// or https:// URL"),
    ],
)
def test_node_init_refuses_with_one_line_and_writes_nothing(
    hq: FakeHQ, args: dict[str, str], message: str
) -> None:
    given = dict(zip(ARGS[::2], ARGS[1::2], strict=True)) | args
    with pytest.raises(CommandError, match=message):
        node_init(*[x for pair in given.items() for x in pair])
    assert not NodeState.objects.exists()
    assert not LocalProduct.objects.exists()


@pytest.mark.django_db
def test_node_init_says_when_head_office_cannot_be_reached(hq: FakeHQ) -> None:
    hq.failures = [network_down]
    with pytest.raises(CommandError, match=r"^head office at http://hq\.test cannot be reached"):
        node_init(*ARGS)
    assert not NodeState.objects.exists()


@pytest.mark.django_db
def test_node_init_again_rotates_the_key_and_keeps_the_outbox(hq: FakeHQ) -> None:
    node_init(*ARGS)
    append_sale()
    NodeState.objects.update(node_key="tbk_old")

    out = node_init(*ARGS)

    assert "Updated" in out
    state = NodeState.objects.get()
    assert (state.node_key, state.next_seq) == ("tbk_x_y", 2)
    assert OutboxEvent.objects.count() == 1


@pytest.mark.django_db
def test_node_init_refuses_to_become_another_register(hq: FakeHQ) -> None:
    node_init(*ARGS)
    with pytest.raises(CommandError, match="already register R1 of store S01"):
        node_init(*ARGS[:5], "R2", *ARGS[6:])


@pytest.mark.django_db
def test_a_new_node_for_a_register_with_history_numbers_after_head_office(hq: FakeHQ) -> None:
    hq.events = {f"e{n}": {"register": "R1", "seq": n} for n in range(1, 43)}
    out = node_init(*ARGS)
    assert "already has 42 events at head office; this node numbers from 43" in out
    assert NodeState.objects.get().next_seq == 43


@pytest.mark.django_db
def test_commands_refuse_to_run_at_head_office(settings: Any) -> None:
    settings.ERP_ROLE = "hq"
    with pytest.raises(CommandError, match="ERP_ROLE=node"):
        node_init(*ARGS)
    with pytest.raises(CommandError, match="ERP_ROLE=node"):
        call_command("run_node", "--once")


@pytest.mark.django_db
def test_run_node_needs_node_init_first(settings: Any) -> None:
    settings.ERP_ROLE = "node"
    with pytest.raises(CommandError, match=r"not set up: run manage\.py node_init"):
        call_command("run_node", "--once")


@pytest.mark.django_db
def test_run_node_once_syncs_one_step(hq: FakeHQ) -> None:
    node_init(*ARGS)
    append_sale()
    out = StringIO()
    call_command("run_node", "--once", stdout=out)
    assert "pushed 1 event(s)" in out.getvalue()
    assert len(hq.events) == 1


def test_run_node_stops_cleanly_on_sigterm(tmp_path: Any) -> None:
    """A real process: set up (by hand, no head office needed), started, stopped."""
    data_dir = processes.new_node_dir(tmp_path)
    done = processes.manage(
        data_dir,
        "shell",
        "-c",
        "from stores.local import NodeState; NodeState.objects.create("
        "hq_url='http://127.0.0.1:9', store_code='S01', register_code='R1', node_key='k')",
    )
    assert done.returncode == 0, done.stderr
    agent = processes.NodeAgent(data_dir, tmp_path / "node.log").start()
    try:
        deadline = 200
        while "syncing with" not in agent.log() and deadline:
            deadline -= 1
            time.sleep(0.05)
        assert agent.stop() == 0, agent.log()
    finally:
        agent.kill()
    assert "Stopped." in agent.log()
    online, error = processes.query(data_dir, "SELECT online, last_error FROM stores_nodestate")[0]
    assert online == 0
    assert "cannot be reached" in error
