"""Print where the demo runs and how to log in."""

from __future__ import annotations

import sys

port = sys.argv[1] if len(sys.argv) > 1 else "8000"
print(
    f"""
  Audience Relay is starting at  http://127.0.0.1:{port}/

  Demo logins (username / password):
    admin        / demo-admin-relay        Administrator
    contributor  / demo-contributor-relay  Contributor
    viewer       / demo-viewer-relay       Viewer

  Local fakes: Campaign Monitor http://127.0.0.1:8101   Autopilot http://127.0.0.1:8102
               Mailchimp http://127.0.0.1:8103          Ortto http://127.0.0.1:8104
               (demo API keys: Autopilot demo-autopilot-key, Mailchimp
                demo0mailchimp0key-us21 or Authenticate with Mailchimp, Ortto
                demo-ortto-key with Region Global)
  Mail (invitations, password links, alerts) is written to demo-mail/, one file a
  message: open the newest to follow an invitation's link.
  Stop with Ctrl+C.
""",
    flush=True,
)
