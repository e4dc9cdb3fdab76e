"""Sanji's sync protocol: signed, hash-chained feeds and how nodes exchange them.

The pure core (`canonical`, `keys`, `curve`, `hlc`, `feeds`, `entries`,
`heads`, `membership`, `routing`, `planning`, `batches`, `verify`, `bundle`,
`errors`, `limits`, `transport`) takes bytes, objects and `now` and returns
values or raises: it opens no files, sockets or databases and reads no clock.

Adapters that do I/O live in their own modules (`sqlite_store`,
`verify_pool`, `routes`, `http_api`, `http_client`, `files`, `nonce_store`,
`faults`) and are imported by the node programs, never by the core.
"""

PROTOCOL_VERSION = 1

# Modules that do I/O. The core never imports them (tests/test_purity.py checks).
ADAPTER_MODULES = frozenset(
    {"sqlite_store", "verify_pool", "routes", "http_api", "http_client", "files", "nonce_store", "faults", "writer_lock"}
)
