notifier "hook" {
  plugin = "webhook"
  url    = "http://127.0.0.1:8080/incoming-call"
  payload = {
    video = call.type = "V"
  }
}

route "all" {
  notify = ["hook"]
}
