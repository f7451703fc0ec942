notifier "app_server" {
  plugin  = "webhook"
  url     = "http://127.0.0.1:8080/ringside/incoming-call"
  payload = {
    video call.type == "V"
  }
}
