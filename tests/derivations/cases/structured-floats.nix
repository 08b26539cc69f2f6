with import ../lib.nix;
# Only floats that Nix 2.8 and current Nix write the same way into `__json`: 2.8 prints 6
# significant digits (123456789.0 -> 1.23457e+08, 3.0 -> 3), current Nix (and tvix) prints
# them exactly (123456789.0, 3.0); see SKIPPED in tests/derivations.rs.
mk { name = "structured-floats"; __structuredAttrs = true; a = 0.1; b = 1.0e20; d = -0.5; e = 1.0e-7; g = 0.25; }
