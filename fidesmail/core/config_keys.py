"""What a config key may be: safe as a file name, in a URL path, and as the bound name of a sealed value."""

from __future__ import annotations

import re

KEY_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$")
