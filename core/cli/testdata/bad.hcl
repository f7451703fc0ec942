# A config with errors: a typo in a call field and an unknown notifier.
notifier "hook" {
  plugin  = "webhook"
  url     = "http://127.0.0.1:9/hook"
  timeout = 5
}

route "all" {
  when   = call.to_servce_id == "x"
  notify = ["hook", "nope"]
}
