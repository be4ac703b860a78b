# NixOS module: services.router7 runs the router's services from the SAME unit files
# the Debian image installs (pkgs/systemd/, installed by pkgs/router7.nix into
# $out/lib/systemd/system with @bindir@ = $out/bin). This module only enables them,
# writes their settings to /etc/router7/*.env (read through the units'
# EnvironmentFile=), adds the static user of router7.sysusers.conf and turns off what
# would fight the router. Use it through the flake: `nixosModules.router7` also sets
# `package` (see docs/nix.md).
{
  config,
  lib,
  ...
}:
let
  inherit (lib)
    concatStringsSep
    genAttrs
    mkIf
    mkOption
    optionalAttrs
    types
    ;

  cfg = config.services.router7;
  units = import ./units.nix { inherit lib; };
  unitDir = ../systemd;

  # One unit per service: pkgs/systemd/router7-<svc>.service.
  serviceNames = [
    "dhcp4"
    "dhcp6"
    "failoverd"
    "netconfigd"
    "dhcp4d"
    "radvd"
    "dnsd"
    "captured"
    "diagd"
    "backupd"
    "updated"
    "statusd"
  ];
  unitName = svc: "router7-${svc}";
  enabledServices = lib.filter (svc: cfg.services.${svc}.enable) serviceNames;

  # NixOS ignores [Install] of units that come from systemd.packages
  # (nixos/lib/systemd-lib.nix, generateUnits: only `wantedBy` makes .wants links),
  # so read WantedBy= from the unit files themselves: both legs enable alike.
  wantedBy = file: units.words ((units.parseUnitFile (unitDir + "/${file}")).Install.WantedBy or [ ]);

  user = units.sysuser (unitDir + "/router7.sysusers.conf");

  # The units append $ROUTER7_EXTRA_ARGS unquoted, so systemd splits it on spaces:
  # arguments cannot contain whitespace or quotes.
  argType = types.strMatching "[A-Za-z0-9_./:=,@+%-]+";

  envFile = vars: concatStringsSep "\n" (lib.mapAttrsToList (k: v: "${k}=${v}") vars) + "\n";

  # The units hard-code /perm (ExecStart --perm, ReadWritePaths); another permDir is
  # bind-mounted there, so the services always see /perm.
  permBind = cfg.permDir != "/perm";
in
{
  options.services.router7 = {
    enable = lib.mkEnableOption "router7, the home router's services (DHCP, DNS, RA, firewall, ...)";

    package = mkOption {
      type = types.package;
      description = ''
        The router7 package (console scripts plus the units in lib/systemd/system).
        The flake's `nixosModules.router7` sets it to the flake's own package.
      '';
    };

    permDir = mkOption {
      type = types.strMatching "/.+";
      default = "/perm";
      description = ''
        Where the persistent state and configuration live (interfaces.json,
        leases, backups). Services always see it as /perm: another directory is
        bind-mounted there.
      '';
    };

    uplink = mkOption {
      type = types.strMatching "[A-Za-z0-9_.-]{1,15}";
      default = "uplink0";
      description = "The internet-facing interface (ROUTER7_UPLINK).";
    };

    lan = mkOption {
      type = types.strMatching "[A-Za-z0-9_.-]{1,15}";
      default = "lan0";
      description = "The LAN-facing interface (ROUTER7_LAN).";
    };

    logLevel = mkOption {
      type = types.enum [
        "debug"
        "info"
        "warning"
        "error"
      ];
      default = "info";
      description = "Least severe log level every service logs (ROUTER7_LOG_LEVEL).";
    };

    services = genAttrs serviceNames (svc: {
      enable = mkOption {
        type = types.bool;
        default = true;
        description = "Whether to run router7-${svc}. A disabled unit is masked.";
      };
      extraArgs = mkOption {
        type = types.listOf argType;
        default = [ ];
        example = [ "--metrics-port=0" ];
        description = "Extra command-line arguments of router7-${svc} (ROUTER7_EXTRA_ARGS).";
      };
    });
  };

  config = mkIf cfg.enable {
    systemd.packages = [ cfg.package ];
    # /run/router7 and /perm's owner, from the package's lib/tmpfiles.d/router7.conf.
    systemd.tmpfiles.packages = [ cfg.package ];
    systemd.tmpfiles.rules = lib.optionals permBind [
      "d /perm 0755 root root -"
      "d ${cfg.permDir} 0755 ${user.name} ${user.name} -"
    ];

    # Enabled services only get the .wants links of their [Install] section (plus
    # the bind mount for another permDir): ExecStart, User, capabilities and
    # ordering stay exactly as in the unit file. A disabled service is masked, so
    # no Wants= of another unit can start it.
    systemd.services =
      genAttrs (map unitName serviceNames) (
        name:
        if lib.elem name (map unitName enabledServices) then
          {
            wantedBy = wantedBy "${name}.service";
          }
          // optionalAttrs permBind {
            serviceConfig.BindPaths = [ "${cfg.permDir}:/perm" ];
          }
        else
          { enable = false; }
      )
      // {
        # The update trial's backstop (plain sh, no router7 code): goes with updated.
        router7-trial-guard =
          if cfg.services.updated.enable then
            { wantedBy = wantedBy "router7-trial-guard.service"; }
          else
            { enable = false; };
      };
    systemd.targets.router7.wantedBy = wantedBy "router7.target";

    environment.etc =
      {
        "router7/router7.env".text = envFile {
          ROUTER7_UPLINK = cfg.uplink;
          ROUTER7_LAN = cfg.lan;
          ROUTER7_LOG_LEVEL = cfg.logLevel;
        };
      }
      // genAttrs (map (svc: "router7/${unitName svc}.env") enabledServices) (
        path:
        let
          svc = lib.removeSuffix ".env" (lib.removePrefix "router7/router7-" path);
        in
        {
          text = envFile { ROUTER7_EXTRA_ARGS = concatStringsSep " " cfg.services.${svc}.extraArgs; };
        }
      );

    # The static user of pkgs/systemd/router7.sysusers.conf (same uid/gid on both
    # legs, so /perm keeps its owner). Not DynamicUser: the services signal each
    # other through pid files in /run/router7, which needs one uid.
    users.users.${user.name} = {
      isSystemUser = true;
      inherit (user) uid;
      group = user.name;
      home = "/perm";
      description = "router7 services";
    };
    users.groups.${user.name}.gid = user.gid;

    # What would fight the router: netconfigd owns addresses, routes and nftables;
    # dhcp4/dhcp6 are the uplink's DHCP clients; dnsd serves port 53.
    networking.useDHCP = false;
    networking.dhcpcd.enable = false;
    networking.firewall.enable = false;
    networking.useNetworkd = false;
    services.resolved.enable = false;
    # No boot-time forwarding sysctls (the kernel's default is off): netconfigd switches
    # forwarding on once its nftables ruleset is loaded; a packet forwarded before its
    # NAT rules take effect leaves a conntrack entry without NAT (netconfigd/apply.py).
  };
}
