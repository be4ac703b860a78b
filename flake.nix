{
  description = "router7: a home internet router whose services are Python/Twisted daemons";

  inputs = {
    # A release branch, not nixos-unstable: the router is an appliance, so we
    # want a package set that only gets security and bug-fix backports between
    # deliberate bumps (change the branch here, then `nix flake update`).
    # Unstable would add churn in kea, dnsmasq, the kernel and the Python set
    # for no gain: everything this flake uses (pyproject builds, the
    # `dependencies`/`build-system` arguments, pytestCheckHook's
    # `enabledTestPaths`/`pytestFlags`, lib.fileset) is in the release.
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.05";
  };

  outputs =
    { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;

      # The services use Linux netlink, nftables and raw sockets: Linux only.
      # x86_64 is the apu2c4 and qemu; aarch64 is there for ARM boards.
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forAllSystems = f: lib.genAttrs systems (system: f system nixpkgs.legacyPackages.${system});
    in
    {
      overlays.default = final: _prev: {
        router7 = final.callPackage ./pkgs/router7.nix { };
      };

      packages = forAllSystems (
        _system: pkgs:
        let
          router7 = pkgs.callPackage ./pkgs/router7.nix { };
        in
        {
          inherit router7;
          default = router7;
          # Later (docs/direction.md): `image` (disk image with A/B slots) and
          # `netboot` (kernel + initrd + iPXE script), built from a NixOS
          # configuration that runs these services under systemd.
        }
      );

      # `nix flake check` builds the package, whose check phase runs the unit
      # tests. The NixOS VM tests of vm-tests/ join here later.
      checks = forAllSystems (
        system: _pkgs: {
          router7 = self.packages.${system}.router7;
        }
      );

      devShells = forAllSystems (
        system: pkgs:
        let
          router7 = self.packages.${system}.router7;
          # The same interpreter and runtime libraries (lean scapy included)
          # as the package, plus the test tools.
          python = pkgs.python3.withPackages (
            ps:
            router7.dependencies
            ++ [
              ps.pytest
              ps.hypothesis
              ps.supervisor # the lab runs router7's services under supervisord
            ]
          );
        in
        {
          default = pkgs.mkShell {
            packages = [
              python
              pkgs.ruff
              # What the services call at run time.
              pkgs.iproute2
              pkgs.nftables
              # The lab (router7-lab): ISP-side DHCPv4/DHCPv6-PD server, LAN
              # clients, router advertisements and the probes around them.
              # ISC dhclient (isc-dhcp-client) is not in nixpkgs any more (ISC
              # DHCP reached its end of life); dhcpcd is the DHCP client here.
              pkgs.kea
              pkgs.dnsmasq
              pkgs.radvd
              pkgs.dhcpcd
              pkgs.ndisc6
              pkgs.dnsutils # dig
              pkgs.wireshark-cli # tshark
              # `nix-instantiate --parse` for tests/unit/test_nix_files.py.
              pkgs.nix
            ];
            # Run from the repository root: the services are imported from the
            # working tree, so edits need no rebuild.
            shellHook = ''
              export PYTHONPATH="$PWD/services''${PYTHONPATH:+:$PYTHONPATH}"
            '';
          };
        }
      );
    };
}
