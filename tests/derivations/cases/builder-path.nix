with import ../lib.nix;
mk { name = "builder-path"; builder = ../files/dir/run.sh; }
