"""Whiteboard sync service (y-websocket protocol on pycrdt). Lands with the whiteboard issue."""
