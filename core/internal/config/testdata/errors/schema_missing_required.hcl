notifier "hook" {
  plugin = "webhook"
  secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
}

route "all" {
  notify = ["hook"]
}
