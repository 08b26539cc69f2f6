{ config, lib, ... }:
{
  config = lib.mkIf true {
    services.web.⟨portName⟩port = 80;
    services.web = {
      ⟨completeHere⟩
    };
  };
}
