notifier "sms" {
  plugin      = "sms"
  account_sid = "AC123"
  auth_token  = env("TWILIO_TOKEN")
  from        = "+15550100"
  body        = format("Call from %s (%s)", call.from_user_id, file("body.txt"))
}

notifier "sms2" {
  plugin      = "sms"
  account_sid = "AC123"
  auth_token  = 12345
  from        = "+15550100"
  body        = call.extra
}

route "all" {
  notify = ["sms", "sms2"]
}
