"""router7-recover: netboot a router from a laptop and reinstall it (docs/recovery.md).

The laptop side (`router7-recover`) serves DHCP to PXE clients only, TFTP for the
boot script, and HTTP for the image, an optional backup and the router's progress
reports. The router side (`router7-recovery`, run by router7-recovery.target in
the netbooted image) writes the disk and reports each stage back.
"""
