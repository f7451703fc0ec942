notifier "ios" {
  plugin  = "apns"
  enabled = env("APNS_KEY_ID") != ""
  topic   = "com.example.voip"
}

notifier "android" {
  plugin  = "fcm"
  enabled = false
}

route "all" {
  notify   = ["ios"]
  fallback = ["android"]
}
