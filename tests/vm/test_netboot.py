"""Netboot: qemu's iPXE ROM fetches netboot.ipxe, vmlinuz and initrd by TFTP."""

from __future__ import annotations

import pytest

from tests.vm.test_driver import _driver


@pytest.mark.vm
def test_netboot_through_ipxe_brings_up_the_units(router_image, tmp_path):
    d = _driver(tmp_path, router_image, "netboot")
    with d:
        d.run()
        # The disk is no boot device (strict boot order): iPXE loaded this kernel,
        # and iPXE names the initrd on the command line.
        cmdline = d.router.succeed("cat /proc/cmdline")
        assert "initrd=initrd" in cmdline
        assert "BOOT_IMAGE=" not in cmdline
