"""router7-captured: retroactive capture of the router's control traffic for Wireshark."""
