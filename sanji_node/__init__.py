"""Machinery shared by the three node programs: data directory, keys, node tables, the
child's sync session and its schedule, the HTTP server, enrolment, bundles and CLI helpers.

Node packages (`county_server`, `township_node`, `village_agent`) import this and
`sync_protocol`, never each other.
"""
