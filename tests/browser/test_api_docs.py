"""The API docs UI works with head office offline: everything it loads comes from HQ itself."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_api_docs_render_from_local_assets_only(live_server, page) -> None:
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))

    page.goto(f"{live_server.url}/api/docs/")
    page.wait_for_selector("text=Tillbook API")
    page.wait_for_selector("text=/api/v1/products/")

    assert requested, "the page loaded nothing"
    foreign = [url for url in requested if not url.startswith(live_server.url)]
    assert foreign == [], f"the docs page reached outside head office: {foreign}"
