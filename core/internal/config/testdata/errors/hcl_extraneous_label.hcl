server x {
  listen = "127.0.0.1:20200"
}

log x {
  format = "json"
}

directory x"embedded" {
  path = "ringside.db"
}

notifier "app_server" x{
  plugin = "webhook"
  url    = "http://127.0.0.1:8080/ringside/incoming-call"
}

route "all" x{
  notify = ["app_server"]
}
