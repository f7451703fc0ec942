ring_nobody = true

notifier "hook" {
  plugin = "webhook"
  url    = "https://example.com/hook"
}

route "all" {
  notify = ["hook"]
}
