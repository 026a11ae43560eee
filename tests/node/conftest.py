from __future__ import annotations

import pytest

from stores.local import NodeState


@pytest.fixture
def node(db: None) -> NodeState:
    """A node set up as register R1 of store S01 (what node_init writes)."""
    return NodeState.objects.create(
        hq_url="http://hq.invalid", store_code="S01", register_code="R1", node_key="tbk_x_y"
    )
