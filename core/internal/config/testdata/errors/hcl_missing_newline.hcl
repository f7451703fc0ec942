notifier "app_server" {
  plugin  = "webhook"
  timeout = "2s" "5s"
}
