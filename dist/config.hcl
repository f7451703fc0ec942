# A production config for the packaged layouts (dist/systemd, dist/container):
# secrets come from the environment, state lives in /var/lib/ringside.
# Every block and attribute: docs/configuration.md.

server {
  listen       = "0.0.0.0:20200"                  # LINE Planet calls notify_cb here
  notify_token = env("RINGSIDE_NOTIFY_TOKEN")     # when set: notify_cb?token=<it>&…
  admin_listen = "127.0.0.1:20201"                # a non-loopback address needs admin_token
  admin_token  = env("RINGSIDE_ADMIN_TOKEN")      # Bearer auth on /v1/*
}

# An absolute path: under systemd only /var/lib/ringside is writable. The
# journal lives beside it (ringside.journal).
directory "embedded" {
  path = "/var/lib/ringside/ringside.db"
}

log {
  format = "json"
}

# Your app server: it learns of every call. Change the URL.
notifier "app_server" {
  plugin  = "webhook"
  url     = "http://127.0.0.1:8080/ringside/incoming-call"
  timeout = "2s"
  payload = {
    video = call.type == "V"
  }
}

route "all" {
  notify   = ["ios", "android", "app_server"]
  fallback = ["sms"]
}

# Each push notifier is enabled only when its credentials are set.
notifier "ios" {
  plugin     = "apns"
  enabled    = env("APNS_KEY_ID") != ""
  team_id    = env("APNS_TEAM_ID")
  key_id     = env("APNS_KEY_ID")
  key_file   = env("APNS_KEY_FILE")
  topic      = env("APNS_TOPIC") # "<bundle id>.voip"
  production = env("APNS_PRODUCTION") == "1"
}

notifier "android" {
  plugin           = "fcm"
  enabled          = env("FCM_CREDENTIALS") != ""
  credentials_file = env("FCM_CREDENTIALS")
}

notifier "sms" {
  plugin      = "sms"
  enabled     = env("TWILIO_ACCOUNT_SID") != ""
  account_sid = env("TWILIO_ACCOUNT_SID")
  auth_token  = env("TWILIO_AUTH_TOKEN")
  from        = env("TWILIO_FROM")
}
