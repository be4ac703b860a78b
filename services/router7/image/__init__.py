"""router7-image: builds the Debian-based router image and packs the A/B disk image."""
