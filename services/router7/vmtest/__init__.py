"""Run router7's image in qemu and drive it like a NixOS test (see docs/vm-tests.md).

kvm      does KVM really work here? (else TCG)
qemu     the launcher: argv, per-run overlay, serial log, sockets
qmp      a small synchronous QMP client (monitor, HMP passthrough)
shell    the test-shell protocol on the virtio port
labvm    the router VM inside router7-lab's topology
machine  NixOS test-driver machines: the VM and the lab's namespaces
driver   start_all/subtest/machines, one scenario run, artefacts
cli      router7-vmtest
"""
