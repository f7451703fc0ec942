notifier "sms" {
  plugin      = "sms"
  account_sid = "AC00000000000000000000000000000000"
  auth_token  = "x"
  from        = "+15550100"
  body        = call.type = "V" ? "Video call" : "Call"
}

route "all" {
  notify = ["sms"]
}
