notifier "ios" {
  plugin  = "apns"
  enabled = en("APNS_KEY_ID") != ""
}
