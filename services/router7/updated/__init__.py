"""router7-updated: updates that undo themselves (A/B slots, kexec trial, commit on health)."""
