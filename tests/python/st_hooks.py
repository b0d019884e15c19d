"""Schemathesis hooks for the yiwang API test (loaded through SCHEMATHESIS_HOOKS).

The bulk endpoints take NDJSON (`application/x-ndjson`), which schemathesis cannot
serialise by itself: a generated array becomes one JSON document a line, anything else
one line.
"""
import json

import schemathesis


@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx, value):
    items = value if isinstance(value, list) else [value]
    return "".join(json.dumps(item, ensure_ascii=False) + "\n" for item in items).encode()
