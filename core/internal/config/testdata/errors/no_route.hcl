server {
  listen = "127.0.0.1:20200"
}

notifier "hook" {
  plugin = "webhook"
  url    = "https://example.com/hook"
}
