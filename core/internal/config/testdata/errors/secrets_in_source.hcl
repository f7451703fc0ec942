server {
  notify_token = ["s3cret-notify-token"]
}

telemetry {
  endpoint = "ftp://otel:otelpass@collector:4318/?key=abc123"
}

plugin "vault" {
  command = ["./vault-plugin"]
  env = {
    VAULT_TOKEN = "hvs-secret-token"
    VAULT_ADDR  = nosuch("https://vault")
  }
}
