notifier "hook" {
  plugin  = "webhook"
  url     = "https://example.com/ring"
  headers = ["X-Token: 1"]
  timeout = 5
}

route "all" {
  notify = ["hook"]
}
