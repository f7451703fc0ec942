notifier "hook" {
  plugin = "webhook"
  url    = "https://example.com/ring"
  secrt  = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
}

route "all" {
  notify = ["hook"]
}
