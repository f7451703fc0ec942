notifier "ios" {
  plugin  = "apns"
  enabled = env("APNS_KEY_ID") != "" & env("APNS_TEAM_ID") != ""
}
