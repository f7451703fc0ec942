# A candidate whose route reads a value the call log does not keep.
notifier "hook" {
  plugin = "webhook"
  url    = "http://127.0.0.1:9/hook"
  payload = {
    data = call.app_svr_data
  }
}

route "gold" {
  when   = lookup(call.extra, "tier", "") == "gold"
  notify = ["hook"]
}

route "all" {
  notify = ["hook"]
}
