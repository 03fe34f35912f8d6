"""Genesis files shipped with gridnode and the format they follow (see README.md here)."""
