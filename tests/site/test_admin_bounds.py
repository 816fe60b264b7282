"""The admin's lists take any search and any posted selection: a search of a thousand words and
a selected id that is no id were a 500 (SQLite: "Expression tree is too large"; a ValueError)."""
from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.messages import get_messages
from django.urls import reverse

from imagehost.admin import MAX_SEARCH_WORDS, BoundedAdmin
from imagehost.api.models import ApiToken
from imagehost.models import Album

pytestmark = pytest.mark.django_db

REGISTERED = sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label)
SEARCHED = [(model, model_admin) for model, model_admin in REGISTERED if model_admin.search_fields]


def changelist(model) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_every_registered_admin_is_bounded():
    """A new ModelAdmin (or one an app registers, like auth's Group) gets the bounds too."""
    assert [m._meta.label for m, a in REGISTERED if not isinstance(a, BoundedAdmin)] == []
    assert {m._meta.label for m, _ in SEARCHED} >= {"auth.Group", "auth.User", "api.ApiToken", "imagehost.Picture"}


@pytest.mark.parametrize("model", [m for m, _ in SEARCHED], ids=lambda m: m._meta.label)
def test_a_search_of_a_thousand_words_searches_the_first_ones(admin_client, model):
    r = admin_client.get(changelist(model), {"q": " ".join(f"w{i}" for i in range(1000))})
    assert r.status_code == 200
    assert f"Searched for the first {MAX_SEARCH_WORDS} words only" in " ".join(messages_of(r))


@pytest.mark.parametrize("model", [m for m, _ in SEARCHED], ids=lambda m: m._meta.label)
def test_a_search_with_a_nul_is_answered(admin_client, model):
    """PostgreSQL refuses a NUL in a query parameter (a 500 there): the search drops it."""
    assert admin_client.get(changelist(model), {"q": "a\x00b \x00"}).status_code == 200


def test_the_words_after_the_first_ones_are_ignored(admin_client, user):
    Album.objects.create(owner=user, title="Holiday", slug="holiday-x1")
    words = ["holiday"] * MAX_SEARCH_WORDS
    r = admin_client.get(changelist(Album), {"q": " ".join([*words, "nowhere"])})
    assert r.status_code == 200 and [a.title for a in r.context["cl"].result_list] == ["Holiday"]
    r = admin_client.get(changelist(Album), {"q": " ".join(["nowhere", *words])})
    assert list(r.context["cl"].result_list) == []
    r = admin_client.get(changelist(Album), {"q": " ".join(words)})
    assert not messages_of(r)  # as many words as are searched: no message


def test_quoted_words_count_as_one(admin_client, user):
    Album.objects.create(owner=user, title="Summer holiday", slug="summer-x1")
    r = admin_client.get(changelist(Album), {"q": '"summer holiday" ' + "summer " * (MAX_SEARCH_WORDS - 1)})
    assert [a.title for a in r.context["cl"].result_list] == ["Summer holiday"] and not messages_of(r)


@pytest.mark.parametrize("selected", ["abc", "1.5", "", "99999999999999999999", "\x00"])
@pytest.mark.parametrize("model", [m for m, _ in REGISTERED], ids=lambda m: m._meta.label)
@pytest.mark.parametrize("with_index", [True, False], ids=["action-bar", "confirm-page"])
def test_a_selected_id_that_is_no_id_is_refused_with_a_message(admin_client, model, selected, with_index):
    before = model.objects.count()
    url = changelist(model)
    data = {"action": "delete_selected", "_selected_action": [selected], "post": "yes"}
    r = admin_client.post(url, {**data, "index": "0"} if with_index else data)
    assert r.status_code == 302 and r["Location"] == url
    assert "is not the id of an item" in " ".join(messages_of(r))
    assert model.objects.count() == before


def test_the_custom_actions_refuse_a_selected_id_that_is_no_id(admin_client, user):
    token, _ = ApiToken.issue(user, "kept")
    url = changelist(ApiToken)
    r = admin_client.post(url, {"action": "revoke", "index": "0", "_selected_action": [str(token.pk), "abc"]})
    assert r.status_code == 302 and "is not the id of an item" in " ".join(messages_of(r))
    token.refresh_from_db()
    assert token.is_active  # none of a selection with a bad id is acted on
    r = admin_client.post(reverse("admin:imagehost_picture_changelist"),
                          {"action": "block_tokens", "index": "0", "_selected_action": ["abc"]})
    assert r.status_code == 302 and "is not the id of an item" in " ".join(messages_of(r))


def test_good_selections_still_work(admin_client, user):
    token, _ = ApiToken.issue(user, "gone")
    r = admin_client.post(changelist(ApiToken), {"action": "revoke", "index": "0", "_selected_action": [str(token.pk)]})
    assert r.status_code == 302 and "Revoked 1 token(s)." in messages_of(r)
    token.refresh_from_db()
    assert not token.is_active
