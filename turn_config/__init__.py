"""ICE server lists and TURN REST credentials. Lands with the SFU issue."""
