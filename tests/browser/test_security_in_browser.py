"""A real headless Chromium on pages full of script payloads: no dialog opens, the
Content-Security-Policy blocks nothing of ours, and the console stays free of errors."""

from __future__ import annotations

import pytest
from django.utils import timezone
from playwright.sync_api import Page

from exports.models import Export, ExportRun, ExportRunFailure
from segments.catalogue import refresh_field_catalogue
from segments.models import ProfileImport
from segments.services import segment_refresh
from tests.browser.test_segments_in_browser import log_in
from tests.connections.factories import ConnectionFactory
from tests.factories import ProfileFactory, SegmentFactory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]

SCRIPT = "<script>alert(1)</script>"
IMAGE = '"><img src=x onerror=alert(1)>'
PAYLOAD = f"{SCRIPT}{IMAGE}"

# Listens before any page script runs; Playwright injects it outside the page's policy.
RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__violations.push(event.violatedDirective + " " + event.blockedURI);
});
"""


@pytest.fixture
def hostile_data(alice):
    """Every kind of text a user, a CSV or a service supplies, each a script payload."""
    refresh_field_catalogue({PAYLOAD: "text"})
    for number in range(3):
        ProfileFactory(
            customer_id=f"{PAYLOAD}{number}",
            email=f"{IMAGE}{number}@example.com",
            first_name=SCRIPT,
            last_name=IMAGE,
            attributes={PAYLOAD: PAYLOAD},
        )
    segment = SegmentFactory(
        name=f"Segment {PAYLOAD}",
        description=PAYLOAD,
        rules={
            "match": "all",
            "conditions": [{"field": "first_name", "operator": "contains", "value": SCRIPT}],
        },
    )
    segment_refresh(segment_id=segment.pk)
    SegmentFactory(name=f"Broken {PAYLOAD}", last_error=PAYLOAD, status="failed")
    connection = ConnectionFactory(display_name=f"Account {PAYLOAD}", last_error=PAYLOAD)
    export = Export.objects.create(
        display_name=f"Export {PAYLOAD}",
        connection=connection,
        list_id=PAYLOAD,
        list_name=PAYLOAD,
        first_name_field="first_name",
        created_by=alice,
        schedule_paused_reason=PAYLOAD,
    )
    export.segments.set([segment])
    run = ExportRun.objects.create(
        export=export,
        status=ExportRun.Status.FAILED,
        trigger=ExportRun.Trigger.USER,
        triggered_by=alice,
        last_error=PAYLOAD,
        failed=1,
        started_at=timezone.now(),
        finished_at=timezone.now(),
    )
    ExportRunFailure.objects.create(
        run=run, customer_id=PAYLOAD, email=IMAGE, code=SCRIPT, reason=PAYLOAD
    )
    profile_import = ProfileImport.objects.create(
        file_name=f"{PAYLOAD}.csv",
        status=ProfileImport.Status.COMPLETED_WITH_ERRORS,
        rejected_count=1,
        rejected_rows=[{"line": 2, "reason": PAYLOAD}],
        error=PAYLOAD,
        created_by=alice,
        finished_at=timezone.now(),
    )
    return {
        "segment": segment,
        "connection": connection,
        "export": export,
        "run": run,
        "import": profile_import,
    }


def pages_of(data) -> list[str]:
    segment, connection, export = data["segment"], data["connection"], data["export"]
    return [
        "/segments/",
        f"/segments/{segment.pk}/",
        f"/segments/{segment.pk}/edit/",
        "/segments/new/",
        "/profiles/",
        f"/profiles/?q={SCRIPT}",
        "/profiles/import/",
        f"/profiles/import/{data['import'].pk}/",
        "/exports/",
        f"/exports/{export.pk}/",
        f"/exports/{export.pk}/edit/",
        f"/exports/{export.pk}/preview/",
        f"/exports/runs/{data['run'].pk}/",
        "/exports/add/",
        "/connections/",
        f"/connections/{connection.pk}/edit/",
        "/system/",
        f"/system/status/export/{export.pk}/",
        f"/system/status/segment/{segment.pk}/",
        "/system/schedule/",
        f"/no-such-page/{SCRIPT}",
    ]


def test_script_payloads_stay_text_and_the_policy_blocks_nothing_of_ours(
    page: Page, live_server, alice, hostile_data
):
    dialogs, errors = [], []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.on(
        "console",
        lambda message: errors.append(message.text) if message.type == "error" else None,
    )
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.add_init_script(RECORD_VIOLATIONS)
    log_in(page, live_server.url, "alice")

    violations = {}
    for path in pages_of(hostile_data):
        response = page.goto(live_server.url + path)
        assert response is not None
        assert response.status < 500, path
        page.wait_for_load_state("networkidle")
        if recorded := page.evaluate("window.__violations"):
            violations[path] = recorded
        assert page.locator("img[src=x]").count() == 0, path

    assert dialogs == []
    assert violations == {}
    # A 404 is logged by the browser as a failed resource; nothing else may be.
    assert [error for error in errors if "404" not in error] == []


@pytest.mark.parametrize(
    ("path", "rendered"),
    [("/api/v1/docs", ".opblock"), ("/api/v1/redoc", "[data-section-id*='operation/']")],
)
def test_the_api_docs_render_under_the_policy_from_our_own_files(
    page: Page, live_server, alice, path, rendered
):
    """Swagger UI and Redoc come from vendored files: no inline script or style the policy
    blocks, and no request to anywhere else (Redoc's web fonts among them)."""
    errors, elsewhere = [], []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "console",
        lambda message: errors.append(message.text) if message.type == "error" else None,
    )
    page.on(
        "request",
        lambda request: (
            None
            if request.url.startswith((live_server.url, "data:", "blob:"))
            else elsewhere.append(request.url)
        ),
    )
    page.add_init_script(RECORD_VIOLATIONS)
    log_in(page, live_server.url, "alice")
    page.goto(live_server.url + path)
    page.locator(rendered).first.wait_for(timeout=30_000)
    page.wait_for_load_state("networkidle")
    assert page.locator(rendered).count() > 10
    assert page.evaluate("window.__violations") == []
    assert elsewhere == []
    assert errors == []
