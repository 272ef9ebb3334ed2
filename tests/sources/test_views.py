"""Admin > Sources: administrators set up, preview, test and run; contributors and viewers see
names and status only."""

from __future__ import annotations

import pytest
from django.urls import reverse

from audit.models import AuditEntry
from segments.models import Profile
from sources import services
from sources.models import Source, SourceRun
from tests.sources.places import people
from tests.sources.test_runs import MAPPING, make_source

pytestmark = pytest.mark.django_db


def form_data(place, **overrides):
    data = {
        **{key: value for key, value in place.connection_settings.items()},
        "password": place.secrets.get("password", ""),
        "name": "Warehouse",
        "read_table": place.read_table,
        "read_query": "",
        "map_customer_id": "customer",
        "map_email": "email",
        "map_first_name": "first_name",
        "map_last_name": "last_name",
        "map_attributes": "score = score\nactive = active",
        "sync_mode": "full",
        "cursor_column": "",
        "on_schedule": "on",
        "action": "save",
    }
    data.update(overrides)
    return data


def test_an_administrator_previews_then_saves_a_postgresql_source(as_alice, postgresql_place):
    postgresql_place.write(people(25))
    url = reverse("sources:add", args=["postgresql"])
    assert as_alice.get(url).status_code == 200
    preview = as_alice.post(url, form_data(postgresql_place, action="preview"))
    html = preview.content.decode()
    assert preview.status_code == 200 and not Source.objects.exists()
    assert html.count("<tr><td>") == 20 and "float8 → number" in html and "C00001" in html
    saved = as_alice.post(url, form_data(postgresql_place))
    source = Source.objects.get()
    assert saved.url == reverse("sources:detail", args=[source.pk])
    assert source.mapping["attributes"] == {"score": "score", "active": "active"}
    assert source.field_types == {"score": "number", "active": "boolean"}
    assert AuditEntry.objects.filter(action="source.created").exists()


def test_the_preview_shows_the_database_words_for_a_bad_query(as_alice, postgresql_place):
    postgresql_place.write(people(2))
    response = as_alice.post(
        reverse("sources:add", args=["postgresql"]),
        form_data(
            postgresql_place,
            read_table="",
            read_query="SELECT customer FORM people",
            action="preview",
        ),
    )
    assert (
        "syntax error at or near &quot;people&quot; (at character 22 of the query)"
        in response.content.decode()
    )


def test_the_password_is_never_put_back_in_the_page(as_alice, mysql_place):
    source = services.source_save(
        name="Shop",
        kind="mysql",
        connection_settings=mysql_place.connection_settings,
        password="hunter2-secret",
        read_table="people",
        mapping=MAPPING,
    )
    html = as_alice.get(reverse("sources:edit", args=[source.pk])).content.decode()
    assert "hunter2" not in html and "A password is stored" in html


def test_an_administrator_runs_a_source_and_reads_its_report(
    as_alice, postgresql_place, django_capture_on_commit_callbacks
):
    rows = people(4)
    rows[0] = (1, None, *rows[0][2:])
    postgresql_place.write(rows)
    source = make_source(postgresql_place)
    with django_capture_on_commit_callbacks(execute=True):
        response = as_alice.post(reverse("sources:run_now", args=[source.pk]))
    assert response.status_code == 302
    run = SourceRun.objects.get()
    assert run.status == "completed_with_errors" and Profile.objects.count() == 3
    html = as_alice.get(reverse("sources:run", args=[run.pk])).content.decode()
    assert "The row has no customer id." in html
    detail = as_alice.get(reverse("sources:detail", args=[source.pk])).content.decode()
    assert "Completed with errors" in detail


def test_the_test_page_lists_named_steps(as_alice, postgresql_place):
    postgresql_place.write(people(2))
    source = make_source(postgresql_place)
    html = as_alice.post(reverse("sources:test", args=[source.pk])).content.decode()
    assert "Connect and sign in" in html and "Read-only session" in html
    assert "9 columns can be read." in html


@pytest.mark.parametrize("user", ["bob", "charlie"])
def test_contributors_and_viewers_see_names_and_status_only(
    client, user, request, postgresql_place
):
    source = make_source(postgresql_place)
    client.force_login(request.getfixturevalue(user))
    html = client.get(reverse("sources:list")).content.decode()
    assert "Warehouse" in html and "Never run" in html
    assert reverse("sources:detail", args=[source.pk]) not in html
    for name, method in (
        ("sources:detail", "get"),
        ("sources:edit", "get"),
        ("sources:run_now", "post"),
        ("sources:test", "post"),
        ("sources:delete", "post"),
    ):
        assert getattr(client, method)(reverse(name, args=[source.pk])).status_code == 403
    assert client.get(reverse("sources:add", args=["postgresql"])).status_code == 403


def test_removing_a_source_keeps_its_profiles(as_alice, postgresql_place):
    postgresql_place.write(people(2))
    source = make_source(postgresql_place)
    services.run_execute(run_id=SourceRun.objects.create(source=source, sync_mode="full").pk)
    as_alice.post(reverse("sources:delete", args=[source.pk]))
    assert not Source.objects.exists() and Profile.objects.count() == 2
    assert AuditEntry.objects.filter(action="source.deleted").exists()
