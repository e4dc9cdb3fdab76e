"""County server (县政务服务中心): catalog owner, root of trust, archive. Its program lands with the next issue."""
