"""Print a development .env with freshly generated secrets (used once by `make demo`)."""

from __future__ import annotations

import secrets

from cryptography.fernet import Fernet

print("DEBUG=true")
print(f"SECRET_KEY={secrets.token_urlsafe(50)}")
print(f"FIELD_ENCRYPTION_KEY={Fernet.generate_key().decode()}")
