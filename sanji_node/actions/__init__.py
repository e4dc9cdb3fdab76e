"""User actions: one function per thing a person does, called by the command line and the pages alike.

Each function takes a `Workspace` (the node, its store opened once) and
plain values, validates through `sanji_domain` and raises its Chinese errors;
nothing here knows about click or Flask. One module per area:
`cases`, `catalog`, `ledger` (代办台账 and 值班表), `evaluations` (好差评 and
整改), `statistics`, `county` (电子监察 and settings), `sync_status`.
"""
