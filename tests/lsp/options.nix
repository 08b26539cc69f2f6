{ lib, ... }:
{
  options.services.web = {
    enable = lib.mkEnableOption "the web server";
    port = lib.mkOption {
      type = lib.types.port;
      default = 8080;
      description = "Port the web server listens on.";
    };
  };
}
