notifier "ios" {
  plugin  = "apns"
  enabled = env(APNS_KEY_ID") != ""
}
