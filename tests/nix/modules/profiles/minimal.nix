# Stand-in for nixpkgs' nixos/modules/profiles/minimal.nix (documentation off, no
# default packages).
{ lib, ... }:
{
  documentation.enable = lib.mkDefault false;
  documentation.nixos.enable = lib.mkDefault false;
  environment.defaultPackages = lib.mkDefault [ ];
}
