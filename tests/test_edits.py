"""Stale edits refused, input kept: the demo's edit page (UpdateView), and its admin.

Two users open the same article; the first saves; the second's save is refused with
a form error naming what changed, their text still in the form, nothing of theirs
written. Their second save, having seen it, goes through. The admin adds
``list_editable``, actions and If-Match on change-form POSTs and deletes.
"""

from __future__ import annotations

import re

import pytest
from django import forms
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.forms import modelform_factory
from django.urls import reverse

from django_conditional.edits import VERSION_FIELD, VersionedModelFormMixin
from testproject.demo.factories import ArticleFactory
from testproject.demo.models import Article
from tests.races import before_claim

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def article():
    return ArticleFactory(title="First title", body="First body")


@pytest.fixture
def staff(admin_client):
    return admin_client


def hidden_version(content: bytes, name: str = VERSION_FIELD) -> str:
    found = re.search(rf'name="{re.escape(name)}" value="(\d+)"'.encode(), content)
    assert found, content[:2000]
    return found.group(1).decode()


def stored(article):
    return Article.objects.get(pk=article.pk)


# --- the edit page (ConcurrentUpdateMixin) -------------------------------------------


def edit_path(article):
    return reverse("demo:article-edit", kwargs={"slug": article.slug})


def test_a_stale_edit_is_refused_and_the_input_kept(staff, article):
    path = edit_path(article)
    seen = hidden_version(staff.get(path).content)
    first = staff.post(path, {"title": "Theirs", "body": "Their body", VERSION_FIELD: seen})
    assert first.status_code == 302
    mine = {"title": "Mine", "body": "My long careful text", VERSION_FIELD: seen}
    refused = staff.post(path, mine)
    assert refused.status_code == 200
    text = refused.content.decode()
    assert "Someone else saved this article after you opened it" in text
    assert "Title is now &#x27;Theirs&#x27;" in text
    assert "My long careful text" in text  # nothing the user typed is lost
    assert stored(article).title == "Theirs"
    # The form now carries the current version: saving again, having seen it, wins.
    current = hidden_version(refused.content)
    assert current == str(stored(article).version)
    again = staff.post(path, {**mine, VERSION_FIELD: current})
    assert again.status_code == 302
    assert stored(article).body == "My long careful text"


def test_a_submission_without_its_version_saves_nothing(staff, article):
    refused = staff.post(edit_path(article), {"title": "Mine", "body": "x"})
    assert refused.status_code == 200
    assert b"sent without the version" in refused.content
    assert stored(article).title == "First title"


def test_deleted_meanwhile(staff, article, monkeypatch):
    path = edit_path(article)
    seen = hidden_version(staff.get(path).content)
    # The view loads the object first: delete it between that and the claim.
    before_claim(monkeypatch, lambda row: Article.objects.filter(pk=row.pk).delete())
    refused = staff.post(path, {"title": "Mine", "body": "kept", VERSION_FIELD: seen})
    assert refused.status_code == 200
    assert b"Someone else deleted this article" in refused.content
    assert b"kept" in refused.content


def test_only_staff_edit(client, article):
    assert client.get(edit_path(article)).status_code in {302, 403}


def test_the_form_refuses_to_check_outside_a_transaction(article):
    base = type("VersionedForm", (VersionedModelFormMixin, forms.ModelForm), {})
    form_class = modelform_factory(Article, form=base, fields=["title"])
    data = {"title": "x", VERSION_FIELD: article.version}
    with pytest.raises(ImproperlyConfigured, match="transaction"):
        form_class(data, instance=article).is_valid()
    with transaction.atomic():
        assert form_class(data, instance=article).is_valid()


# --- the admin (ConcurrentEditAdminMixin) -----------------------------------------------


def change_path(article):
    return reverse("admin:demo_article_change", args=[article.pk])


def change_data(article, **changes):
    data = {
        "author": article.author_id,
        "title": article.title,
        "slug": article.slug,
        "body": article.body,
        "published_at_0": article.published_at.strftime("%Y-%m-%d"),
        "published_at_1": article.published_at.strftime("%H:%M:%S"),
        "is_published": "on",
        "comments-TOTAL_FORMS": "0",
        "comments-INITIAL_FORMS": "0",
        "comments-MIN_NUM_FORMS": "0",
        "comments-MAX_NUM_FORMS": "1000",
    }
    return data | changes


