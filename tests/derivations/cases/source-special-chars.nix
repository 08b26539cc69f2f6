with import ../lib.nix;
mk { name = "source-special"; eq = "${../files + "/a=b"}"; plus = ../files/foo+bar-1.0_x.txt; q = "${../files + "/what?.txt"}"; }
