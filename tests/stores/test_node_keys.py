"""Store-node API keys: shown once, stored as a SHA-256 digest only, revocable, rotatable."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from stores import services
from stores.models import NodeKey, Store
from stores.services import node_key_authenticate, node_key_issue, node_key_revoke
from tests.factories import StoreFactory

pytestmark = pytest.mark.django_db


def tables_and_columns_containing(needle: str) -> set[tuple[str, str]]:
    """Every (table, column) of the whole database whose value, read as text, holds ``needle``.

    Every column of every table is cast to text, whatever its declared type, so a key kept in
    a JSON, binary-as-text or oddly typed column would still be found.
    """
    find = "strpos" if connection.vendor == "postgresql" else "instr"
    quote = connection.ops.quote_name
    found: set[tuple[str, str]] = set()
    with connection.cursor() as cursor:
        tables = [t.name for t in connection.introspection.get_table_list(cursor) if t.type == "t"]
        assert len(tables) > 20  # the whole schema, not one app's tables
        for table in tables:
            for column in connection.introspection.get_table_description(cursor, table):
                cursor.execute(
                    f"SELECT COUNT(*) FROM {quote(table)} "
                    f"WHERE {find}(CAST({quote(column.name)} AS TEXT), %s) > 0",
                    [needle],
                )
                if cursor.fetchone()[0]:
                    found.add((table, column.name))
    return found


@pytest.fixture
def store() -> Store:
    return StoreFactory(code="BER")


@pytest.fixture
def issued(make_client, store: Store) -> dict:
    client: APIClient = make_client("staff")
    response = client.post("/api/v1/stores/BER/node-keys/", {"label": "till node"})
    assert response.status_code == 201, response.content
    body = response.json()
    body["client"] = client
    return body


# --- the plain key is stored nowhere -------------------------------------------------------------


def test_plain_key_and_its_secret_are_stored_nowhere(issued: dict) -> None:
    key = issued["key"]
    prefix, secret = key.removeprefix("tbk_").split("_", 1)
    assert prefix == issued["prefix"]
    assert len(secret) >= 40  # 256 random bits

    assert tables_and_columns_containing(key) == set()
    assert tables_and_columns_containing(secret) == set()
    assert tables_and_columns_containing(secret[:16]) == set()  # nor any piece of it


def test_only_the_sha256_digest_of_the_whole_key_is_stored(issued: dict) -> None:
    digest = hashlib.sha256(issued["key"].encode()).hexdigest()

    node_key = NodeKey.objects.get(prefix=issued["prefix"])

    assert node_key.digest == digest
    # the search above would have found the key: it does find the digest, in the key and its
    # history, and nowhere else
    assert tables_and_columns_containing(digest) == {
        ("stores_nodekey", "digest"),
        ("stores_historicalnodekey", "digest"),
    }


def test_key_is_shown_in_the_issuing_answer_only(issued: dict) -> None:
    client = issued["client"]
    key, prefix = issued["key"], issued["prefix"]

    listing = client.get("/api/v1/stores/BER/node-keys/")
    detail = client.get(f"/api/v1/stores/BER/node-keys/{prefix}/")

    assert listing.status_code == detail.status_code == 200
    for response in (listing, detail):
        assert key.split("_", 2)[2] not in response.content.decode()
        assert "digest" not in response.content.decode()
    assert detail.json()["prefix"] == prefix


# --- authentication ------------------------------------------------------------------------------


def test_right_key_authenticates_as_its_node_key(store: Store) -> None:
    node_key, plain = node_key_issue(actor=None, store=store)

    assert node_key_authenticate(key=plain) == node_key
    assert node_key_authenticate(key=plain).store == store


def test_key_whose_secret_contains_underscores_authenticates(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # URL-safe base64 uses "_": about half of all secrets contain one.
    monkeypatch.setattr(services.secrets, "token_urlsafe", lambda n: "a_b_c" + "x" * 38)
    node_key, plain = node_key_issue(actor=None, store=store)

    assert plain.count("_") == 4
    assert node_key_authenticate(key=plain) == node_key


def test_wrong_secret_with_a_valid_prefix_is_refused(store: Store) -> None:
    _node_key, plain = node_key_issue(actor=None, store=store)
    tag, prefix, secret = plain.split("_", 2)  # the secret may itself contain "_"
    head = f"{tag}_{prefix}"
    other = "A" if secret[-1] != "A" else "B"

    assert node_key_authenticate(key=f"{head}_{secret[:-1]}{other}") is None
    assert node_key_authenticate(key=f"{head}_") is None
    assert node_key_authenticate(key=plain + "x") is None
    assert node_key_authenticate(key=plain[:-1]) is None
    assert node_key_authenticate(key=plain.upper()) is None


def test_secret_of_one_key_with_the_prefix_of_another_is_refused(store: Store) -> None:
    _first, first_plain = node_key_issue(actor=None, store=store)
    second, _second_plain = node_key_issue(actor=None, store=StoreFactory())
    secret = first_plain.split("_", 2)[2]

    assert node_key_authenticate(key=f"tbk_{second.prefix}_{secret}") is None


def test_revoked_key_is_refused_and_the_others_still_work(store: Store) -> None:
    old, old_plain = node_key_issue(actor=None, store=store)
    _new, new_plain = node_key_issue(actor=None, store=store)

    node_key_revoke(node_key=old, actor=None)

    assert node_key_authenticate(key=old_plain) is None
    assert node_key_authenticate(key=new_plain) is not None


def test_key_of_an_inactive_store_is_refused(store: Store) -> None:
    _node_key, plain = node_key_issue(actor=None, store=store)

    Store.objects.filter(pk=store.pk).update(active=False)

    assert node_key_authenticate(key=plain) is None


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "tbk",
        "tbk_",
        "tbk__",
        "tbk___",
        "_tbk_x_y",
        "Token abc",
        "Bearer tbk_abcd1234_secret",
        "TBK_abcd1234_secret",
        "tbk_abcd1234",
        "tbk_%_%",
        "tbk_' OR '1'='1_x",
        "tbk_" + "".join(chr(ord(c) + 0xFEE0) for c in "abcd1234") + "_secret",  # fullwidth
        "tbk_" + "a" * 10_000 + "_x",
        "x" * 100_000,
        "tbk_abcd1234_\ud800",
        "tbk_ab\x00cd_secret",
        "\x00",
    ],
)
def test_garbage_is_refused_quietly(store: Store, garbage: str) -> None:
    node_key_issue(actor=None, store=store)

    assert node_key_authenticate(key=garbage) is None


def test_garbage_made_from_a_real_prefix_is_refused(store: Store) -> None:
    node_key, plain = node_key_issue(actor=None, store=store)

    for garbage in (
        f"tbk_{node_key.prefix}",
        f"tbk_{node_key.prefix}_",
        f"tbk_{node_key.prefix}_{node_key.digest}",  # the digest is not the key
        f" {plain}",
        f"{plain}\n",
        f"tbk_{node_key.prefix}_\ud800",  # a lone surrogate cannot be encoded to hash it
        f"tbk_{node_key.prefix}_\x00",
        node_key.digest,
    ):
        assert node_key_authenticate(key=garbage) is None, garbage


def test_several_active_keys_of_one_store_each_authenticate(store: Store) -> None:
    issued = [node_key_issue(actor=None, store=store, label=f"key {i}") for i in range(12)]

    for node_key, plain in issued:
        assert node_key_authenticate(key=plain) == node_key
    assert store.node_keys.filter(revoked_at__isnull=True).count() == 12


# --- last use ------------------------------------------------------------------------------------


def test_last_used_at_is_recorded_on_first_use(store: Store) -> None:
    node_key, plain = node_key_issue(actor=None, store=store)
    assert node_key.last_used_at is None
    before = timezone.now()

    node_key_authenticate(key=plain)

    node_key.refresh_from_db()
    assert before <= node_key.last_used_at <= timezone.now()


def test_last_used_at_is_written_at_most_once_a_minute(
    store: Store, django_assert_num_queries
) -> None:
    node_key, plain = node_key_issue(actor=None, store=store)
    recent = timezone.now() - dt.timedelta(seconds=30)
    NodeKey.objects.filter(pk=node_key.pk).update(last_used_at=recent)

    with django_assert_num_queries(1):  # the lookup only, no UPDATE
        assert node_key_authenticate(key=plain) is not None

    node_key.refresh_from_db()
    assert node_key.last_used_at == recent


def test_last_used_at_is_refreshed_after_a_minute(store: Store) -> None:
    node_key, plain = node_key_issue(actor=None, store=store)
    stale = timezone.now() - dt.timedelta(seconds=61)
    NodeKey.objects.filter(pk=node_key.pk).update(last_used_at=stale)

    assert node_key_authenticate(key=plain).last_used_at > stale

    node_key.refresh_from_db()
    assert node_key.last_used_at > stale + dt.timedelta(seconds=60)


def test_refused_key_does_not_touch_last_used_at(store: Store) -> None:
    node_key, plain = node_key_issue(actor=None, store=store)
    node_key_revoke(node_key=node_key, actor=None)

    node_key_authenticate(key=plain)

    node_key.refresh_from_db()
    assert node_key.last_used_at is None
