# A candidate with a typo in a route's `when`.
notifier "hook" {
  plugin = "webhook"
  url    = "http://127.0.0.1:9/hook"
}

route "all" {
  when   = call.to_servce_id == "x"
  notify = ["hook"]
}
