"""Local fakes of the email-marketing APIs Audience Relay exports to.

Standard library only (no Django), so they run anywhere: ``python -m fakes campaign_monitor
--port 8101``, ``autopilot --port 8102``, ``mailchimp --port 8103``, ``ortto --port 8104``;
``fakes.testing.running_fake`` runs one in a background thread for tests. See fakes/README.md.
"""

from __future__ import annotations

from fakes.autopilot import AutopilotFake
from fakes.campaign_monitor import CampaignMonitorFake
from fakes.mailchimp import MailchimpFake
from fakes.ortto import OrttoFake
from fakes.server import FakeApp

# kind (as on the command line) → the fake serving it.
FAKES: dict[str, type[FakeApp]] = {
    CampaignMonitorFake.kind: CampaignMonitorFake,
    AutopilotFake.kind: AutopilotFake,
    MailchimpFake.kind: MailchimpFake,
    OrttoFake.kind: OrttoFake,
}
DEFAULT_PORTS = {"campaign_monitor": 8101, "autopilot": 8102, "mailchimp": 8103, "ortto": 8104}
