# Reads the unit files of pkgs/systemd/ at evaluation time (pure Nix, no build), so the
# NixOS module takes what it needs from the same files the Debian image installs:
# the [Install] section (NixOS ignores it for units from systemd.packages; it enables
# units through `wantedBy` instead) and the static user of router7.sysusers.conf.
# tests/unit/test_nix_eval.py checks this parser against Python's reading of the files.
{ lib }:
let
  inherit (lib) filter foldl' hasPrefix head removePrefix splitString;

  # lib.trim is newer than some nixpkgs revisions this must evaluate with.
  trim =
    s:
    let
      m = builtins.match "[[:space:]]*(.*[^[:space:]])[[:space:]]*" s;
    in
    if m == null then "" else head m;

  meaningful = line: line != "" && !(hasPrefix "#" line) && !(hasPrefix ";" line);
  # A line ending in a backslash continues on the next (systemd.syntax(7)).
  lines =
    text: filter meaningful (map trim (splitString "\n" (builtins.replaceStrings [ "\\\n" ] [ " " ] text)));

  # "Key=value" → { name, value }; value keeps inner "=" signs.
  keyValue =
    line:
    let
      parts = splitString "=" line;
    in
    {
      name = trim (head parts);
      value = trim (lib.concatStringsSep "=" (lib.tail parts));
    };
in
rec {
  # { Section = { Key = [ "value" ... ]; }; } keeping every repeated key in order.
  parseUnit =
    text:
    (foldl' (
      acc: line:
      if hasPrefix "[" line then
        acc // { section = removePrefix "[" (lib.removeSuffix "]" line); }
      else
        let
          kv = keyValue line;
          old = acc.sections.${acc.section} or { };
        in
        acc
        // {
          sections = acc.sections // {
            ${acc.section} = old // {
              ${kv.name} = (old.${kv.name} or [ ]) ++ [ kv.value ];
            };
          };
        }
    ) { section = null; sections = { }; } (lines text)).sections;

  parseUnitFile = path: parseUnit (builtins.readFile path);

  # Space-separated lists (WantedBy=a b) flattened over repeated keys.
  words = values: filter (w: w != "") (lib.concatMap (splitString " ") values);

  # The "u NAME UID:GID ..." line of a sysusers.d file.
  sysuser =
    path:
    let
      fields = filter (f: f != "") (splitString " " line);
      line = head (filter (l: hasPrefix "u " l) (lines (builtins.readFile path)));
      ids = splitString ":" (lib.elemAt fields 2);
    in
    {
      name = lib.elemAt fields 1;
      uid = lib.toInt (head ids);
      gid = lib.toInt (lib.last ids);
    };
}
