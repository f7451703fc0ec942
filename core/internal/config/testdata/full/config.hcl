server {
  listen             = "127.0.0.1:8080"
  notify_path        = "/cb"
  notify_token       = trimspace(file("secrets/notify-token.txt"))
  allow_cidrs        = ["10.0.0.0/8", "192.0.2.7", "2001:db8::/32"]
  trusted_proxies    = ["172.16.0.0/12"]
  max_id_bytes       = 128
  max_in_flight      = 500
  shutdown_grace     = "3s"
  reject_unreachable = true
  admin_listen       = "0.0.0.0:9090"
  admin_token        = env("RINGSIDE_ADMIN_TOKEN")
  tls {
    cert_file = "tls/cert.pem"
    key_file  = "/etc/ringside/key.pem"
  }
}

delivery {
  dedup_window   = "5m"
  journal        = false
  fallback_after = "7500ms"
}

log {
  format = "json"
  level  = "debug"
}

telemetry {
  traces       = "otlp"
  endpoint     = "https://otel.example.com:4318"
  service_name = "ringside-test"
}

directory "embedded" {
  path        = "data/devices.db"
  cache_users = 500000
}
plugin "console" {
  command = ["./bin/console-plugin", "-v"]
  sha256  = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
  env     = { CONSOLE_COLOR = "1" }
}

plugin "bare" {
  command = ["console-plugin"]
}

notifier "ios" {
  plugin  = "apns"
  enabled = env("APNS_KEY_ID") != ""
  devices = "apns-voip"
  ttl     = "45s"
  payload = {
    caller         = call.from_user_id
    video          = call.type == "V"
    app_caller_uid = upper(call.from_user_id)
    "retries"      = 3
    tags           = ["a", call.type]
  }
  team_id    = "TEAM123"
  key_id     = env("APNS_KEY_ID")
  key_file   = "secrets/AuthKey.p8"
  topic      = "com.example.app.voip"
  priority   = 5
  production = true
}

notifier "android" {
  plugin  = "fcm"
  enabled = false
}

notifier "hook" {
  plugin  = "webhook"
  url     = "https://app.example.com/ring"
  secret  = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
  headers = { "X-Env" = "test" }
  timeout = "2s"
}

notifier "text" {
  plugin      = "sms"
  account_sid = "AC123"
  auth_token  = "tok"
  from        = "+15550100"
  body        = "Call from ${call.from_user_id}"
  recipients  = ["a", "b"]
}

notifier "con" {
  plugin = "console"
}

route "video" {
  when     = call.to_service_id == "planetkit" && call.type == "V"
  notify   = ["ios", "android"]
  fallback = ["text"]
  continue = true
}

route "extra" {
  when   = lookup(call.extra, "tier", "") == "gold" || try(call.extra.vip == "1", false)
  notify = ["hook"]
}

route "default" {
  notify = ["con"]
}