def test_the_admin_refuses_a_stale_change_form(staff, article):
    page = staff.get(change_path(article))
    assert page.status_code == 200
    assert page["ETag"]
    seen = hidden_version(page.content)
    theirs = staff.post(
        change_path(article), change_data(article, title="Theirs", **{VERSION_FIELD: seen})
    )
    assert theirs.status_code == 302
    refused = staff.post(
        change_path(article), change_data(article, body="My admin text", **{VERSION_FIELD: seen})
    )
    assert refused.status_code == 200
    assert b"Someone else saved this article after you opened it" in refused.content
    assert b"My admin text" in refused.content
    assert stored(article).title == "Theirs"
    assert stored(article).body == "First body"


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"if-match": '"garbage"'}, 412),
        ({"if-match": "garbage"}, 412),
        ({"if-unmodified-since": "Sun, 06 Nov 1994 08:49:37 GMT"}, 412),
        ({"if-match": "*"}, 302),
    ],
)
def test_the_admin_honours_preconditions_on_a_change_form_post(staff, article, headers, status):
    seen = hidden_version(staff.get(change_path(article)).content)
    data = change_data(article, title="Sent", **{VERSION_FIELD: seen})
    response = staff.post(change_path(article), data, headers=headers)
    assert response.status_code == status
    assert (stored(article).title == "Sent") is (status == 302)


def test_the_admin_saves_with_the_current_tag(staff, article):
    page = staff.get(change_path(article))
    data = change_data(article, title="Sent", **{VERSION_FIELD: hidden_version(page.content)})
    response = staff.post(change_path(article), data, headers={"if-match": page["ETag"]})
    assert response.status_code == 302
    assert stored(article).title == "Sent"
    # The tag moved with the save: the same If-Match now fails, nothing saved.
    again = staff.post(
        change_path(article), data | {"title": "Again"}, headers={"if-match": page["ETag"]}
    )
    assert again.status_code == 412
    assert stored(article).title == "Sent"


def test_the_admin_delete_honours_if_match(staff, article):
    path = reverse("admin:demo_article_delete", args=[article.pk])
    refused = staff.post(path, {"post": "yes"}, headers={"if-match": '"stale"'})
    assert refused.status_code == 412
    assert Article.objects.filter(pk=article.pk).exists()
    tag = staff.get(change_path(article))["ETag"]
    assert staff.post(path, {"post": "yes"}, headers={"if-match": tag}).status_code == 302
    assert not Article.objects.filter(pk=article.pk).exists()


def changelist_data(page: bytes, article, **changes):
    version = hidden_version(page, f"form-0-{VERSION_FIELD}")
    return {
        "form-TOTAL_FORMS": "1",
        "form-INITIAL_FORMS": "1",
        "form-MIN_NUM_FORMS": "0",
        "form-MAX_NUM_FORMS": "1000",
        "form-0-id": str(article.pk),
        f"form-0-{VERSION_FIELD}": version,
        "_save": "Save",
    } | changes


def test_list_editable_refuses_a_stale_row(staff, article):
    path = reverse("admin:demo_article_changelist")
    page = staff.get(path).content
    data = changelist_data(page, article)  # unpublishes (the box unticked)
    Article.objects.filter(pk=article.pk).update(title="Theirs")  # someone else's save
    refused = staff.post(path, data)
    assert refused.status_code == 200
    assert b"Someone else saved this article after you opened it" in refused.content
    assert stored(article).is_published is True
    fresh = changelist_data(staff.get(path).content, article)
    assert staff.post(path, fresh).status_code == 302
    assert stored(article).is_published is False


def test_an_action_on_a_row_changed_since_the_list_was_loaded_does_nothing(staff, article):
    Article.objects.filter(pk=article.pk).update(is_published=False)
    path = reverse("admin:demo_article_changelist")
    page = staff.get(path).content
    version = hidden_version(page, f"{VERSION_FIELD}-{article.pk}")
    data = {
        "action": "publish",
        "index": "0",
        "_selected_action": [str(article.pk)],
        f"{VERSION_FIELD}-{article.pk}": version,
    }
    Article.objects.filter(pk=article.pk).update(title="Theirs")
    refused = staff.post(path, data, follow=True)
    assert b"Nothing was done: someone else changed" in refused.content
    assert stored(article).is_published is False
    data[f"{VERSION_FIELD}-{article.pk}"] = str(stored(article).version)
    staff.post(path, data)
    assert stored(article).is_published is True
