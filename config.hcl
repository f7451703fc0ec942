# ringside's default configuration: `go run .` serves with it.
# No secrets and no external service: every call is delivered as a webhook
# to the app server next door (`go run ./examples/app-server`).
# The full reference is in docs/configuration.md.

server {
  listen       = "127.0.0.1:20200" # public: notify_cb (use 0.0.0.0:20200 to accept LINE Planet from outside)
  admin_listen = "127.0.0.1:20201" # devices API, /healthz, /readyz, /metrics
}

directory "embedded" {
  path = "ringside.db"
}

notifier "app_server" {
  plugin  = "webhook"
  url     = "http://127.0.0.1:8080/ringside/incoming-call"
  timeout = "2s"
  payload = {
    video = call.type == "V"
  }
}

# Every call: the push notifiers that are enabled, and the app server's
# webhook; SMS when every one of them failed or nothing was delivered by
# fallback_after. Disabled notifiers deliver nothing; the log at start,
# `ringside explain`, the call log and the page name each, with why.
route "all" {
  notify   = ["ios", "android", "app_server"]
  fallback = ["sms"]
}

# Push notifiers: each is enabled only when its credentials are in the
# environment, so `go run .` needs none of them. See docs/plugins.md.
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
