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
      # x86_64 is the apu2c4 and qemu; aarch64 is there for ARM boards (package and
      # module only: the systems below are x86_64).
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forAllSystems = f: lib.genAttrs systems (system: f system nixpkgs.legacyPackages.${system});

      # The router as an appliance: the module, the small system around it
      # (pkgs/nixos/appliance.nix) and one hardware profile.
      routerSystem =
        hardware:
        nixpkgs.lib.nixosSystem {
          modules = [
            self.nixosModules.router7
            ./pkgs/nixos/appliance.nix
            hardware
          ];
        };

      # Boot files and disk image of one NixOS configuration (x86_64 only).
      bootOutputs =
        pkgs: router7: nixos:
        let
          netboot = pkgs.callPackage ./pkgs/netboot.nix { inherit nixos; };
        in
        {
          inherit netboot;
          image = pkgs.callPackage ./pkgs/image.nix {
            inherit netboot router7;
          };
        };
    in
    {
      overlays.default = final: _prev: {
        router7 = final.callPackage ./pkgs/router7.nix { };
      };

      # services.router7 (pkgs/nixos/module.nix), with this flake's package.
      nixosModules.router7 =
        { lib, pkgs, ... }:
        {
          imports = [ ./pkgs/nixos/module.nix ];
          services.router7.package =
            lib.mkDefault
              self.packages.${pkgs.stdenv.hostPlatform.system}.router7;
        };
      nixosModules.default = self.nixosModules.router7;

      nixosConfigurations = {
        # PC Engines apu2c4: x86_64, serial console at 115200 baud.
        router = routerSystem ./pkgs/nixos/apu2c4.nix;
        # The same system for qemu (virtio): `router7-lab up --vm` with
        # ROUTER7_IMAGE_DIR pointing at the output of `nix build .#image-qemu`.
        router-qemu = routerSystem ./pkgs/nixos/qemu.nix;
      };

      packages = forAllSystems (
        system: pkgs:
        let
          router7 = pkgs.callPackage ./pkgs/router7.nix { };
          apu = bootOutputs pkgs router7 self.nixosConfigurations.router;
          qemu = bootOutputs pkgs router7 self.nixosConfigurations.router-qemu;
        in
        {
          inherit router7;
          default = router7;
        }
        // lib.optionalAttrs (system == "x86_64-linux") {
          inherit (apu) netboot image;
          netboot-qemu = qemu.netboot;
          image-qemu = qemu.image;
        }
      );

      # `nix flake check`: the package (its check phase runs the unit tests) and,
      # on x86_64, every scenario of vm-tests/ as a NixOS VM test (needs KVM:
      # nixos/lib/testing/run.nix requires the kvm and nixos-test features).
      checks = forAllSystems (
        system: pkgs:
        {
          router7 = self.packages.${system}.router7;
        }
        // lib.optionalAttrs (system == "x86_64-linux") (
          import ./vm-tests {
            inherit pkgs;
            router7 = self.packages.${system}.router7;
            routerModule = self.nixosModules.router7;
          }
        )
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
              ps.pytest-xdist # parallel VM tests (scripts/test)
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
              pkgs.curl
              pkgs.nmap # the scenarios' port probes
              # The image build (router7-image build / disk): root filesystem,
              # squashfs, the disk packer's partitioning and boot loader.
              pkgs.mmdebstrap
              pkgs.squashfsTools
              pkgs.util-linux # sfdisk
              pkgs.dosfstools # mkfs.vfat
              pkgs.mtools
              pkgs.syslinux
              pkgs.e2fsprogs # mkfs.ext4
              pkgs.cpio
              pkgs.zstd
              # The VM tests outside Nix (router7-lab up --vm): qemu, TCG or KVM.
              pkgs.qemu_kvm
              # `nix-instantiate` for tests/unit/test_nix_*.py.
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
