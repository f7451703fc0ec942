notifier "hook" {
  plugin  = "webhook"
  url     = ["https://user:hookpass@example.com/hook?apikey=qk-secret&x=1"]
  secret  = ["whsec_c2VjcmV0LXNpZ25pbmcta2V5"]
  headers = {
    "X-Api-Key" = nosuch("hdr-secret-value")
  }
}

notifier "sms" {
  plugin      = "sms"
  account_sid = "AC0123"
  auth_token  = env("TWILIO_AUTH_TOKEN")
  from        = "+15005550006"
  body        = "call from ${call.from_user_id}"
  endpoint    = ["https://api.twilio.com/?token=tw-secret"]
}

route "all" {
  notify = ["hook", "sms"]
}
