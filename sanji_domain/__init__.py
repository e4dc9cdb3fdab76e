"""The service domain (政务服务): catalog items, cases, clocks, 好差评, 代办台账, statistics.

Dependencies point one way: node packages → `sanji_domain` → `sync_protocol`.
The domain is a deterministic fold of feed entries into tables (`fold`), plus
validated commands that turn what a user asks for into entries (`commands`).
Nothing here imports a node package, Flask or requests; the UIs and CLIs call
this layer and nothing else.
"""
