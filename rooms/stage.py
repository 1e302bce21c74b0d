"""What a page shows on its stage, the large area beside the panels: the staff's choice for the
room (docs/protocol.md, "The stage"; docs/decisions/0019-stage-is-the-staffs.md)."""

STAGE_VIEWS = ("video", "board")
"""The views staff may put on the stage: the video grid, or the whiteboard."""

DEFAULT_STAGE = "board"
"""The stage of a room whose staff never chose one: the whiteboard, as the page always opened."""
