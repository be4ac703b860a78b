# Every scenario vm-tests/<name>.py as a NixOS VM test (`checks.<system>.vm-<name>` in
# flake.nix), through pkgs.testers.runNixOSTest (pkgs/build-support/testers/default.nix).
# A new scenario file joins without edits here. Nodes, as in router7-lab:
#   isp    kea DHCPv4, kea DHCPv6 with prefix delegation and the route-per-prefix
#          run_script hook, radvd (M+O), two resolvers; it also plays the lab's
#          internet host (HTTP on 203.0.113.10, the example.test zone), so a scenario's
#          `internet` is the same machine. Its files come from the lab's own configs
#          (router7.lab.nixos_isp), so the VM ISP and the namespace ISP cannot differ.
#   router the NixOS module (services.router7), uplink0 on vlan 1, lan0 on vlan 2.
#   lan    a DHCP/SLAAC client on vlan 2; `lan2` too where the scenario mentions it.
# The layout follows nixos/tests/systemd-networkd-ipv6-prefix-delegation.nix.
{
  pkgs,
  # The flake's package: runNixOSTest makes the nodes' pkgs read-only
  # (nixos/lib/testing/nodes.nix), so no overlay.
  router7,
  # The flake's nixosModules.router7.
  routerModule,
}:
let
  inherit (pkgs) lib;

  python = pkgs.python3;
  # toPythonModule (pkgs/development/interpreters/python/python-packages-base.nix)
  # turns the application back into an importable module: the scenarios and the
  # renderer import router7.lab.
  withRouter7 = ps: [ (ps.toPythonModule router7) ];

  uplinkVlan = 1;
  lanVlan = 2;

  # What vm-tests/renumber.py (NEW_POOL) expects the ISP to renumber to.
  renumberedPool = "2001:db8:200::/40";

  renderIsp =
    name: extraArgs:
    pkgs.runCommand name
      {
        nativeBuildInputs = [ (python.withPackages withRouter7) ];
      }
      ''
        python -m router7.lab.nixos_isp $out \
          --kea-hooks ${pkgs.kea}/lib/kea/hooks \
          --path ${
            lib.makeBinPath [
              pkgs.iproute2
              pkgs.coreutils
              pkgs.gawk
              pkgs.gnugrep
            ]
          } \
          --python ${python.withPackages (ps: [ ps.twisted ])}/bin/python3 ${extraArgs}
      '';

  # The ISP for one scenario: the lab's lifetimes, or the short ones of
  # router7.lab.scenario.use_short_leases where the scenario calls it (under the lab
  # that call restarts kea with them; here they are in the configuration already).
  isp =
    shortLeases:
    let
      leases = lib.optionalString shortLeases " --short-leases";
      variant = lib.optionalString shortLeases "-short-leases";
      ispFiles = renderIsp "router7-vm-isp${variant}" leases;
      # The same ISP after renumbering: another PD pool, a fresh lease file.
      renumberedIspFiles =
        renderIsp "router7-vm-isp-renumbered${variant}"
          "--pd-pool ${renumberedPool}${leases}";
      # A long-running service of the isp node from one of ispFiles' scripts.
      peer = description: script: {
        inherit description;
        wantedBy = [ "multi-user.target" ];
        after = [ "isp-addresses.service" ];
        requires = [ "isp-addresses.service" ];
        path = [ pkgs.dnsmasq ];
        serviceConfig = {
          ExecStart = "${ispFiles}/${script}";
          Restart = "on-failure";
        };
      };
    in
    { ... }:
    {
      virtualisation.interfaces.down0.vlan = uplinkVlan;
      networking = {
        useDHCP = false;
        firewall.enable = false;
      };
      services.resolved.enable = false; # the resolvers own port 53
      # radvd wants forwarding on; the ISP routes the delegated prefixes.
      boot.kernel.sysctl = {
        "net.ipv4.ip_forward" = 1;
        "net.ipv6.conf.all.forwarding" = 1;
      };

      systemd.services.isp-addresses = {
        description = "The ISP's and the internet host's addresses";
        wantedBy = [ "multi-user.target" ];
        after = [ "sys-subsystem-net-devices-down0.device" ];
        bindsTo = [ "sys-subsystem-net-devices-down0.device" ];
        before = [
          "kea-dhcp4-server.service"
          "kea-dhcp6-server.service"
          "radvd.service"
        ];
        path = [ pkgs.iproute2 ];
        serviceConfig = {
          Type = "oneshot";
          RemainAfterExit = true;
          ExecStart = "${ispFiles}/isp-addresses.sh";
        };
      };

      # nixos/modules/services/networking/kea.nix: configFile instead of settings.
      services.kea.dhcp4 = {
        enable = true;
        configFile = "${ispFiles}/kea-dhcp4.json";
      };
      services.kea.dhcp6 = {
        enable = true;
        configFile = "${ispFiles}/kea-dhcp6.json";
      };
      # The PD hook installs a route per delegated prefix, as in nixpkgs' PD test.
      systemd.services.kea-dhcp6-server.serviceConfig = {
        AmbientCapabilities = [ "CAP_NET_ADMIN" ];
        CapabilityBoundingSet = [ "CAP_NET_ADMIN" ];
      };

      # Not services.radvd: its config is eval-time text, ours is rendered by the lab.
      # Same unit name, so `isp.systemctl("stop radvd")` reads as in nixpkgs' tests.
      systemd.services.radvd = {
        description = "Router advertisements on the access segment (M+O)";
        wantedBy = [ "multi-user.target" ];
        after = [ "isp-addresses.service" ];
        requires = [ "isp-addresses.service" ];
        serviceConfig = {
          ExecStart = "${pkgs.radvd}/bin/radvd -n -m stderr -C ${ispFiles}/radvd.conf -p /run/radvd/radvd.pid";
          RuntimeDirectory = "radvd";
          Restart = "always";
        };
      };

      systemd.services.internet-dns = peer "Authoritative DNS for example.test" "internet-dns.sh";
      systemd.services.isp-dns1 = peer "ISP resolver 1" "isp-dns1.sh";
      systemd.services.isp-dns2 = peer "ISP resolver 2" "isp-dns2.sh";
      systemd.services.internet-http = peer "The internet host's web server" "internet-http.sh";

      environment.systemPackages = [
        pkgs.dnsutils
        pkgs.curl
        pkgs.nmap # lan_services.py: the router's open ports from the ISP side
      ];

      # vm-tests/renumber.py: `switch-to-configuration test` into this restarts
      # kea-dhcp6 with the new pool and no leases (Lab.renumber_prefix_delegation).
      # nixos/modules/system/activation/specialisation.nix
      specialisation.renumbered.configuration = {
        services.kea.dhcp6.configFile = lib.mkForce "${renumberedIspFiles}/kea-dhcp6.json";
        systemd.services.isp-addresses.serviceConfig.ExecStart =
          lib.mkForce "${renumberedIspFiles}/isp-addresses.sh";
      };
    };

  router =
    { ... }:
    {
      imports = [
        routerModule
        ../pkgs/nixos/perm.nix # /perm: ext4 labelled perm, else a tmpfs
      ];
      services.router7.enable = true;
      # Named NICs (nixos/modules/virtualisation/qemu-vm.nix): the names the services
      # expect, whatever the PCI order.
      virtualisation.interfaces = {
        uplink0.vlan = uplinkVlan;
        lan0.vlan = lanVlan;
      };
      virtualisation.memorySize = 1024;
      # The perm disk (/dev/vdb after the root disk /dev/vda), kept across reboots
      # of one test like the root disk. Formatted once, at the first boot, as the
      # disk packer formats the image's perm partition: a disk blanked later by a
      # scenario (blank_perm.py) stays blank, and /perm falls back to a tmpfs.
      virtualisation.emptyDiskImages = [ 256 ];
      systemd.services.router7-vmtest-perm-format = {
        description = "Format the VM's perm disk once";
        wantedBy = [ "local-fs.target" ];
        before = [
          "router7-perm.service"
          "local-fs.target"
        ];
        requires = [ "dev-vdb.device" ];
        after = [ "dev-vdb.device" ];
        unitConfig = {
          DefaultDependencies = false;
          ConditionPathExists = "!/var/lib/router7-vmtest/perm-formatted";
        };
        path = [
          pkgs.e2fsprogs
          pkgs.coreutils
        ];
        serviceConfig = {
          Type = "oneshot";
          RemainAfterExit = true;
        };
        script = ''
          mkfs.ext4 -q -F -L perm /dev/vdb
          mkdir -p /var/lib/router7-vmtest
          touch /var/lib/router7-vmtest/perm-formatted
        '';
      };
      environment.systemPackages = [
        pkgs.nftables
        pkgs.dnsutils
      ];
    };

  lanHost =
    { ... }:
    {
      # Not virtualisation.vlans: nixos/lib/testing/network.nix gives those static
      # 192.168.<vlan>.x and 2001:db8:<vlan>::x addresses; a LAN host only has what
      # the router hands out.
      virtualisation.interfaces.eth1.vlan = lanVlan;
      networking = {
        useDHCP = false;
        interfaces.eth1.useDHCP = true;
        firewall.enable = false;
      };
      # As the lab's LAN hosts (router7.lab.router: `dhcpcd -4 … -h <node>`): dhcpcd
      # for DHCPv4 with the host name, the kernel for SLAAC and RA routes (proto ra).
      # nixos/modules/services/networking/dhcpcd.nix
      networking.dhcpcd.extraConfig = "ipv4only";
      services.resolved.enable = false;
      environment.systemPackages = [
        pkgs.curl
        pkgs.dnsutils
        pkgs.ndisc6
        pkgs.python3 # lan_services.py: a web server behind a port forwarding
        pkgs.wireshark-cli # hardening.py: reads captured's pcapng
      ];
    };

  # A scenario whose `# router7-vmtest:` line says nix=none needs nodes this file
  # does not build yet (router7-recover's laptop, a second ISP, the disk's boot
  # partition): it runs in the Debian leg only (docs/nix.md lists them).
  scenarioFiles = lib.attrNames (
    lib.filterAttrs (
      name: type:
      type == "regular"
      && lib.hasSuffix ".py" name
      && !lib.hasPrefix "_" name
      && !lib.hasInfix "nix=none" (builtins.readFile (./. + "/${name}"))
    ) (builtins.readDir ./.)
  );

  scenarioTest =
    file:
    let
      name = lib.removeSuffix ".py" file;
      script = builtins.readFile (./. + "/${file}");
    in
    pkgs.testers.runNixOSTest {
      name = "router7-${lib.replaceStrings [ "_" ] [ "-" ] name}";
      nodes = {
        inherit router;
        isp = isp (lib.hasInfix "use_short_leases(isp)" script);
        lan = lanHost;
      }
      // lib.optionalAttrs (lib.hasInfix "lan2" script) { lan2 = lanHost; };
      # nixos/lib/testing/driver.nix: a function of the driver's Python package set.
      extraPythonPackages = withRouter7;
      # mypy would reject `import router7…` (no py.typed marker); pyflakes still runs.
      skipTypeCheck = true;
      # The lab's internet host is the isp VM here.
      testScript = lib.optionalString (lib.hasInfix "internet" script) "internet = isp\n" + script;
    };
in
lib.listToAttrs (
  map (file: {
    name = "vm-${lib.replaceStrings [ "_" ] [ "-" ] (lib.removeSuffix ".py" file)}";
    value = scenarioTest file;
  }) scenarioFiles
)
